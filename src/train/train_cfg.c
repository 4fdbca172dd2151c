/* The trainer's configuration: reading the train/optimizer/schedule/data/checkpoint/
 * debug sections strictly, and writing the resolved config a run directory keeps.
 * The network sections stay with mg_net_from_cfg; here they are only copied out. */
#include "mg_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "mg_error.h"
#include "mg_text.h"

static const char *const source_names[] = {"ring8", "grid25", "synthetic"};

static void copy_string(char *dst, size_t size, mg_cfg_node n, const char *def)
{
    const char *s = mg_cfg_present(n) ? mg_cfg_as_string(n) : def;
    if (strlen(s) >= size)
        mg_cfg_fail(n, NULL, "string longer than %zu characters", size - 1);
    snprintf(dst, size, "%s", s);
}

static void read_train(mg_train_cfg *tc, mg_cfg_node train, int n_ranks)
{
    static const char *const reuse_names[] = {"reuse", "fresh"};
    static const char *const bn_names[] = {"sync", "local"};
    static const char *const nan_names[] = {"stop", "skip"};
    static const char *const noise_names[] = {"global", "per_rank"};
    static const char *const fake_label_names[] = {"uniform", "data"};
    mg_cfg_expect_mapping(train);
    tc->loss = (mg_gan_loss)mg_cfg_choice(train, "loss", mg_gan_loss_names, MG_GAN_LOSS_COUNT, -1);
    tc->n_critic = (int)mg_cfg_int(train, "n_critic", 1, 1, 1000);
    mg_cfg_node batch = mg_cfg_require(train, "batch");
    tc->batch = (int)mg_cfg_as_int(batch, 1, 1 << 24);
    if (tc->batch % n_ranks)
        mg_cfg_fail(batch, "choose a global batch divisible by the number of ranks",
                    "global batch %d does not split over %d ranks", tc->batch, n_ranks);
    tc->steps = mg_cfg_int_req(train, "steps", 1, 1L << 40);
    tc->seed = (uint64_t)mg_cfg_int(train, "seed", 1, 0, 1L << 62);
    tc->g_reuse_fakes = mg_cfg_choice(train, "g_step_noise", reuse_names, 2, 0) == 0;
    tc->bn_sync = mg_cfg_choice(train, "bn", bn_names, 2, 0) == 0;
    tc->log_interval = mg_cfg_int(train, "log_interval", 50, 1, 1L << 40);
    tc->nan_stop = mg_cfg_choice(train, "nan_policy", nan_names, 2, 0) == 0;
    tc->noise = (mg_noise_streams)mg_cfg_choice(train, "noise_streams", noise_names, 2, 0);
    tc->fake_labels = (mg_fake_labels)mg_cfg_choice(train, "fake_labels", fake_label_names, 2, 0);
    tc->augment = mg_augment_cfg_from(mg_cfg_get(train, "augment"));
    tc->sample_interval = mg_cfg_int(train, "sample_interval", 500, 0, 1L << 40);
    tc->threads = (int)mg_cfg_int(train, "threads", 0, 0, 4096);
    tc->backend = (mg_backend)mg_cfg_choice(train, "backend", mg_backend_names, MG_BACKEND_COUNT, MG_BACKEND_ONEDNN);
    tc->precision =
        (mg_precision)mg_cfg_choice(train, "precision", mg_precision_names, MG_PRECISION_COUNT, MG_PRECISION_FP32);
    if (tc->precision != MG_PRECISION_FP32 && tc->backend != MG_BACKEND_ONEDNN)
        mg_cfg_fail(mg_cfg_get(train, "precision"), "set train.backend: onednn as well, or train.precision: fp32",
                    "precision %s runs on the oneDNN backend only", mg_precision_names[tc->precision]);
    if (tc->precision == MG_PRECISION_BF16 && !mg_onednn_bf16_supported())
        mg_cfg_fail(mg_cfg_get(train, "precision"),
                    "set train.precision: fp32 (bf16 needs AVX512_BF16 or AMX: Intel Cooper Lake, Sapphire Rapids "
                    "and later, AMD Zen 4 and later)",
                    "precision bf16: this CPU has no bfloat16 instructions oneDNN can use");
    tc->reduce = (mg_reduce_path)mg_cfg_choice(train, "reduce", mg_reduce_path_names, MG_REDUCE_COUNT, MG_REDUCE_NODE);
    mg_cfg_node overlap = mg_cfg_get(train, "overlap");
    mg_cfg_expect_mapping(overlap);
    tc->overlap = mg_cfg_bool(overlap, "enabled", false);
    tc->bucket_mb = (float)mg_cfg_real(overlap, "bucket_mb", 4.0, 1e-6, 1024.0);
    tc->measure_wait = mg_cfg_bool(train, "measure_wait", true);
    tc->ema = mg_ema_cfg_from(mg_cfg_get(train, "ema"));
    /* PacGAN: packs are cut from the rank's slice, so they never span ranks */
    mg_cfg_node pack = mg_cfg_get(train, "pack");
    tc->pack = mg_cfg_present(pack) ? (int)mg_cfg_as_int(pack, 1, 1024) : 1;
    if ((tc->batch / n_ranks) % tc->pack) /* only when given: 1 divides anything */
        mg_cfg_fail(pack, "choose train.pack dividing train.batch / ranks (packs never span ranks)",
                    "train.pack %d does not divide the per-rank batch %d (train.batch %d / %d ranks)", tc->pack,
                    tc->batch / n_ranks, tc->batch, n_ranks);
    /* gradient accumulation: micro-batches are cut from the rank's slice */
    mg_cfg_node acc = mg_cfg_get(train, "accumulate");
    tc->accumulate = mg_cfg_present(acc) ? (int)mg_cfg_as_int(acc, 1, 1 << 20) : 1;
    if ((tc->batch / n_ranks) % (tc->accumulate * tc->pack))
        mg_cfg_fail(acc, "choose train.accumulate so that train.batch / ranks / accumulate is a whole number of packs",
                    "train.accumulate %d does not divide the per-rank batch %d (train.batch %d / %d ranks%s)",
                    tc->accumulate, tc->batch / n_ranks, tc->batch, n_ranks,
                    tc->pack > 1 ? ", into whole packs of train.pack" : "");
    tc->penalty = mg_penalty_cfg_from(train);
    /* WGAN needs a Lipschitz constraint: clip must be stated (0 turns clipping off on
     * purpose) unless the gradient penalty (gp_lambda) is that constraint; the other
     * losses take no clipping. */
    mg_cfg_node clip = mg_cfg_get(train, "clip");
    const bool gp = tc->penalty.gp_lambda > 0;
    if (tc->loss == MG_LOSS_WASSERSTEIN && !mg_cfg_present(clip) && !gp)
        mg_cfg_fail(train,
                    "add clip: 0.01 (weight clipping as in Arjovsky et al.), gp_lambda: 10 (WGAN-GP), or clip: 0 to "
                    "train unclipped",
                    "loss wasserstein needs an explicit 'clip'");
    tc->clip = mg_cfg_present(clip) ? (float)mg_cfg_as_real(clip, 0, 1e3) : 0.0f;
    if (tc->loss != MG_LOSS_WASSERSTEIN && tc->clip != 0)
        mg_cfg_fail(clip, "weight clipping belongs to loss: wasserstein", "clip %g given for loss %s", tc->clip,
                    mg_gan_loss_names[tc->loss]);
    if (gp && tc->clip != 0)
        mg_cfg_fail(clip, "WGAN-GP replaces weight clipping: drop clip (or set clip: 0)",
                    "clip %g with gp_lambda %g", tc->clip, tc->penalty.gp_lambda);
}

/* data: {source: ring8|grid25|synthetic} (in memory) or the HDF5 loader's section
 * {path: FILE, sampler, memory_mb, prefetch, seed} (mg_loader_cfg_from). */
static void read_data(mg_train_cfg *tc, mg_cfg_node data)
{
    mg_cfg_expect_mapping(data);
    mg_cfg_node source = mg_cfg_get(data, "source"), path = mg_cfg_get(data, "path");
    if (mg_cfg_present(path)) {
        if (mg_cfg_present(source))
            mg_cfg_fail(source, "give either source (in-memory data) or path (an HDF5 file)", "both source and path");
        mg_loader_cfg_from(&tc->loader, data, tc->seed);
        tc->source = MG_DATA_HDF5;
        return;
    }
    static const char *const loader_keys[] = {"sampler", "memory_mb", "prefetch", "seed"};
    for (int i = 0; i < 4; i++) {
        mg_cfg_node key = mg_cfg_get(data, loader_keys[i]);
        if (mg_cfg_present(key))
            mg_cfg_fail(key, "give data.path (an HDF5 file from `mpigan data ...`), or drop this key",
                        "%s applies to HDF5 data only", loader_keys[i]);
    }
    tc->source = (mg_data_source)mg_cfg_choice(data, "source", source_names, 3, -1);
}

void mg_train_cfg_read(mg_train_cfg *tc, mg_cfg *cfg, int n_ranks)
{
    memset(tc, 0, sizeof *tc);
    mg_cfg_node root = mg_cfg_root(cfg);
    read_train(tc, mg_cfg_require(root, "train"), n_ranks);
    tc->opt_g = mg_opt_cfg_from(mg_cfg_require(root, "optimizer_g"));
    tc->opt_d = mg_opt_cfg_from(mg_cfg_require(root, "optimizer_d"));
    tc->sched_g = mg_sched_from(mg_cfg_get(root, "schedule_g"));
    tc->sched_d = mg_sched_from(mg_cfg_get(root, "schedule_d"));
    read_data(tc, mg_cfg_require(root, "data"));
    copy_string(tc->run_dir, sizeof tc->run_dir, mg_cfg_get(root, "run_dir"), "runs/default");

    mg_cfg_node ckpt = mg_cfg_get(root, "checkpoint");
    mg_cfg_expect_mapping(ckpt);
    char def_dir[600];
    snprintf(def_dir, sizeof def_dir, "%s/checkpoints", tc->run_dir);
    copy_string(tc->ckpt_dir, sizeof tc->ckpt_dir, mg_cfg_get(ckpt, "dir"), def_dir);
    tc->ckpt_interval = mg_cfg_int(ckpt, "interval", 1000, 0, 1L << 40);
    tc->keep_last = (int)mg_cfg_int(ckpt, "keep_last", 3, 1, 10000);

    mg_cfg_node debug = mg_cfg_get(root, "debug");
    mg_cfg_expect_mapping(debug);
    tc->check_replicas = mg_cfg_int(debug, "check_replicas", 0, 0, 1L << 40);
    tc->inject_nan_at_step = mg_cfg_int(debug, "inject_nan_at_step", -1, -1, 1L << 40);
    tc->stop_at_step = mg_cfg_int(debug, "stop_at_step", -1, -1, 1L << 40);
    tc->diverge_at_step = mg_cfg_int(debug, "diverge_at_step", -1, -1, 1L << 40);
    mg_train_eval_cfg_read(&tc->eval, mg_cfg_get(root, "eval"), tc->seed);
    tc->init = mg_transfer_cfg_from(mg_cfg_get(root, "init"));
}

/* ---- writing the resolved config ---- */

/* A scalar as YAML: plain when it is safe, else double-quoted. */
static void put_scalar(mg_text *t, const char *s)
{
    bool plain = *s != 0;
    for (const char *p = s; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') || strchr("_.+-/", *p)))
            plain = false;
    if (plain) {
        mg_text_put(t, "%s", s);
        return;
    }
    mg_text_put(t, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            mg_text_put(t, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            mg_text_put(t, "\\x%02x", (unsigned char)*p);
        else
            mg_text_put(t, "%c", *p);
    }
    mg_text_put(t, "\"");
}

/* A node in flow style ({a: 1, b: [2, 3]}): compact, and layer lists stay one per line. */
static void put_flow(mg_text *t, yaml_document_t *doc, int id)
{
    yaml_node_t *n = yaml_document_get_node(doc, id);
    if (n->type == YAML_SCALAR_NODE) {
        put_scalar(t, (const char *)n->data.scalar.value);
    } else if (n->type == YAML_SEQUENCE_NODE) {
        mg_text_put(t, "[");
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
            mg_text_put(t, "%s", i == n->data.sequence.items.start ? "" : ", ");
            put_flow(t, doc, *i);
        }
        mg_text_put(t, "]");
    } else if (n->type == YAML_MAPPING_NODE) {
        mg_text_put(t, "{");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            mg_text_put(t, "%s", p == n->data.mapping.pairs.start ? "" : ", ");
            put_flow(t, doc, p->key);
            mg_text_put(t, ": ");
            put_flow(t, doc, p->value);
        }
        mg_text_put(t, "}");
    }
}

typedef struct {
    mg_text *text;
} network_job;

static void put_networks(yaml_document_t *doc, void *ctx)
{
    mg_text *t = ((network_job *)ctx)->text;
    yaml_node_t *root = yaml_document_get_root_node(doc);
    static const char *const sections[] = {"generator", "discriminator"};
    for (int s = 0; s < 2; s++)
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (k->type != YAML_SCALAR_NODE || strcmp((const char *)k->data.scalar.value, sections[s]))
                continue;
            yaml_node_t *v = yaml_document_get_node(doc, p->value);
            mg_text_put(t, "%s:\n", sections[s]);
            if (v->type != YAML_MAPPING_NODE) {
                mg_text_put(t, "  ");
                put_flow(t, doc, p->value);
                mg_text_put(t, "\n");
                continue;
            }
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
                yaml_node_t *vk = yaml_document_get_node(doc, q->key);
                yaml_node_t *vv = yaml_document_get_node(doc, q->value);
                mg_text_put(t, "  ");
                put_flow(t, doc, q->key);
                if (vv->type == YAML_SEQUENCE_NODE && !strcmp((const char *)vk->data.scalar.value, "layers")) {
                    mg_text_put(t, ":\n");
                    for (yaml_node_item_t *i = vv->data.sequence.items.start; i < vv->data.sequence.items.top; i++) {
                        mg_text_put(t, "    - ");
                        put_flow(t, doc, *i);
                        mg_text_put(t, "\n");
                    }
                } else {
                    mg_text_put(t, ": ");
                    put_flow(t, doc, q->value);
                    mg_text_put(t, "\n");
                }
            }
        }
}

/* The shortest decimal that reads back as the same float. */
static const char *float_text(float v, char *buf)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, 32, "%.*g", digits, (double)v);
        if ((float)strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

/* The same for a double. */
static const char *double_text(double v, char *buf)
{
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(buf, 32, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

static void put_optimizer(mg_text *t, const char *key, const mg_opt_cfg *o)
{
    char a[32], b[32], c[32];
    mg_text_put(t, "%s: {kind: %s, lr: %s", key, mg_opt_kind_name(o->kind), float_text(o->lr, a));
    if (o->kind == MG_OPT_ADAM)
        mg_text_put(t, ", beta1: %s, beta2: %s, eps: %s", float_text(o->beta1, a), float_text(o->beta2, b),
            float_text(o->eps, c));
    if (o->kind == MG_OPT_RMSPROP)
        mg_text_put(t, ", alpha: %s, eps: %s, momentum: %s", float_text(o->alpha, a), float_text(o->eps, b),
            float_text(o->momentum, c));
    if (o->kind == MG_OPT_SGD)
        mg_text_put(t, ", momentum: %s", float_text(o->momentum, a));
    mg_text_put(t, ", weight_decay: %s}\n", float_text(o->weight_decay, a));
}

static void put_schedule(mg_text *t, const char *key, const mg_sched *s)
{
    char a[32];
    mg_text_put(t, "%s: {kind: %s, warmup: %ld", key, mg_sched_kind_name(s->kind), s->warmup);
    if (s->kind == MG_SCHED_LINEAR || s->kind == MG_SCHED_COSINE)
        mg_text_put(t, ", final_factor: %s", float_text(s->final_factor, a));
    if (s->kind == MG_SCHED_STEP)
        mg_text_put(t, ", step_size: %ld, gamma: %s", s->step_size, float_text(s->gamma, a));
    mg_text_put(t, "}\n");
}

/* init: only when it loads or freezes something (no section = nothing to do). */
static void put_init(mg_text *t, const mg_transfer_cfg *c)
{
    if (!c->from[0] && !c->n_freeze)
        return;
    mg_text_put(t, "\ninit: {");
    if (c->from[0]) {
        mg_text_put(t, "from: ");
        put_scalar(t, c->from);
        mg_text_put(t, ", networks: [%s%s%s]%s", c->generator ? "generator" : "",
                    c->generator && c->discriminator ? ", " : "", c->discriminator ? "discriminator" : "",
                    c->n_freeze ? ", " : "");
    }
    if (c->n_freeze) {
        mg_text_put(t, "freeze: [");
        for (int i = 0; i < c->n_freeze; i++) {
            mg_text_put(t, "%s", i ? ", " : "");
            put_scalar(t, c->freeze[i]);
        }
        mg_text_put(t, "]");
    }
    mg_text_put(t, "}");
}

char *mg_train_cfg_resolved(const mg_train_cfg *tc, mg_cfg *cfg)
{
    mg_text t = {0};
    mg_text_put(&t, "# mpigan resolved config: every setting, defaults filled in\n");
    network_job job = {&t};
    mg_cfg_edit(cfg, put_networks, &job);
    mg_text_put(&t, "train:\n  loss: %s\n  n_critic: %d\n  batch: %d\n  steps: %ld\n  seed: %llu\n",
                mg_gan_loss_names[tc->loss], tc->n_critic, tc->batch, tc->steps, (unsigned long long)tc->seed);
    mg_text_put(&t, "  g_step_noise: %s\n  noise_streams: %s\n", tc->g_reuse_fakes ? "reuse" : "fresh",
        tc->noise == MG_NOISE_GLOBAL ? "global" : "per_rank");
    char clip[32];
    if (tc->loss == MG_LOSS_WASSERSTEIN)
        mg_text_put(&t, "  clip: %s\n", float_text(tc->clip, clip));
    mg_text_put(&t, "  bn: %s\n  log_interval: %ld\n  nan_policy: %s\n", tc->bn_sync ? "sync" : "local",
                tc->log_interval, tc->nan_stop ? "stop" : "skip");
    mg_text_put(&t, "  sample_interval: %ld\n  threads: %d\n  backend: %s\n  precision: %s\n  reduce: %s\n",
                tc->sample_interval, tc->threads, mg_backend_names[tc->backend], mg_precision_names[tc->precision],
                mg_reduce_path_names[tc->reduce]);
    mg_text_put(&t, "  overlap: {enabled: %s, bucket_mb: %s}\n  measure_wait: %s\n", tc->overlap ? "true" : "false",
        float_text(tc->bucket_mb, clip), tc->measure_wait ? "true" : "false");
    if (tc->ema.on)
        mg_text_put(&t, "  ema: {decay: %s, start: %ld}\n", float_text(tc->ema.decay, clip), tc->ema.start);
    mg_text_put(&t, "  pack: %d\n  accumulate: %d\n", tc->pack, tc->accumulate);
    const mg_penalty_cfg *pc = &tc->penalty;
    if (pc->r1_gamma > 0)
        mg_text_put(&t, "  r1_gamma: %s\n  r1_every: %d\n", float_text(pc->r1_gamma, clip), pc->r1_every);
    if (pc->r2_gamma > 0)
        mg_text_put(&t, "  r2_gamma: %s\n", float_text(pc->r2_gamma, clip));
    if (pc->gp_lambda > 0)
        mg_text_put(&t, "  gp_lambda: %s\n", float_text(pc->gp_lambda, clip));
    mg_text_put(&t, "  fake_labels: %s\n", tc->fake_labels == MG_FAKE_LABELS_DATA ? "data" : "uniform");
    if (tc->augment.on) {
        const char *names[3] = {tc->augment.color ? "color" : NULL, tc->augment.translation ? "translation" : NULL,
                                tc->augment.cutout ? "cutout" : NULL};
        mg_text_put(&t, "  augment: {policy: [");
        for (int i = 0, first = 1; i < 3; i++)
            if (names[i]) {
                mg_text_put(&t, "%s%s", first ? "" : ", ", names[i]);
                first = 0;
            }
        mg_text_put(&t, "], p: %s", float_text(tc->augment.p, clip));
        const mg_ada_cfg *a = &tc->augment.adaptive;
        if (a->on) {
            mg_text_put(&t, ", adaptive: {target: %s, interval: %d, ", double_text(a->target, clip), a->interval);
            mg_text_put(&t, "speed: %s}", double_text(a->speed, clip));
        }
        mg_text_put(&t, "}\n");
    }
    put_optimizer(&t, "optimizer_g", &tc->opt_g);
    put_optimizer(&t, "optimizer_d", &tc->opt_d);
    put_schedule(&t, "schedule_g", &tc->sched_g);
    put_schedule(&t, "schedule_d", &tc->sched_d);
    if (tc->source == MG_DATA_HDF5) {
        const mg_loader_cfg *lc = &tc->loader;
        mg_text_put(&t, "data: {path: ");
        put_scalar(&t, lc->path);
        mg_text_put(&t, ", sampler: %s, memory_mb: %zu, prefetch: %s, seed: %llu",
            lc->sampler == MG_SAMPLER_SHARD ? "shard" : "global", lc->memory_bytes >> 20,
            lc->prefetch ? "true" : "false", (unsigned long long)lc->seed);
        if (lc->limit > 0)
            mg_text_put(&t, ", limit: %lld", (long long)lc->limit);
        mg_text_put(&t, "}\n");
    } else {
        mg_text_put(&t, "data: {source: %s}\n", source_names[tc->source]);
    }
    mg_text_put(&t, "checkpoint: {dir: ");
    put_scalar(&t, tc->ckpt_dir);
    mg_text_put(&t, ", interval: %ld, keep_last: %d}\nrun_dir: ", tc->ckpt_interval, tc->keep_last);
    put_scalar(&t, tc->run_dir);
    put_init(&t, &tc->init);
    mg_text_put(&t, "\ndebug: {check_replicas: %ld, inject_nan_at_step: %ld, stop_at_step: %ld, diverge_at_step: %ld}\n",
        tc->check_replicas, tc->inject_nan_at_step, tc->stop_at_step, tc->diverge_at_step);
    char *eval = mg_train_eval_cfg_yaml(&tc->eval);
    mg_text_put(&t, "%s", eval);
    mg_free(eval);
    return mg_text_take(&t);
}

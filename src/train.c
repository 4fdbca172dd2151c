/* The data-parallel GAN step loop (see mg_train.h).
 *
 * One step = n_critic D updates + one G update. Each update: forward/backward over this
 * rank's slice of the global batch, then one allreduce (mean) of a buffer holding the
 * network's flat gradient followed by EXTRA statistics (loss, mean D outputs, stop flag),
 * so losses, progress numbers and the signal agreement travel with the gradient instead
 * of costing extra latency. The reduced buffer is identical on every rank, so the NaN/Inf
 * check on it is a collective verdict without another message.
 *
 * Real batches come from the HDF5 loader (mg_loader.h; its position is checkpointed) or,
 * for the 2-D benchmarks and tests, from an in-memory source (mg_mem_data.h). */
#include "mg_train.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mg_batch_streams.h"
#include "mg_blas_threads.h"
#include "mg_checkpoint.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_mem_data.h"
#include "mg_sample_grid.h"

enum { X_LOSS, X_STAT_REAL, X_STAT_FAKE, X_STOP, EXTRA };

struct mg_trainer {
    mg_cfg *cfg;
    mg_train_cfg tc;
    char *resolved;              /* resolved config text (checkpoints, run_dir/config.yaml) */
    int rank, size, local;       /* local = batch / size */
    int d_batch;                 /* D's inputs per rank: local / pack (PacGAN packs of samples) */
    mg_net G, D;
    mg_optim opt_g, opt_d;
    mg_rng noise_rng;            /* noise_streams: per_rank only */
    uint64_t data_items, noise_items;  /* items of the global sequences drawn so far */
    long step;                   /* steps completed */
    mg_shape data_shape;
    size_t noise_dim;
    mg_loader *loader;           /* HDF5 data; NULL for in-memory sources */
    float *real, *z, *dlogit;    /* local batch (local, ...); real: in-memory sources */
    const float *real_batch;     /* this D update's real samples (real, or the loader's buffer) */
    float *red_d, *red_g;        /* n_param + EXTRA: what the allreduce moves */
    float *snap_d, *snap_g;      /* BatchNorm state before an update, for nan_policy: skip */
    bool verbose, replicas_equal;
    FILE *metrics;
    double t_compute, t_reduce, t_data; /* seconds since the last log line */
    mg_loader_stats loader_logged;      /* loader totals at the last log line */
    mg_sample_grid grid;                /* rank 0, image data, sample_interval > 0 */
    bool grid_on;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void mg_train_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    MG_CHECK(sigaction(SIGTERM, &sa, NULL) == 0 && sigaction(SIGUSR1, &sa, NULL) == 0, "signals", NULL,
             "sigaction failed: %s", strerror(errno));
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const mg_net *mg_trainer_G(const mg_trainer *t) { return &t->G; }
const mg_net *mg_trainer_D(const mg_trainer *t) { return &t->D; }

static bool bce_type(mg_gan_loss k) { return k == MG_LOSS_MINIMAX || k == MG_LOSS_NONSATURATING; }

/* D's mean output for the log (per D input, i.e. per pack): probability of "real" for BCE
 * losses, raw score otherwise. */
static float d_stat(const mg_trainer *t, const float *out)
{
    if (bce_type(t->tc.loss))
        return mg_mean_sigmoid(out, t->d_batch);
    double s = 0;
    for (int i = 0; i < t->d_batch; i++)
        s += out[i];
    return (float)(s / t->d_batch);
}

static uint64_t replica_checksum(const mg_trainer *t)
{
    uint64_t parts[4] = {mg_checksum(t->G.param, t->G.n_param * sizeof(float)),
                         mg_checksum(t->G.state, t->G.n_state * sizeof(float)),
                         mg_checksum(t->D.param, t->D.n_param * sizeof(float)),
                         mg_checksum(t->D.state, t->D.n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

static void check_replicas(mg_trainer *t, const char *when)
{
    if (mg_dist_all_equal_u64(replica_checksum(t)))
        return;
    t->replicas_equal = false;
    if (t->rank == 0)
        fprintf(stderr, "mpigan: replicas of G and D differ %s (step %ld)\n", when, t->step);
}

/* ---- batches ---- */

static const char *sampler_name(const mg_train_cfg *tc)
{
    return tc->loader.sampler == MG_SAMPLER_SHARD ? "shard" : "global";
}

/* This rank's slice of the next global batch; the time spent (waiting for the loader's
 * prefetch thread, or making in-memory samples) goes to the data timer. */
static void draw_real(mg_trainer *t)
{
    double t0 = now();
    if (t->loader) {
        t->real_batch = mg_loader_next(t->loader, NULL);
    } else {
        mg_mem_data_fill(t->tc.source, t->real, t->local, t->data_shape, t->tc.seed,
                         t->data_items + (uint64_t)t->rank * (uint64_t)t->local);
        t->real_batch = t->real;
    }
    t->data_items += (uint64_t)t->tc.batch;
    t->t_data += now() - t0;
}

static void draw_noise(mg_trainer *t)
{
    double t0 = now();
    if (t->tc.noise == MG_NOISE_GLOBAL)
        mg_item_normals(t->z, t->local, t->noise_dim, t->tc.seed, MG_STREAM_NOISE,
                        t->noise_items + (uint64_t)t->rank * (uint64_t)t->local);
    else
        mg_rng_fill_normal(&t->noise_rng, t->z, (size_t)t->local * t->noise_dim, 0.0f, 1.0f);
    t->noise_items += (uint64_t)t->tc.batch;
    t->t_data += now() - t0;
}

/* ---- one update ---- */

typedef struct {
    float loss_d, loss_g, d_real, d_fake;
    double norm_d, norm_g;
    float lr_d, lr_g;
    bool stop;
} step_stats;

/* Reduces net's gradient with the extras; returns false when anything is NaN/Inf.
 * *norm gets the reduced gradient's L2 norm. */
static bool reduce_update(mg_trainer *t, mg_net *net, float *red, const float extra[EXTRA], double *norm)
{
    memcpy(red, net->grad, net->n_param * sizeof(float));
    memcpy(red + net->n_param, extra, EXTRA * sizeof(float));
    double t0 = now();
    mg_dist_allreduce_mean(red, net->n_param + EXTRA);
    t->t_reduce += now() - t0;
    double sq = 0;
    for (size_t i = 0; i < net->n_param; i++)
        sq += (double)red[i] * red[i];
    *norm = sqrt(sq);
    return isfinite(sq) && isfinite(red[net->n_param + X_LOSS]) && isfinite(red[net->n_param + X_STAT_REAL]) &&
           isfinite(red[net->n_param + X_STAT_FAKE]);
}

/* Reports a bad update; returns true when the run must stop. */
static bool bad_update(mg_trainer *t, const char *net, long step)
{
    if (t->rank == 0)
        fprintf(stderr, "mpigan: NaN or Inf in %s's loss or gradient at step %ld (nan_policy: %s)\n", net, step + 1,
                t->tc.nan_stop ? "stop: ending the run" : "skip: update skipped");
    return t->tc.nan_stop;
}

/* One D update; returns false when nan_policy says stop. */
static bool d_update(mg_trainer *t, step_stats *s, long *skipped)
{
    mg_net *G = &t->G, *D = &t->D;
    draw_real(t);
    draw_noise(t);
    memcpy(t->snap_d, D->state, D->n_state * sizeof(float));
    double t0 = now();
    const float *fake = mg_net_forward(G, t->z, t->local, MG_TRAIN);
    mg_net_zero_grad(D);
    /* PacGAN: pack consecutive samples of the NCHW batch are one D input of pack*c
     * channels, so packing is only a smaller batch count over the same memory */
    const float *out = mg_net_forward(D, t->real_batch, t->d_batch, MG_TRAIN);
    float extra[EXTRA] = {0};
    extra[X_LOSS] = mg_d_loss_real(t->tc.loss, out, t->d_batch, t->dlogit);
    extra[X_STAT_REAL] = d_stat(t, out);
    mg_net_backward(D, t->dlogit, true, false);
    out = mg_net_forward(D, fake, t->d_batch, MG_TRAIN);
    extra[X_LOSS] += mg_d_loss_fake(t->tc.loss, out, t->d_batch, t->dlogit);
    extra[X_STAT_FAKE] = d_stat(t, out);
    mg_net_backward(D, t->dlogit, true, false);
    if (t->step == t->tc.inject_nan_at_step && t->rank == t->size - 1)
        D->grad[0] = NAN;
    t->t_compute += now() - t0;

    bool ok = reduce_update(t, D, t->red_d, extra, &s->norm_d);
    s->loss_d = t->red_d[D->n_param + X_LOSS];
    s->d_real = t->red_d[D->n_param + X_STAT_REAL];
    s->d_fake = t->red_d[D->n_param + X_STAT_FAKE];
    if (!ok) {
        if (bad_update(t, "D", t->step))
            return false;
        memcpy(D->state, t->snap_d, D->n_state * sizeof(float));
        (*skipped)++;
        return true;
    }
    t0 = now();
    s->lr_d = mg_sched_lr(&t->tc.sched_d, t->tc.opt_d.lr, t->step, t->tc.steps);
    mg_optim_step(&t->opt_d, D->param, t->red_d, s->lr_d);
    if (t->tc.clip > 0) {
        const float c = t->tc.clip;
        for (size_t i = 0; i < D->n_param; i++)
            D->param[i] = fminf(fmaxf(D->param[i], -c), c);
    }
    t->t_compute += now() - t0;
    return true;
}

/* The G update through a frozen D; returns false when nan_policy says stop. */
static bool g_update(mg_trainer *t, step_stats *s, long *skipped)
{
    mg_net *G = &t->G, *D = &t->D;
    if (!t->tc.g_reuse_fakes)
        draw_noise(t);
    double t0 = now();
    /* reuse: G's activations of the last D update's fake batch are still in place */
    const float *fake = t->tc.g_reuse_fakes ? G->act[G->n_layers - 1] : mg_net_forward(G, t->z, t->local, MG_TRAIN);
    mg_net_zero_grad(G);
    const float *out = mg_net_forward(D, fake, t->d_batch, MG_TRAIN);
    float extra[EXTRA] = {0};
    extra[X_LOSS] = mg_g_loss(t->tc.loss, out, t->d_batch, t->dlogit);
    extra[X_STAT_FAKE] = d_stat(t, out);
    extra[X_STOP] = (stop_requested || (t->rank == 0 && t->step + 1 == t->tc.stop_at_step)) ? 1.0f : 0.0f;
    /* (d_batch, pack*c, h, w) is (local, c, h, w): the packed input gradient is G's */
    const float *dfake = mg_net_backward(D, t->dlogit, false, true);
    mg_net_backward(G, dfake, true, false);
    t->t_compute += now() - t0;

    bool ok = reduce_update(t, G, t->red_g, extra, &s->norm_g);
    s->loss_g = t->red_g[G->n_param + X_LOSS];
    s->stop = t->red_g[G->n_param + X_STOP] > 0;
    if (!ok) {
        if (bad_update(t, "G", t->step))
            return false;
        memcpy(G->state, t->snap_g, G->n_state * sizeof(float));
        (*skipped)++;
        return true;
    }
    t0 = now();
    s->lr_g = mg_sched_lr(&t->tc.sched_g, t->tc.opt_g.lr, t->step, t->tc.steps);
    mg_optim_step(&t->opt_g, G->param, t->red_g, s->lr_g);
    t->t_compute += now() - t0;
    return true;
}

/* ---- checkpoints ---- */

static void save_checkpoint(mg_trainer *t)
{
    /* every rank's noise stream, gathered through a sum of exact small integers */
    const size_t words = (size_t)t->size * MG_RNG_WORDS;
    double *gather = mg_alloc(sizeof(double) * words, "RNG gather");
    uint32_t mine[MG_RNG_WORDS], *all = mg_alloc(sizeof(uint32_t) * words, "RNG states");
    mg_rng_to_words(&t->noise_rng, mine);
    for (int w = 0; w < MG_RNG_WORDS; w++)
        gather[(size_t)t->rank * MG_RNG_WORDS + w] = (double)mine[w];
    mg_dist_allreduce_sum_f64(gather, words);
    for (size_t i = 0; i < words; i++)
        all[i] = (uint32_t)gather[i];
    if (t->rank == 0) {
        mg_ckpt c = {.step = t->step, .n_ranks = t->size, .data_items = t->data_items, .noise_items = t->noise_items,
                     .G = &t->G, .D = &t->D, .opt_g = &t->opt_g, .opt_d = &t->opt_d, .rng_words = all,
                     .config_text = t->resolved};
        if (t->loader) {
            /* the same on every rank (but for informational epoch fields): rank 0's is enough */
            mg_loader_state st;
            mg_loader_get_state(t->loader, &st);
            memcpy(c.loader_state, &st, sizeof st);
            snprintf(c.loader_sampler, sizeof c.loader_sampler, "%s",
                     sampler_name(&t->tc));
            c.has_loader_state = true;
        }
        mg_ckpt_write(t->tc.ckpt_dir, &c, t->tc.keep_last);
        if (t->verbose)
            printf("checkpoint: step %ld -> %s/ckpt_%09ld.h5\n", t->step, t->tc.ckpt_dir, t->step);
    }
    mg_free(gather);
    mg_free(all);
}

static void bcast_optim(mg_optim *o)
{
    if (o->m)
        mg_dist_bcast(o->m, o->n * sizeof(float));
    if (o->v)
        mg_dist_bcast(o->v, o->n * sizeof(float));
    mg_dist_bcast(&o->step, sizeof o->step);
}

/* Rank 0: the checkpoint's data position fits this run (HDF5 data: the loader state is
 * there and agrees with the trainer's item counter; in-memory data: there is none). */
static void check_loader_state(const mg_trainer *t, const char *path, const mg_ckpt *c)
{
    if (!t->loader) {
        MG_CHECK(!c->has_loader_state, path, "resume with the data section the run started with",
                 "/loader/state: the checkpoint was trained on HDF5 data (sampler %s), "
                 "this config's data are in memory", c->loader_sampler);
        return;
    }
    MG_CHECK(c->has_loader_state, path, "resume with the data section the run started with",
             "no /loader/state: the checkpoint was trained on in-memory data, this config reads %s",
             t->tc.loader.path);
    const char *sampler = sampler_name(&t->tc);
    MG_CHECK(!strcmp(c->loader_sampler, sampler), path, "resume with the data section the run started with",
             "/loader/state: the checkpoint's sampler is %s, this config's data.sampler is %s", c->loader_sampler,
             sampler);
    mg_loader_state st;
    memcpy(&st, c->loader_state, sizeof st);
    MG_CHECK(st.step * (uint64_t)t->tc.batch == c->data_items, path, "the checkpoint is inconsistent; use an older one",
             "/loader/state is at batch %llu but /meta data_items says %llu samples of batch %d",
             (unsigned long long)st.step, (unsigned long long)c->data_items, t->tc.batch);
}

/* Loads the newest checkpoint on rank 0 and broadcasts it; false when there is none. */
static bool resume_from_checkpoint(mg_trainer *t)
{
    char path[1200] = "";
    int found = t->rank == 0 ? mg_ckpt_latest(t->tc.ckpt_dir, path, sizeof path) : 0;
    mg_dist_bcast(&found, sizeof found);
    if (!found)
        return false;
    uint32_t *words = NULL;
    int64_t header[4] = {0};
    mg_loader_state loader_state = {0};
    if (t->rank == 0) {
        mg_ckpt c = {.G = &t->G, .D = &t->D, .opt_g = &t->opt_g, .opt_d = &t->opt_d};
        mg_ckpt_read(path, &c);
        MG_CHECK(c.n_ranks == t->size || t->tc.noise == MG_NOISE_GLOBAL, path,
                 "resume on the same number of ranks, or use noise_streams: global",
                 "written by %d ranks with per-rank noise streams; this run has %d", c.n_ranks, t->size);
        header[0] = c.step, header[1] = c.n_ranks, header[2] = (int64_t)c.data_items,
        header[3] = (int64_t)c.noise_items;
        check_loader_state(t, path, &c);
        memcpy(&loader_state, c.loader_state, sizeof loader_state);
        words = c.rng_words;
        mg_free(c.config_text);
        if (t->verbose)
            printf("resuming from %s (step %ld)\n", path, c.step);
    }
    mg_dist_bcast(header, sizeof header);
    t->step = (long)header[0];
    t->data_items = (uint64_t)header[2];
    t->noise_items = (uint64_t)header[3];
    const size_t n_words = (size_t)header[1] * MG_RNG_WORDS;
    if (!words)
        words = mg_alloc(sizeof(uint32_t) * n_words, "checkpoint RNG states");
    mg_dist_bcast(words, sizeof(uint32_t) * n_words);
    if (t->rank < header[1])
        mg_rng_from_words(&t->noise_rng, words + (size_t)t->rank * MG_RNG_WORDS);
    mg_free(words);
    if (t->loader) {
        mg_dist_bcast(&loader_state, sizeof loader_state);
        mg_loader_set_state(t->loader, &loader_state);
    }
    bcast_optim(&t->opt_g);
    bcast_optim(&t->opt_d);
    MG_CHECK(t->step <= t->tc.steps, path, "raise train.steps to continue training",
             "checkpoint is at step %ld, past the run's %ld steps", t->step, t->tc.steps);
    return true;
}

/* ---- setup ---- */

mg_trainer *mg_trainer_create(mg_cfg *cfg, bool resume, bool verbose)
{
    mg_trainer *t = mg_alloc(sizeof *t, "trainer");
    t->cfg = cfg;
    t->rank = mg_dist_rank();
    t->size = mg_dist_size();
    t->verbose = verbose;
    t->replicas_equal = true;
    mg_train_cfg *tc = &t->tc;
    mg_train_cfg_read(tc, cfg, t->size);
    t->local = tc->batch / t->size;
    char threads_why[160];
    int threads = mg_blas_threads_apply(tc->threads, threads_why, sizeof threads_why);
    if (verbose && t->rank == 0)
        printf("%d rank%s, %d per node; OpenBLAS threads per rank: %d (%s)\n", t->size, t->size > 1 ? "s" : "",
               mg_dist_node_size(), threads, threads_why);

    mg_cfg_node root = mg_cfg_root(cfg);
    mg_cfg_node gspec = mg_cfg_require(root, "generator");
    mg_net_from_cfg(&t->G, "G", gspec, (mg_shape){0, 0, 0}, t->local);
    /* HDF5 data: D's input is G's output; the loader checks the file against it */
    t->data_shape = tc->source == MG_DATA_HDF5 ? t->G.out : mg_mem_data_shape(tc->source, t->G.out);
    if (mg_shape_size(t->G.out) != mg_shape_size(t->data_shape) || t->G.out.c != t->data_shape.c)
        mg_cfg_fail(gspec, "the generator's last layer must produce samples shaped like the data",
                    "G makes %dx%dx%d samples, the data are %dx%dx%d", t->G.out.c, t->G.out.h, t->G.out.w,
                    t->data_shape.c, t->data_shape.h, t->data_shape.w);
    mg_cfg_node dspec = mg_cfg_require(root, "discriminator");
    t->d_batch = t->local / tc->pack;
    mg_net_from_cfg_packed(&t->D, "D", dspec, t->data_shape, tc->pack, t->d_batch);
    char d_batch_why[200];
    snprintf(d_batch_why, sizeof d_batch_why, "train.batch %d / %d ranks / train.pack %d = %d D inputs per rank",
             tc->batch, t->size, tc->pack, t->d_batch);
    mg_net_check_batch(&t->D, t->d_batch, d_batch_why);
    if (mg_shape_size(t->D.out) != 1)
        mg_cfg_fail(dspec, "end D with a linear layer of out: 1 (raw score; the loss applies any sigmoid)",
                    "D gives %zu values per sample, expected 1", mg_shape_size(t->D.out));
    mg_cfg_check_unused(cfg);
    if (tc->source == MG_DATA_HDF5) {
        t->loader = mg_loader_open(&tc->loader, t->data_shape, tc->batch);
        if (verbose && t->rank == 0) {
            char what[160];
            printf("data: %s, %s, sampler %s%s\n", tc->loader.path,
                   mg_data_describe(mg_loader_info(t->loader), what, sizeof what),
                   sampler_name(tc), tc->loader.prefetch ? ", prefetch" : "");
        }
    }
    t->noise_dim = mg_shape_size(t->G.in);
    if (verbose && t->rank == 0 && tc->pack > 1)
        printf("PacGAN: D judges packs of %d samples (input %dx%dx%d), %d per rank\n", tc->pack, t->D.in.c, t->D.in.h,
               t->D.in.w, t->d_batch);
    if (tc->bn_sync) {
        mg_net_set_reduce(&t->G, mg_dist_reduce_sum_cb, NULL);
        mg_net_set_reduce(&t->D, mg_dist_reduce_sum_cb, NULL);
    }

    mg_rng init_rng;
    mg_rng_init(&init_rng, tc->seed, mg_rng_stream_id(MG_STREAM_INIT, 0));
    mg_net_init_params(&t->G, &init_rng);
    mg_net_init_params(&t->D, &init_rng);
    mg_rng_init(&t->noise_rng, tc->seed, mg_rng_stream_id(MG_STREAM_NOISE, (uint32_t)t->rank));
    mg_optim_init(&t->opt_g, &tc->opt_g, t->G.n_param);
    mg_optim_init(&t->opt_d, &tc->opt_d, t->D.n_param);
    t->resolved = mg_train_cfg_resolved(tc, cfg);
    if (t->rank == 0)
        mg_mkdir_p(tc->run_dir);
    mg_dist_barrier();
    if (resume && !resume_from_checkpoint(t) && t->rank == 0 && verbose)
        printf("resume: no checkpoint in %s yet; starting from step 0\n", tc->ckpt_dir);
    /* rank 0's replicas are everyone's */
    mg_dist_bcast(t->G.param, t->G.n_param * sizeof(float));
    mg_dist_bcast(t->G.state, t->G.n_state * sizeof(float));
    mg_dist_bcast(t->D.param, t->D.n_param * sizeof(float));
    mg_dist_bcast(t->D.state, t->D.n_state * sizeof(float));
    check_replicas(t, "at start");

    if (!t->loader)
        t->real = mg_alloc_floats((size_t)t->local * mg_shape_size(t->data_shape), "real batch");
    t->z = mg_alloc_floats((size_t)t->local * t->noise_dim, "noise batch");
    t->dlogit = mg_alloc_floats((size_t)t->local, "loss gradient");
    t->red_d = mg_alloc_floats(t->D.n_param + EXTRA, "D reduction buffer");
    t->red_g = mg_alloc_floats(t->G.n_param + EXTRA, "G reduction buffer");
    t->snap_d = mg_alloc_floats(t->D.n_state + 1, "D state snapshot");
    t->snap_g = mg_alloc_floats(t->G.n_state + 1, "G state snapshot");

    if (t->rank == 0) {
        char path[1100];
        snprintf(path, sizeof path, "%s/config.yaml", tc->run_dir);
        FILE *f = fopen(path, "w");
        MG_CHECK(f, path, "check run_dir", "cannot write: %s", strerror(errno));
        MG_CHECK(fputs(t->resolved, f) >= 0 && fclose(f) == 0, path, "check the disk", "write failed");
        snprintf(path, sizeof path, "%s/metrics.jsonl", tc->run_dir);
        t->metrics = fopen(path, t->step > 0 ? "a" : "w");
        MG_CHECK(t->metrics, path, "check run_dir", "cannot write: %s", strerror(errno));
        if (tc->sample_interval > 0 && mg_sample_grid_drawable(&t->G)) {
            snprintf(path, sizeof path, "%s/samples", tc->run_dir);
            mg_sample_grid_init(&t->grid, &t->G, 64, tc->seed, path);
            t->grid_on = true;
        }
    }
    return t;
}

/* ---- logging ---- */

static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ", \"%s\": %.7g", key, v);
    else
        fprintf(f, ", \"%s\": null", key);
}

static void log_step(mg_trainer *t, const step_stats *s, long steps_in_window, double window_seconds)
{
    /* the slowest rank's times (collective: every rank logs at the same steps) */
    double compute = mg_dist_max(t->t_compute), reduce = mg_dist_max(t->t_reduce), data = mg_dist_max(t->t_data);
    t->t_compute = t->t_reduce = t->t_data = 0;
    /* the loader's thread: slowest rank's read and decode seconds, all ranks' bytes */
    double read = 0, decode = 0, bytes = 0;
    if (t->loader) {
        mg_loader_stats st;
        mg_loader_get_stats(t->loader, &st);
        read = mg_dist_max(st.read_s - t->loader_logged.read_s);
        decode = mg_dist_max(st.decode_s - t->loader_logged.decode_s);
        bytes = (double)(st.bytes_read - t->loader_logged.bytes_read);
        mg_dist_allreduce_sum_f64(&bytes, 1);
        t->loader_logged = st;
    }
    if (t->rank != 0)
        return;
    const double images = (double)steps_in_window * t->tc.batch * t->tc.n_critic;
    const double ips = window_seconds > 0 ? images / window_seconds : 0;
    const double eta = steps_in_window > 0 ? window_seconds / steps_in_window * (double)(t->tc.steps - t->step) : 0;
    if (t->verbose) {
        long e = (long)eta;
        printf("step %7ld/%ld  %8.0f img/s  ETA %ld:%02ld:%02ld  loss D %.4f G %.4f  D(x) %.3f D(G(z)) %.3f\n", t->step,
               t->tc.steps, ips, e / 3600, e / 60 % 60, e % 60, s->loss_d, s->loss_g, s->d_real, s->d_fake);
        fflush(stdout);
    }
    FILE *f = t->metrics;
    fprintf(f, "{\"step\": %ld", t->step);
    json_num(f, "loss_d", s->loss_d);
    json_num(f, "loss_g", s->loss_g);
    json_num(f, "d_real", s->d_real);
    json_num(f, "d_fake", s->d_fake);
    json_num(f, "grad_norm_d", s->norm_d);
    json_num(f, "grad_norm_g", s->norm_g);
    json_num(f, "lr_d", s->lr_d);
    json_num(f, "lr_g", s->lr_g);
    json_num(f, "images_per_s", ips);
    json_num(f, "time_compute_s", compute);
    json_num(f, "time_allreduce_s", reduce);
    json_num(f, "time_data_s", data);
    if (t->loader) {
        fprintf(f, ", \"epoch\": %llu", (unsigned long long)mg_loader_epoch(t->loader));
        json_num(f, "data_read_s", read);
        json_num(f, "data_decode_s", decode);
        json_num(f, "data_bytes", bytes);
    }
    fprintf(f, "}\n");
    fflush(f);
}

mg_train_result mg_trainer_run(mg_trainer *t)
{
    mg_train_result r = {.status = MG_TRAIN_DONE, .losses_finite = true};
    const mg_train_cfg *tc = &t->tc;
    long window_start_step = t->step;
    double window_start = now();
    while (t->step < tc->steps) {
        step_stats s = {0};
        memcpy(t->snap_g, t->G.state, t->G.n_state * sizeof(float));
        bool go = true;
        for (int k = 0; k < tc->n_critic && go; k++)
            go = d_update(t, &s, &r.skipped_d);
        if (go)
            go = g_update(t, &s, &r.skipped_g);
        if (!go) {
            r.status = MG_TRAIN_NAN;
            r.losses_finite = false;
            break;
        }
        t->step++;
        r.loss_d = s.loss_d;
        r.loss_g = s.loss_g;
        if (!isfinite(s.loss_d) || !isfinite(s.loss_g))
            r.losses_finite = false;
        if (t->step % tc->log_interval == 0 || t->step == tc->steps || s.stop) {
            double tnow = now();
            log_step(t, &s, t->step - window_start_step, tnow - window_start);
            window_start_step = t->step;
            window_start = tnow;
        }
        if (t->grid_on && t->step % tc->sample_interval == 0)
            mg_sample_grid_write(&t->grid, &t->G, t->step);
        if (tc->check_replicas && t->step % tc->check_replicas == 0)
            check_replicas(t, "during training");
        if (s.stop || (tc->ckpt_interval && t->step % tc->ckpt_interval == 0) || t->step == tc->steps) {
            save_checkpoint(t);
        }
        if (s.stop) {
            if (t->rank == 0)
                fprintf(stderr, "mpigan: stop requested; checkpoint written at step %ld\n", t->step);
            r.status = MG_TRAIN_STOPPED;
            stop_requested = 0; /* served */
            break;
        }
    }
    check_replicas(t, "at the end");
    r.step = t->step;
    r.replicas_equal = t->replicas_equal;
    return r;
}

void mg_trainer_free(mg_trainer *t)
{
    if (!t)
        return;
    if (t->metrics)
        fclose(t->metrics);
    mg_loader_close(t->loader);
    if (t->grid_on)
        mg_sample_grid_free(&t->grid);
    mg_net_free(&t->G);
    mg_net_free(&t->D);
    mg_optim_free(&t->opt_g);
    mg_optim_free(&t->opt_d);
    mg_free(t->resolved);
    mg_free(t->real);
    mg_free(t->z);
    mg_free(t->dlogit);
    mg_free(t->red_d);
    mg_free(t->red_g);
    mg_free(t->snap_d);
    mg_free(t->snap_g);
    mg_free(t);
}

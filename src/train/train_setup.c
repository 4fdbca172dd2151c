/* Building the GAN trainer from its config (networks, data, optimizers, the replicas'
 * reductions, evaluation, EMA, frozen layers, resume) and freeing it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mg_blas_threads.h"
#include "mg_convert.h"
#include "mg_h5schema.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_mem_data.h"
#include "mg_util.h"
#include "trainer.h"

const mg_net *mg_trainer_G(const mg_trainer *t) { return &t->G; }
const mg_net *mg_trainer_D(const mg_trainer *t) { return &t->D; }
const mg_ema *mg_trainer_ema(const mg_trainer *t) { return t->tc.ema.on ? &t->ema : NULL; }
double mg_trainer_augment_p(const mg_trainer *t) { return t->ada.p; }

const float *mg_trainer_last_gradient(const mg_trainer *t, const mg_net *net)
{
    return net == &t->G ? t->rep_g.red : t->rep_d.red;
}

void mg_trainer_observe(mg_trainer *t, mg_forward_observer fn, void *ctx)
{
    t->G.observe = t->D.observe = fn;
    t->G.observe_ctx = t->D.observe_ctx = ctx;
}

/* The EMA starts as G, or comes from the checkpoint resumed (rank 0's, broadcast). A
 * checkpoint of a run without EMA starts it from G at the resumed step. */
static void setup_ema(mg_trainer *t, bool resumed)
{
    int from_ckpt = t->rank == 0 && resumed && t->ema_resumed;
    mg_dist_bcast(&from_ckpt, sizeof from_ckpt);
    if (from_ckpt) {
        mg_dist_bcast(t->ema.param, t->ema.n_param * sizeof(float));
        mg_dist_bcast(t->ema.state, t->ema.n_state * sizeof(float));
        return;
    }
    memcpy(t->ema.param, t->G.param, t->ema.n_param * sizeof(float));
    memcpy(t->ema.state, t->G.state, t->ema.n_state * sizeof(float));
    if (resumed && t->rank == 0)
        fprintf(stderr, "mpigan: the checkpoint has no EMA generator; train.ema starts from G at step %ld\n",
                t->step);
}

/* Class counts of the HDF5 data's label column (rank 0 reads it, every rank gets it):
 * counts[k] for k < K, and the verdict (the first label outside 0 .. K-1, or -1). */
static int64_t file_class_counts(const char *path, int K, uint64_t *counts)
{
    const size_t words = (size_t)K + 1;
    double *buf = mg_alloc(sizeof(double) * words, "class counts");
    memset(buf, 0, sizeof(double) * words);
    buf[K] = -1;
    if (mg_dist_rank() == 0) {
        mg_data_info info;
        mg_h5_file *f = mg_h5_open_or_fail(path, &info);
        int32_t *labels = mg_alloc(sizeof(int32_t) * (size_t)info.n, "data labels");
        mg_h5_read_labels(f, 0, info.n, labels);
        for (int64_t i = 0; i < info.n; i++) {
            if (labels[i] < 0 || labels[i] >= K) {
                buf[K] = (double)labels[i];
                break;
            }
            buf[labels[i]] += 1;
        }
        mg_free(labels);
        mg_h5_close(f);
        mg_data_info_free(&info);
    }
    mg_dist_bcast(buf, sizeof(double) * words); /* the same verdict everywhere */
    const int64_t bad = (int64_t)buf[K];
    for (int k = 0; k < K; k++)
        counts[k] = (uint64_t)buf[k];
    mg_free(buf);
    return bad;
}

/* Class-conditional networks: the data must have labels, and as many classes as every
 * conditional network's `classes`; G's labels are then drawn (fake_labels) and D's come
 * with the real batch. */
static void setup_classes(mg_trainer *t, mg_cfg_node gspec, mg_cfg_node dspec)
{
    mg_train_cfg *tc = &t->tc;
    t->conditional = t->G.conditional || t->D.conditional;
    if (!t->conditional)
        return;
    const mg_net *nets[2] = {&t->G, &t->D};
    const mg_cfg_node specs[2] = {gspec, dspec};
    const char *where = tc->source == MG_DATA_HDF5 ? tc->loader.path : "the in-memory source";
    int K = 0;
    if (tc->source == MG_DATA_HDF5) {
        const mg_data_info *info = mg_loader_info(t->loader);
        MG_CHECK(info->has_labels, tc->loader.path,
                 "class-conditional networks need a data file with a labels dataset (`mpigan data fmnist` "
                 "or a PNG folder per class writes one), or drop their conditional layers",
                 "the data file has no labels");
        K = info->n_classes;
    } else {
        K = mg_mem_data_classes(tc->source);
        MG_CHECK(K > 0, "data.source", "use ring8 or grid25 (labelled by mode), or an HDF5 file with labels",
                 "class-conditional networks need labelled data; this source has no labels");
    }
    for (int i = 0; i < 2; i++) {
        const mg_net *net = nets[i];
        if (!net->conditional)
            continue;
        if (K > 0 && net->n_classes != K)
            mg_cfg_fail(mg_cfg_get(specs[i], "classes"), "set classes to the data's class count",
                        "%s has %d classes, %s has %d", net->name, net->n_classes, where, K);
        if (K == 0) /* a file that names no classes: its labels must fit the config's */
            K = net->n_classes;
    }
    if (t->G.conditional && t->D.conditional && t->G.n_classes != t->D.n_classes)
        mg_cfg_fail(mg_cfg_get(dspec, "classes"), "give G and D the same classes", "G has %d classes, D has %d",
                    t->G.n_classes, t->D.n_classes);
    if (t->D.conditional && tc->pack > 1)
        mg_cfg_fail(mg_cfg_root(t->cfg), "use train.pack: 1 with a conditional discriminator",
                    "a class-conditional D cannot judge packs of samples (train.pack %d)", tc->pack);
    t->n_classes = K;
    t->y_real = mg_alloc(sizeof(int) * (size_t)t->local, "real labels");
    t->y_fake = mg_alloc(sizeof(int) * (size_t)t->local, "fake labels");
    for (int i = 0; i < t->local; i++)
        t->y_real[i] = t->y_fake[i] = 0;
    uint64_t *counts = mg_alloc(sizeof(uint64_t) * (size_t)K, "class counts");
    if (tc->source == MG_DATA_HDF5) {
        const int64_t bad = file_class_counts(tc->loader.path, K, counts);
        MG_CHECK(bad < 0, tc->loader.path, "the labels must be 0 .. classes-1",
                 "label %lld is outside the %d classes", (long long)bad, K);
    } else {
        for (int k = 0; k < K; k++) /* the mixtures pick modes uniformly */
            counts[k] = 1;
    }
    if (tc->fake_labels == MG_FAKE_LABELS_DATA) {
        t->label_cum = counts;
        for (int k = 1; k < K; k++)
            t->label_cum[k] += t->label_cum[k - 1];
        MG_CHECK(t->label_cum[K - 1] > 0, where, NULL, "no labelled samples to take class frequencies from");
    } else {
        mg_free(counts);
    }
    if (t->verbose && t->rank == 0)
        printf("class-conditional: %d classes (%s%s), fake labels %s\n", K, t->G.conditional ? "G" : "",
               t->G.conditional && t->D.conditional ? ", D" : t->D.conditional ? "D" : "",
               tc->fake_labels == MG_FAKE_LABELS_DATA ? "from the data's class frequencies" : "uniform");
}

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
    /* train.accumulate: the networks hold one micro-batch (local / k) at a time */
    mg_net_from_cfg(&t->G, "G", gspec, (mg_shape){0, 0, 0}, t->local / tc->accumulate);
    /* HDF5 data: D's input is G's output; the loader checks the file against it */
    t->data_shape = tc->source == MG_DATA_HDF5 ? t->G.out : mg_mem_data_shape(tc->source, t->G.out);
    if (mg_shape_size(t->G.out) != mg_shape_size(t->data_shape) || t->G.out.c != t->data_shape.c)
        mg_cfg_fail(gspec, "the generator's last layer must produce samples shaped like the data",
                    "G makes %dx%dx%d samples, the data are %dx%dx%d", t->G.out.c, t->G.out.h, t->G.out.w,
                    t->data_shape.c, t->data_shape.h, t->data_shape.w);
    if (tc->augment.on && t->data_shape.h * t->data_shape.w == 1)
        mg_cfg_fail(mg_cfg_get(mg_cfg_require(root, "train"), "augment"),
                    "augmentation transforms images; remove train.augment for vector data",
                    "the data are %d-vectors, not images", t->data_shape.c);
    mg_cfg_node dspec = mg_cfg_require(root, "discriminator");
    t->d_batch = t->local / tc->pack;
    t->micro = t->local / tc->accumulate;
    t->d_micro = t->d_batch / tc->accumulate;
    mg_net_from_cfg_packed(&t->D, "D", dspec, t->data_shape, tc->pack, t->d_micro);
    char d_batch_why[240];
    if (tc->accumulate == 1)
        snprintf(d_batch_why, sizeof d_batch_why, "train.batch %d / %d ranks / train.pack %d = %d D inputs per rank",
                 tc->batch, t->size, tc->pack, t->d_batch);
    else
        snprintf(d_batch_why, sizeof d_batch_why,
                 "train.batch %d / %d ranks / train.pack %d / train.accumulate %d = %d D inputs per rank and "
                 "micro-batch", tc->batch, t->size, tc->pack, tc->accumulate, t->d_micro);
    mg_net_check_batch(&t->D, t->d_micro, d_batch_why);
    mg_net_set_backend(&t->G, tc->backend, tc->precision);
    mg_net_set_backend(&t->D, tc->backend, tc->precision);
    if (verbose && t->rank == 0 && tc->backend != MG_BACKEND_BLAS)
        printf("backend %s, precision %s: %d of G's and %d of D's layers\n", mg_backend_names[tc->backend],
               mg_precision_names[tc->precision], mg_net_onednn_layers(&t->G), mg_net_onednn_layers(&t->D));
    if (mg_shape_size(t->D.out) != 1)
        mg_cfg_fail(dspec, "end D with a linear layer of out: 1 (raw score; the loss applies any sigmoid)",
                    "D gives %zu values per sample, expected 1", mg_shape_size(t->D.out));
    if (mg_penalty_any(&tc->penalty)) {
        static const char *const keys[] = {"r1_gamma", "r2_gamma", "gp_lambda"};
        const float on[] = {tc->penalty.r1_gamma, tc->penalty.r2_gamma, tc->penalty.gp_lambda};
        for (int i = 0; i < 3; i++)
            if (on[i] > 0)
                mg_penalty_check_net(&t->D, mg_cfg_get(mg_cfg_get(root, "train"), keys[i]), keys[i]);
        mg_penalty_init(&t->pen, &t->D);
    }
    mg_cfg_check_unused(cfg);
    /* before the loader and any training state: a bad extractor fails the start, not step K */
    mg_train_eval_target target = {.gspec = gspec, .G = &t->G, .run_dir = tc->run_dir,
                                   .mixture_kind = tc->source == MG_DATA_RING8    ? MG_MIXTURE_RING
                                                   : tc->source == MG_DATA_GRID25 ? MG_MIXTURE_GRID
                                                                                  : -1,
                                   .data_path = tc->source == MG_DATA_HDF5 ? tc->loader.path : NULL};
    t->eval = mg_train_eval_create(&tc->eval, &target, verbose);
    if (tc->source == MG_DATA_HDF5) {
        /* a data file of another shape is refused naming the generator whose output it must match */
        char where[300], context[400];
        snprintf(context, sizeof context, "%s: its output is the model's input",
                 mg_cfg_where(gspec, where, sizeof where));
        mg_error_set_context(context);
        t->loader = mg_loader_open(&tc->loader, t->data_shape, tc->batch);
        mg_error_set_context(NULL);
        if (verbose && t->rank == 0) {
            char what[160];
            printf("data: %s, %s, sampler %s%s\n", tc->loader.path,
                   mg_data_describe(mg_loader_info(t->loader), what, sizeof what),
                   mg_trainer_sampler_name(tc), tc->loader.prefetch ? ", prefetch" : "");
        }
    }
    setup_classes(t, gspec, dspec);
    t->noise_dim = mg_shape_size(t->G.in);
    if (verbose && t->rank == 0 && tc->pack > 1)
        printf("PacGAN: D judges packs of %d samples (input %dx%dx%d), %d per rank\n", tc->pack, t->D.in.c, t->D.in.h,
               t->D.in.w, t->d_batch);
    if (tc->bn_sync) {
        mg_net_set_reduce(&t->G, mg_trainer_bn_reduce, t);
        mg_net_set_reduce(&t->D, mg_trainer_bn_reduce, t);
    } else {
        t->avg_d = t->D.n_state;
        t->avg_g = t->G.n_state + t->D.n_state;
    }
    if (tc->overlap) {
        mg_grad_overlap_init(&t->ov_d, &t->D, EXTRA + t->avg_d, tc->bucket_mb);
        mg_grad_overlap_init(&t->ov_g, &t->G, EXTRA + t->avg_g, tc->bucket_mb);
        if (verbose && t->rank == 0)
            printf("overlap: gradient sums in buckets of %g MiB during backward: D %d, G %d buckets\n",
                   (double)tc->bucket_mb, t->ov_d.n_buckets, t->ov_g.n_buckets);
    }

    mg_rng init_rng;
    mg_rng_init(&init_rng, tc->seed, mg_rng_stream_id(MG_STREAM_INIT, 0));
    mg_net_init_params(&t->G, &init_rng);
    mg_net_init_params(&t->D, &init_rng);
    mg_rng_init(&t->noise_rng, tc->seed, mg_rng_stream_id(MG_STREAM_NOISE, (uint32_t)t->rank));
    mg_optim_init(&t->opt_g, &tc->opt_g, t->G.n_param);
    mg_optim_init(&t->opt_d, &tc->opt_d, t->D.n_param);
    mg_replica_init(&t->rep_d, &t->D, &t->opt_d, EXTRA + t->avg_d, tc->reduce);
    mg_replica_init(&t->rep_g, &t->G, &t->opt_g, EXTRA + t->avg_g, tc->reduce);
    mg_transfer_freeze(&tc->init, &t->G, &t->D);
    mg_frozen_init(&t->frozen_g, &t->G);
    mg_frozen_init(&t->frozen_d, &t->D);
    if (tc->ema.on)
        mg_ema_init(&t->ema, &tc->ema, &t->G);
    mg_ada_init(&t->ada, tc->augment.p); /* resume replaces it with the checkpoint's */
    t->resolved = mg_train_cfg_resolved(tc, cfg);
    if (t->rank == 0)
        mg_mkdir_p(tc->run_dir);
    mg_dist_barrier();
    bool resumed = resume && mg_trainer_resume(t);
    if (resume && !resumed && t->rank == 0 && verbose)
        printf("resume: no checkpoint in %s yet; starting from step 0\n", tc->ckpt_dir);
    if (!resumed) /* init.from: a fresh run only; a resumed one has its own weights */
        mg_transfer_load(&tc->init, &t->G, &t->D, verbose);
    /* rank 0's replicas are everyone's */
    mg_replica_sync(&t->rep_g);
    mg_replica_sync(&t->rep_d);
    if (tc->ema.on)
        setup_ema(t, resumed);
    mg_trainer_check_replicas(t, "at start");

    if (!t->loader)
        t->real = mg_alloc_floats((size_t)t->local * mg_shape_size(t->data_shape), "real batch");
    t->z = mg_alloc_floats((size_t)t->local * t->noise_dim, "noise batch");
    t->dlogit = mg_alloc_floats((size_t)t->local, "loss gradient");
    if (tc->augment.on) {
        mg_augment_init(&t->aug, t->data_shape, t->local);
        t->aug_real = mg_alloc_floats((size_t)t->local * mg_shape_size(t->data_shape), "augmented real batch");
        t->aug_fake = mg_alloc_floats((size_t)t->local * mg_shape_size(t->data_shape), "augmented fake batch");
        t->aug_dx = mg_alloc_floats((size_t)t->local * mg_shape_size(t->data_shape), "augmentation gradient");
    }
    t->snap_d = mg_alloc_floats(t->D.n_state + 1, "D state snapshot");
    t->snap_g = mg_alloc_floats(t->G.n_state + 1, "G state snapshot");
    if (tc->accumulate > 1 && tc->g_reuse_fakes)
        t->g_state_keep = mg_alloc_floats(t->G.n_state + 1, "G state around re-forwards");

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
            /* a conditional G: a K x K grid, one class per row (at most 16 x 16) */
            const int K = t->G.conditional ? t->G.n_classes : 0;
            mg_sample_grid_init(&t->grid, &t->G, K ? (K <= 16 ? K * K : 256) : 64, tc->seed, path);
            t->grid_on = true;
        }
    }
    return t;
}

void mg_trainer_free(mg_trainer *t)
{
    if (!t)
        return;
    if (t->metrics)
        fclose(t->metrics);
    mg_loader_close(t->loader);
    mg_train_eval_free(t->eval);
    if (t->grid_on)
        mg_sample_grid_free(&t->grid);
    if (t->tc.overlap) {
        mg_grad_overlap_free(&t->ov_d);
        mg_grad_overlap_free(&t->ov_g);
    }
    mg_net_free(&t->G);
    mg_net_free(&t->D);
    mg_optim_free(&t->opt_g);
    mg_optim_free(&t->opt_d);
    mg_ema_free(&t->ema);
    mg_frozen_free(&t->frozen_g);
    mg_frozen_free(&t->frozen_d);
    mg_free(t->resolved);
    mg_free(t->real);
    mg_free(t->z);
    mg_free(t->dlogit);
    mg_free(t->y_real);
    mg_free(t->y_fake);
    mg_free(t->label_cum);
    mg_replica_free(&t->rep_d);
    mg_replica_free(&t->rep_g);
    if (t->tc.augment.on)
        mg_augment_free(&t->aug);
    mg_free(t->aug_real);
    mg_free(t->aug_fake);
    mg_free(t->aug_dx);
    mg_free(t->snap_d);
    mg_free(t->snap_g);
    mg_free(t->g_state_keep);
    if (mg_penalty_any(&t->tc.penalty))
        mg_penalty_free(&t->pen);
    mg_free(t);
}

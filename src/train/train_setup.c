/* Building the GAN trainer from its config (networks, data, optimizers, the replicas'
 * reductions, evaluation, EMA, frozen layers, resume) and freeing it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mg_blas_threads.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_mem_data.h"
#include "mg_util.h"
#include "trainer.h"

const mg_net *mg_trainer_G(const mg_trainer *t) { return &t->G; }
const mg_net *mg_trainer_D(const mg_trainer *t) { return &t->D; }
const mg_ema *mg_trainer_ema(const mg_trainer *t) { return t->tc.ema.on ? &t->ema : NULL; }

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
        t->loader = mg_loader_open(&tc->loader, t->data_shape, tc->batch);
        if (verbose && t->rank == 0) {
            char what[160];
            printf("data: %s, %s, sampler %s%s\n", tc->loader.path,
                   mg_data_describe(mg_loader_info(t->loader), what, sizeof what),
                   mg_trainer_sampler_name(tc), tc->loader.prefetch ? ", prefetch" : "");
        }
    }
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
    mg_replica_init(&t->rep_d, &t->D, &t->opt_d, EXTRA + t->avg_d);
    mg_replica_init(&t->rep_g, &t->G, &t->opt_g, EXTRA + t->avg_g);
    mg_transfer_freeze(&tc->init, &t->G, &t->D);
    mg_frozen_init(&t->frozen_g, &t->G);
    mg_frozen_init(&t->frozen_d, &t->D);
    if (tc->ema.on)
        mg_ema_init(&t->ema, &tc->ema, &t->G);
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
            mg_sample_grid_init(&t->grid, &t->G, 64, tc->seed, path);
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
    mg_replica_free(&t->rep_d);
    mg_replica_free(&t->rep_g);
    mg_free(t->snap_d);
    mg_free(t->snap_g);
    mg_free(t->g_state_keep);
    if (mg_penalty_any(&t->tc.penalty))
        mg_penalty_free(&t->pen);
    mg_free(t);
}

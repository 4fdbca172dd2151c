/* The data-parallel GAN step loop (see mg_train.h).
 *
 * One step = n_critic D updates + one G update. Each update: forward/backward over this
 * rank's slice of the global batch, then one allreduce (mean) of a buffer holding the
 * network's flat gradient followed by EXTRA statistics (loss, mean D outputs, stop flag),
 * so losses, progress numbers and the signal agreement travel with the gradient instead
 * of costing extra latency. With train.overlap (opt-in) the same buffer is reduced in
 * buckets started during backward instead (mg_grad_overlap.h). The reduced buffer is identical on every rank, so the NaN/Inf
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
#include <sys/resource.h>
#include <time.h>

#include "mg_batch_streams.h"
#include "mg_blas_threads.h"
#include "mg_checkpoint.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_grad_overlap.h"
#include "mg_mem_data.h"
#include "mg_sample_grid.h"
#include "mg_text.h"
#include "mg_train_eval.h"
#include "mg_transfer.h"
#include "mg_util.h"

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
    float *red_d, *red_g;        /* n_param + EXTRA + averaged states: what the allreduce moves */
    size_t avg_d, avg_g;         /* bn: local: state floats averaged in D's (D) and G's (G, D) reduction */
    float *snap_d, *snap_g;      /* BatchNorm state before an update, for nan_policy: skip */
    bool verbose, replicas_equal;
    FILE *metrics;
    /* seconds since the last log line: compute (forward, backward, optimizer; without the
     * communication inside them), gradient reduction, data, waiting for the slowest rank
     * where the ranks meet (measure_wait), sync-BatchNorm sums */
    double t_compute, t_reduce, t_data, t_wait, t_bn;
    double compute_t0, compute_comm0;   /* open compute interval (compute_begin) */
    mg_grad_overlap ov_d, ov_g;         /* train.overlap */
    double overlap_logged;              /* overlap_comm already moved to t_reduce */
    mg_loader_stats loader_logged;      /* loader totals at the last log line */
    mg_sample_grid grid;                /* rank 0, image data, sample_interval > 0 */
    bool grid_on;
    mg_train_eval *eval;                /* eval.interval > 0 */
    mg_ema ema;                         /* train.ema: the averaged G (tc.ema.on) */
    bool ema_resumed;                   /* rank 0: the EMA came from the checkpoint */
    mg_frozen frozen_g, frozen_d;       /* frozen layers' parameters, kept through the steps */
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

/* Overlapped gradient communication so far (both networks' buckets). */
static double overlap_comm(const mg_trainer *t) { return t->ov_d.comm_s + t->ov_g.comm_s; }

/* Communication and waiting timed so far that can happen inside a compute interval. */
static double comm_so_far(const mg_trainer *t) { return t->t_bn + t->t_wait + overlap_comm(t); }

static void compute_begin(mg_trainer *t)
{
    t->compute_t0 = mg_now();
    t->compute_comm0 = comm_so_far(t);
}

/* Ends a compute interval. Communication inside it is not compute: its sync-BN sums and
 * their waits are in t_bn and t_wait already; overlapped gradient sums are moved to
 * t_reduce. */
static void compute_end(mg_trainer *t)
{
    const double comm = comm_so_far(t) - t->compute_comm0;
    t->t_compute += mg_now() - t->compute_t0 - comm;
    t->t_reduce += overlap_comm(t) - t->overlap_logged;
    t->overlap_logged = overlap_comm(t);
}

/* Waiting for the slowest rank at a point where the ranks meet (measure_wait): a timed
 * barrier. Without it the wait would hide in the next collective's time. */
static void timed_wait(mg_trainer *t)
{
    if (!t->tc.measure_wait)
        return;
    double t0 = mg_now();
    mg_dist_barrier();
    t->t_wait += mg_now() - t0;
}

/* Sync BatchNorm's reduce callback (ctx: the trainer): the wait, then the sum, timed. */
static void bn_reduce_timed(double *buf, int n, void *ctx)
{
    mg_trainer *t = ctx;
    timed_wait(t);
    double t0 = mg_now();
    mg_dist_allreduce_sum_f64(buf, (size_t)n);
    t->t_bn += mg_now() - t0;
}

const mg_net *mg_trainer_G(const mg_trainer *t) { return &t->G; }
const mg_net *mg_trainer_D(const mg_trainer *t) { return &t->D; }
const float *mg_trainer_last_gradient(const mg_trainer *t, const mg_net *net)
{
    return net == &t->G ? t->red_g : t->red_d;
}

void mg_trainer_observe(mg_trainer *t, mg_forward_observer fn, void *ctx)
{
    t->G.observe = t->D.observe = fn;
    t->G.observe_ctx = t->D.observe_ctx = ctx;
}

const mg_ema *mg_trainer_ema(const mg_trainer *t) { return t->tc.ema.on ? &t->ema : NULL; }

/* The generator the periodic evaluation scores (one place, so it can become the EMA G). */
/* G's buffers, which hold the EMA weights while an evaluation runs with train.ema on */
static const mg_net *evaluated_G(const mg_trainer *t) { return &t->G; }

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

/* Collective: true when every rank holds the same G and D (parameters and state). */
static bool check_replicas(mg_trainer *t, const char *when)
{
    if (mg_dist_all_equal_u64(replica_checksum(t)))
        return true;
    t->replicas_equal = false;
    if (t->rank == 0)
        fprintf(stderr,
                "mpigan: replicas of G and D differ %s (step %ld): the ranks no longer train one model. "
                "Stopping without a checkpoint of them; the checkpoints already written are intact. A rank "
                "that computes differently (a faulty node, a library differing between nodes) is the usual "
                "cause; `--resume` restarts from the newest checkpoint.\n",
                when, t->step);
    return false;
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
    double t0 = mg_now();
    if (t->loader) {
        t->real_batch = mg_loader_next(t->loader, NULL);
    } else {
        mg_mem_data_fill(t->tc.source, t->real, t->local, t->data_shape, t->tc.seed,
                         t->data_items + (uint64_t)t->rank * (uint64_t)t->local);
        t->real_batch = t->real;
    }
    t->data_items += (uint64_t)t->tc.batch;
    t->t_data += mg_now() - t0;
}

static void draw_noise(mg_trainer *t)
{
    double t0 = mg_now();
    if (t->tc.noise == MG_NOISE_GLOBAL)
        mg_batch_streams_normals(t->z, t->local, t->noise_dim, t->tc.seed, MG_STREAM_NOISE,
                                 t->noise_items + (uint64_t)t->rank * (uint64_t)t->local);
    else
        mg_rng_fill_normal(&t->noise_rng, t->z, (size_t)t->local * t->noise_dim, 0.0f, 1.0f);
    t->noise_items += (uint64_t)t->tc.batch;
    t->t_data += mg_now() - t0;
}

/* ---- one update ---- */

typedef struct {
    float loss_d, loss_g, d_real, d_fake;
    double norm_d, norm_g;
    float lr_d, lr_g;
    bool stop;
} step_stats;

/* The tail of a reduction buffer, after net's n_param gradient floats: the EXTRA
 * statistics, then with bn: local the running statistics to average over ranks (D's
 * update: D's; G's update: G's, then D's, which the G step's pass through D moved).
 * Averaging them at every update keeps the replicas identical at no extra message; as
 * the statistics are moving averages, the averages are those of the ranks' batch means
 * and of their within-rank variances. */
static void put_tail(const mg_trainer *t, const mg_net *net, float *red, const float extra[EXTRA])
{
    float *tail = red + net->n_param;
    memcpy(tail, extra, EXTRA * sizeof(float));
    if (net == &t->G && t->avg_g) {
        memcpy(tail + EXTRA, t->G.state, t->G.n_state * sizeof(float));
        memcpy(tail + EXTRA + t->G.n_state, t->D.state, t->D.n_state * sizeof(float));
    } else if (net == &t->D && t->avg_d) {
        memcpy(tail + EXTRA, t->D.state, t->D.n_state * sizeof(float));
    }
}

/* bn: local: the averaged running statistics back from a reduced buffer (put_tail). */
static void take_averaged_states(mg_trainer *t, const mg_net *net, const float *red)
{
    const float *avg = red + net->n_param + EXTRA;
    if (net == &t->G && t->avg_g) {
        memcpy(t->G.state, avg, t->G.n_state * sizeof(float));
        memcpy(t->D.state, avg + t->G.n_state, t->D.n_state * sizeof(float));
    } else if (net == &t->D && t->avg_d) {
        memcpy(t->D.state, avg, t->D.n_state * sizeof(float));
    }
}

/* The update's last backward pass of net, whose parameter gradients are then final.
 * With train.overlap, the extras go to red's end first and the gradient buckets start
 * their sums while backward goes on (mg_grad_overlap.h). */
static float *final_backward(mg_trainer *t, mg_net *net, mg_grad_overlap *ov, float *red, const float extra[EXTRA],
                             const float *dout)
{
    if (!t->tc.overlap)
        return mg_net_backward(net, dout, true, false);
    put_tail(t, net, red, extra);
    mg_grad_overlap_begin(ov, red, net->grad);
    return mg_net_backward_hooked(net, dout, true, false, mg_grad_overlap_hook, ov);
}

/* Sum of x[i]^2 in double (a float square could overflow where the gradient does not), in
 * 4 + 4 vector lanes: one double accumulator would be a serial chain of dependent adds,
 * ~4 cycles per element, ~1 ms per DCGAN-28 step. */
typedef float f4 __attribute__((vector_size(16)));
typedef double d4 __attribute__((vector_size(32)));

static double sum_squares(const float *x, size_t n)
{
    d4 a = {0}, b = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        f4 u, v;
        memcpy(&u, x + i, sizeof u);
        memcpy(&v, x + i + 4, sizeof v);
        const d4 du = __builtin_convertvector(u, d4), dv = __builtin_convertvector(v, d4);
        a += du * du;
        b += dv * dv;
    }
    double sq = (a[0] + a[1]) + (a[2] + a[3]) + (b[0] + b[1]) + (b[2] + b[3]);
    for (; i < n; i++)
        sq += (double)x[i] * x[i];
    return sq;
}

/* Reduces net's gradient with the extras (blocking: ONE fused allreduce; overlap: the
 * rest of the buckets); returns false when anything is NaN/Inf. *norm gets the reduced
 * gradient's L2 norm. With measure_wait, a timed barrier first: what a rank waits there is
 * its wait for the slowest rank, which the reduction would otherwise hide in its time. */
static bool reduce_update(mg_trainer *t, mg_net *net, mg_grad_overlap *ov, float *red, const float extra[EXTRA],
                          double *norm)
{
    timed_wait(t);
    double t0 = mg_now();
    if (t->tc.overlap) {
        mg_grad_overlap_finish(ov);
        t->overlap_logged = overlap_comm(t); /* the finish's time goes to t_reduce just below */
    } else {
        memcpy(red, net->grad, net->n_param * sizeof(float));
        put_tail(t, net, red, extra);
        t0 = mg_now();
        mg_dist_allreduce_mean(red, net->n_param + EXTRA + (net == &t->G ? t->avg_g : t->avg_d));
    }
    t->t_reduce += mg_now() - t0;
    const double sq = sum_squares(red, net->n_param);
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
    compute_begin(t);
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
    /* before the last backward, which adds to it, so that overlap sends it too */
    if (t->step == t->tc.inject_nan_at_step && t->rank == t->size - 1)
        D->grad[0] = NAN;
    final_backward(t, D, &t->ov_d, t->red_d, extra, t->dlogit);
    compute_end(t);

    bool ok = reduce_update(t, D, &t->ov_d, t->red_d, extra, &s->norm_d);
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
    take_averaged_states(t, D, t->red_d);
    compute_begin(t);
    s->lr_d = mg_sched_lr(&t->tc.sched_d, t->tc.opt_d.lr, t->step, t->tc.steps);
    mg_frozen_save(&t->frozen_d, D->param);
    mg_optim_step(&t->opt_d, D->param, t->red_d, s->lr_d);
    if (t->tc.clip > 0) {
        const float c = t->tc.clip;
        for (size_t i = 0; i < D->n_param; i++)
            D->param[i] = fminf(fmaxf(D->param[i], -c), c);
    }
    mg_frozen_restore(&t->frozen_d, D->param);
    compute_end(t);
    return true;
}

/* The G update through a frozen D; returns false when nan_policy says stop. */
static bool g_update(mg_trainer *t, step_stats *s, long *skipped)
{
    mg_net *G = &t->G, *D = &t->D;
    if (!t->tc.g_reuse_fakes)
        draw_noise(t);
    compute_begin(t);
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
    final_backward(t, G, &t->ov_g, t->red_g, extra, dfake);
    compute_end(t);

    bool ok = reduce_update(t, G, &t->ov_g, t->red_g, extra, &s->norm_g);
    s->loss_g = t->red_g[G->n_param + X_LOSS];
    s->stop = t->red_g[G->n_param + X_STOP] > 0;
    if (!ok) {
        if (bad_update(t, "G", t->step))
            return false;
        memcpy(G->state, t->snap_g, G->n_state * sizeof(float));
        (*skipped)++;
        return true;
    }
    take_averaged_states(t, G, t->red_g);
    compute_begin(t);
    s->lr_g = mg_sched_lr(&t->tc.sched_g, t->tc.opt_g.lr, t->step, t->tc.steps);
    mg_frozen_save(&t->frozen_g, G->param);
    mg_optim_step(&t->opt_g, G->param, t->red_g, s->lr_g);
    mg_frozen_restore(&t->frozen_g, G->param);
    if (t->tc.ema.on) /* G is the same on every rank, so is its average */
        mg_ema_update(&t->ema, G, t->step + 1);
    compute_end(t);
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
                     .config_text = t->resolved, .ema = t->tc.ema.on ? &t->ema : NULL};
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
        mg_ckpt c = {.G = &t->G, .D = &t->D, .opt_g = &t->opt_g, .opt_d = &t->opt_d,
                     .ema = t->tc.ema.on ? &t->ema : NULL};
        mg_ckpt_read(path, &c);
        t->ema_resumed = c.has_ema;
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
                   sampler_name(tc), tc->loader.prefetch ? ", prefetch" : "");
        }
    }
    t->noise_dim = mg_shape_size(t->G.in);
    if (verbose && t->rank == 0 && tc->pack > 1)
        printf("PacGAN: D judges packs of %d samples (input %dx%dx%d), %d per rank\n", tc->pack, t->D.in.c, t->D.in.h,
               t->D.in.w, t->d_batch);
    if (tc->bn_sync) {
        mg_net_set_reduce(&t->G, bn_reduce_timed, t);
        mg_net_set_reduce(&t->D, bn_reduce_timed, t);
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
    mg_transfer_freeze(&tc->init, &t->G, &t->D);
    mg_frozen_init(&t->frozen_g, &t->G);
    mg_frozen_init(&t->frozen_d, &t->D);
    if (tc->ema.on)
        mg_ema_init(&t->ema, &tc->ema, &t->G);
    t->resolved = mg_train_cfg_resolved(tc, cfg);
    if (t->rank == 0)
        mg_mkdir_p(tc->run_dir);
    mg_dist_barrier();
    bool resumed = resume && resume_from_checkpoint(t);
    if (resume && !resumed && t->rank == 0 && verbose)
        printf("resume: no checkpoint in %s yet; starting from step 0\n", tc->ckpt_dir);
    if (!resumed) /* init.from: a fresh run only; a resumed one has its own weights */
        mg_transfer_load(&tc->init, &t->G, &t->D, verbose);
    /* rank 0's replicas are everyone's */
    mg_dist_bcast(t->G.param, t->G.n_param * sizeof(float));
    mg_dist_bcast(t->G.state, t->G.n_state * sizeof(float));
    mg_dist_bcast(t->D.param, t->D.n_param * sizeof(float));
    mg_dist_bcast(t->D.state, t->D.n_state * sizeof(float));
    if (tc->ema.on)
        setup_ema(t, resumed);
    check_replicas(t, "at start");

    if (!t->loader)
        t->real = mg_alloc_floats((size_t)t->local * mg_shape_size(t->data_shape), "real batch");
    t->z = mg_alloc_floats((size_t)t->local * t->noise_dim, "noise batch");
    t->dlogit = mg_alloc_floats((size_t)t->local, "loss gradient");
    t->red_d = mg_alloc_floats_huge(t->D.n_param + EXTRA + t->avg_d, "D reduction buffer");
    t->red_g = mg_alloc_floats_huge(t->G.n_param + EXTRA + t->avg_g, "G reduction buffer");
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

static void log_step(mg_trainer *t, const step_stats *s, long steps_in_window, double window_seconds)
{
    /* The window's time split, averaged over ranks (each rank's parts add up to about the
     * window's wall time, so the means do too), the fastest and the slowest rank's compute
     * and which rank that is (a straggler on a bad node shows as the same rank, window
     * after window), and the peak RSS (KiB on Linux) over ranks. Collective: every rank
     * logs at the same steps. */
    struct rusage ru;
    MG_CHECK(getrusage(RUSAGE_SELF, &ru) == 0, "getrusage", NULL, "failed: %s", strerror(errno));
    double mean[6] = {t->t_compute, t->t_reduce, t->t_data, t->t_wait, t->t_bn, (double)ru.ru_maxrss};
    double max[2] = {(double)ru.ru_maxrss, -t->t_compute}; /* min compute = -max(-compute) */
    int slowest_rank = 0;
    const double compute_max = mg_dist_maxloc(t->t_compute, &slowest_rank);
    mg_dist_allreduce_sum_f64(mean, 6);
    mg_dist_allreduce_max_f64(max, 2);
    const double compute_min = -max[1];
    for (int i = 0; i < 6; i++)
        mean[i] /= t->size;
    t->t_compute = t->t_reduce = t->t_data = t->t_wait = t->t_bn = 0;
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
    mg_text line = {0};
    mg_json j;
    mg_json_begin(&j, &line, 7);
    mg_json_int(&j, "step", t->step);
    mg_json_num(&j, "loss_d", s->loss_d);
    mg_json_num(&j, "loss_g", s->loss_g);
    mg_json_num(&j, "d_real", s->d_real);
    mg_json_num(&j, "d_fake", s->d_fake);
    mg_json_num(&j, "grad_norm_d", s->norm_d);
    mg_json_num(&j, "grad_norm_g", s->norm_g);
    mg_json_num(&j, "lr_d", s->lr_d);
    mg_json_num(&j, "lr_g", s->lr_g);
    mg_json_num(&j, "images_per_s", ips);
    mg_json_num(&j, "time_compute_s", mean[0]);
    mg_json_num(&j, "time_allreduce_s", mean[1]);
    mg_json_num(&j, "time_data_s", mean[2]);
    if (t->tc.measure_wait)
        mg_json_num(&j, "time_wait_s", mean[3]);
    mg_json_num(&j, "time_bn_sync_s", mean[4]);
    mg_json_num(&j, "time_compute_max_s", compute_max);
    mg_json_num(&j, "time_compute_min_s", compute_min);
    mg_json_int(&j, "slowest_rank", slowest_rank);
    mg_json_num(&j, "time_window_s", window_seconds);
    mg_json_num(&j, "peak_rss_mb", max[0] / 1024.0);
    mg_json_num(&j, "peak_rss_mb_mean", mean[5] / 1024.0);
    if (t->loader) {
        mg_json_uint(&j, "epoch", (unsigned long long)mg_loader_epoch(t->loader));
        mg_json_num(&j, "data_read_s", read);
        mg_json_num(&j, "data_decode_s", decode);
        mg_json_num(&j, "data_bytes", bytes);
    }
    mg_json_end(&j);
    fprintf(t->metrics, "%s\n", mg_text_str(&line));
    mg_text_free(&line);
    fflush(t->metrics);
}

mg_train_result mg_trainer_run(mg_trainer *t)
{
    mg_train_result r = {.status = MG_TRAIN_DONE, .losses_finite = true};
    const mg_train_cfg *tc = &t->tc;
    long window_start_step = t->step;
    double window_start = mg_now();
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
        if (t->step == tc->diverge_at_step && t->rank == t->size - 1)
            t->G.param[0] += 1e-3f;
        r.loss_d = s.loss_d;
        r.loss_g = s.loss_g;
        if (!isfinite(s.loss_d) || !isfinite(s.loss_g))
            r.losses_finite = false;
        if (t->step % tc->log_interval == 0 || t->step == tc->steps || s.stop) {
            double tnow = mg_now();
            log_step(t, &s, t->step - window_start_step, tnow - window_start);
            window_start_step = t->step;
            window_start = tnow;
        }
        if (t->grid_on && t->step % tc->sample_interval == 0) {
            if (tc->ema.on) /* the grids show the averaged G: swap its weights in and back */
                mg_ema_swap(&t->ema, &t->G);
            mg_sample_grid_write(&t->grid, &t->G, t->step);
            if (tc->ema.on)
                mg_ema_swap(&t->ema, &t->G);
        }
        const bool save = s.stop || (tc->ckpt_interval && t->step % tc->ckpt_interval == 0) || t->step == tc->steps;
        /* before every checkpoint too: never save replicas that differ */
        if (((tc->check_replicas && t->step % tc->check_replicas == 0) || save) &&
            !check_replicas(t, "during training")) {
            r.status = MG_TRAIN_DIVERGED;
            break;
        }
        if (save)
            save_checkpoint(t);
        /* after a whole step, never between a D update and the G update reusing its fakes
         * (it scores a copy of G anyway); its time stays out of the next img/s */
        if (!s.stop && mg_train_eval_due(t->eval, t->step, tc->steps)) {
            if (tc->ema.on) /* score the averaged G, as the grids show it (swapped in and back) */
                mg_ema_swap(&t->ema, &t->G);
            window_start += mg_train_eval_run(t->eval, evaluated_G(t), t->step, t->metrics);
            if (tc->ema.on)
                mg_ema_swap(&t->ema, &t->G);
        }
        if (s.stop) {
            if (t->rank == 0)
                fprintf(stderr, "mpigan: stop requested; checkpoint written at step %ld\n", t->step);
            r.status = MG_TRAIN_STOPPED;
            stop_requested = 0; /* served */
            break;
        }
    }
    if (r.status != MG_TRAIN_DIVERGED)
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
    mg_free(t->red_d);
    mg_free(t->red_g);
    mg_free(t->snap_d);
    mg_free(t->snap_g);
    mg_free(t);
}

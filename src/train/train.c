/* The data-parallel GAN step loop (see mg_train.h; the trainer's state is trainer.h's).
 *
 * One step = n_critic D updates + one G update. Each update: forward/backward over this
 * rank's slice of the global batch, then one allreduce (mean) of a buffer holding the
 * network's flat gradient followed by the EXTRA statistics (loss, mean D outputs, stop
 * flag) and, with bn: local, the running statistics to average (mg_replica.h), so
 * losses, progress numbers and the signal agreement travel with the gradient instead of
 * costing extra latency. With train.overlap (opt-in) the same buffer is reduced in buckets
 * started during backward instead (mg_grad_overlap.h). The reduced buffer is identical on
 * every rank, so the NaN/Inf check on it is a collective verdict without another message.
 *
 * Real batches come from the HDF5 loader (mg_loader.h; its position is checkpointed) or,
 * for the 2-D benchmarks and tests, from an in-memory source (mg_mem_data.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "mg_batch_streams.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_mem_data.h"
#include "mg_util.h"
#include "trainer.h"

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

void mg_trainer_bn_reduce(double *buf, int n, void *ctx)
{
    mg_trainer *t = ctx;
    timed_wait(t);
    double t0 = mg_now();
    mg_dist_allreduce_sum_f64(buf, (size_t)n);
    t->t_bn += mg_now() - t0;
}

/* The generator the periodic evaluation scores: G's buffers, which hold the EMA weights
 * while it runs with train.ema on (with_shown_G). */
static const mg_net *evaluated_G(const mg_trainer *t) { return &t->G; }

static bool bce_type(mg_gan_loss k) { return k == MG_LOSS_MINIMAX || k == MG_LOSS_NONSATURATING; }

/* D's mean output over n D inputs for the log (per D input, i.e. per pack): probability of
 * "real" for BCE losses, raw score otherwise. */
static float d_stat(const mg_trainer *t, const float *out, int n)
{
    if (bce_type(t->tc.loss))
        return mg_mean_sigmoid(out, n);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += out[i];
    return (float)(s / n);
}

bool mg_trainer_check_replicas(mg_trainer *t, const char *when)
{
    const uint64_t parts[2] = {mg_replica_checksum(&t->G), mg_replica_checksum(&t->D)};
    if (mg_dist_all_equal_u64(mg_checksum(parts, sizeof parts)))
        return true;
    t->replicas_equal = false;
    if (t->rank == 0)
        fprintf(stderr, "mpigan: replicas of G and D differ %s (step %ld): the ranks no longer train one model\n",
                when, t->step);
    return false;
}

/* ---- batches ---- */

const char *mg_trainer_sampler_name(const mg_train_cfg *tc)
{
    return tc->loader.sampler == MG_SAMPLER_SHARD ? "shard" : "global";
}

/* This rank's slice of the next global batch; the time spent (waiting for the loader's
 * prefetch thread, or making in-memory samples) goes to the data timer. */
static void draw_real(mg_trainer *t)
{
    double t0 = mg_now();
    if (t->loader) { /* the loader keeps labels with their samples: both samplers, prefetch, resume */
        t->real_batch = mg_loader_next(t->loader, t->y_real);
    } else {
        mg_mem_data_fill_labelled(t->tc.source, t->real, t->y_real, t->local, t->data_shape, t->tc.seed,
                                  t->data_items + (uint64_t)t->rank * (uint64_t)t->local);
        t->real_batch = t->real;
    }
    t->real_first = t->data_items + (uint64_t)t->rank * (uint64_t)t->local;
    t->data_items += (uint64_t)t->tc.batch;
    t->t_data += mg_now() - t0;
}

/* G's noise and, for conditional runs, the classes it is to generate (y_fake): with
 * global streams item g's label comes from its own stream (seed, MG_STREAM_LABELS, g), so
 * it does not depend on the rank count either; per_rank streams draw them after z. */
static void draw_noise(mg_trainer *t)
{
    double t0 = mg_now();
    const uint64_t first = t->noise_items + (uint64_t)t->rank * (uint64_t)t->local;
    if (t->tc.noise == MG_NOISE_GLOBAL)
        mg_batch_streams_normals(t->z, t->local, t->noise_dim, t->tc.seed, MG_STREAM_NOISE, first);
    else
        mg_rng_fill_normal(&t->noise_rng, t->z, (size_t)t->local * t->noise_dim, 0.0f, 1.0f);
    if (t->conditional && t->tc.noise == MG_NOISE_GLOBAL)
        mg_batch_streams_labels(t->y_fake, t->local, t->n_classes, t->label_cum, t->tc.seed, MG_STREAM_LABELS, first);
    else if (t->conditional)
        mg_batch_streams_labels_from(&t->noise_rng, t->y_fake, t->local, t->n_classes, t->label_cum);
    t->fake_first = first;
    t->noise_items += (uint64_t)t->tc.batch;
    t->t_data += mg_now() - t0;
}

/* ---- one update ---- */

/* What D sees of a micro-batch of this rank's samples: with train.augment, x augmented
 * into out (draws keyed by the samples' global item indices and by use, so alike on any
 * number of ranks, and different for the real batch, the D step's and the G step's fakes);
 * otherwise x itself. */
enum { AUGMENT_REAL, AUGMENT_FAKE_D, AUGMENT_FAKE_G };

static const float *seen_by_d(mg_trainer *t, const float *x, uint32_t use, uint64_t first, float *out)
{
    if (!t->tc.augment.on)
        return x;
    mg_augment_cfg cfg = t->tc.augment;
    cfg.p = (float)t->ada.p; /* train.augment.p, or where the adaptive control has moved it */
    mg_augment_forward(&t->aug, &cfg, x, out, t->micro, t->tc.seed, use, first);
    return out;
}

/* The tail of a reduction buffer, after net's n_param gradient floats: the EXTRA
 * statistics, then with bn: local the running statistics to average over ranks (D's
 * update: D's; G's update: G's, then D's, which the G step's pass through D moved).
 * Averaging them at every update keeps the replicas identical at no extra message; as
 * the statistics are moving averages, the averages are those of the ranks' batch means
 * and of their within-rank variances. */
static void put_tail(mg_trainer *t, const mg_net *net, const float extra[EXTRA])
{
    float *tail = mg_replica_tail(net == &t->G ? &t->rep_g : &t->rep_d);
    memcpy(tail, extra, EXTRA * sizeof(float));
    if (net == &t->G && t->avg_g) {
        memcpy(tail + EXTRA, t->G.state, t->G.n_state * sizeof(float));
        memcpy(tail + EXTRA + t->G.n_state, t->D.state, t->D.n_state * sizeof(float));
    } else if (net == &t->D && t->avg_d) {
        memcpy(tail + EXTRA, t->D.state, t->D.n_state * sizeof(float));
    }
}

/* bn: local: the averaged running statistics of net's BatchNorm layers from avg, laid out
 * as net's state buffer. Other state (spectral norm's vectors) is the same on every rank
 * already and keeps its own bits. */
static void take_bn_states(mg_net *net, const float *avg)
{
    for (int i = 0; i < net->n_layers; i++) {
        mg_layer *l = &net->layers[i];
        if (l->n_state && !strcmp(l->ops->kind, "batchnorm"))
            memcpy(l->state, avg + (l->state - net->state), l->n_state * sizeof(float));
    }
}

/* bn: local: the averaged running statistics back from a reduced buffer (put_tail). */
static void take_averaged_states(mg_trainer *t, const mg_net *net)
{
    const float *avg = mg_replica_tail(net == &t->G ? &t->rep_g : &t->rep_d) + EXTRA;
    if (net == &t->G && t->avg_g) {
        take_bn_states(&t->G, avg);
        take_bn_states(&t->D, avg + t->G.n_state);
    } else if (net == &t->D && t->avg_d) {
        take_bn_states(&t->D, avg);
    }
}

/* The update's last backward pass of net, whose parameter gradients are then final.
 * With train.overlap, the extras go to red's end first and the gradient buckets start
 * their sums while backward goes on (mg_grad_overlap.h). */
static float *final_backward(mg_trainer *t, mg_replica *rep, mg_grad_overlap *ov, const float extra[EXTRA],
                             const float *dout)
{
    mg_net *net = rep->net;
    if (!t->tc.overlap)
        return mg_net_backward(net, dout, true, false);
    put_tail(t, net, extra);
    mg_grad_overlap_begin(ov, rep->red, net->grad);
    return mg_net_backward_hooked(net, dout, true, false, mg_grad_overlap_hook, ov);
}

/* Reduces the update's gradient with its tail (blocking: ONE fused allreduce; overlap:
 * the rest of the buckets); returns false when anything is NaN/Inf. *norm gets the
 * reduced gradient's L2 norm. With measure_wait, a timed barrier first: what a rank waits
 * there is its wait for the slowest rank, which the reduction would otherwise hide. */
static bool reduce_update(mg_trainer *t, mg_replica *rep, mg_grad_overlap *ov, const float extra[EXTRA],
                          double *norm)
{
    timed_wait(t);
    double t0 = mg_now();
    if (t->tc.overlap) {
        mg_grad_overlap_finish(ov);
        t->overlap_logged = overlap_comm(t); /* the finish's time goes to t_reduce just below */
    } else {
        put_tail(t, rep->net, extra);
        t0 = mg_now();
        mg_replica_reduce(rep);
    }
    t->t_reduce += mg_now() - t0;
    return mg_replica_check(rep, norm);
}

/* Reports a bad update; returns true when the run must stop. */
static bool bad_update(mg_trainer *t, const char *net, long step)
{
    if (t->rank == 0)
        fprintf(stderr, "mpigan: NaN or Inf in %s's loss or gradient at step %ld (nan_policy: %s)\n", net, step + 1,
                t->tc.nan_stop ? "stop: ending the run" : "skip: update skipped");
    return t->tc.nan_stop;
}

/* train.accumulate: a micro-batch's loss gradient and statistics weigh 1/k, so that the
 * k micro-batches' sum is the mean over the rank's whole slice. */
static float micro_weight(const mg_trainer *t, float *dlogit, int n)
{
    const float w = 1.0f / (float)t->tc.accumulate;
    if (t->tc.accumulate > 1)
        for (int i = 0; i < n; i++)
            dlogit[i] *= w;
    return w;
}

/* The labels of a micro-batch starting at sample `at` of the rank's slice (NULL:
 * unconditional run). */
static const int *labels_at(const int *y, size_t at) { return y ? y + at : NULL; }

/* Micro-batch j (of train.accumulate; the whole slice when 1) of a D update: samples
 * j*micro .. (j+1)*micro - 1 of the rank's slice (so the union over j, and over ranks, is
 * the same global batch for every k). G forward on its noise and classes; what D judges
 * (augmented with train.augment); D's penalties; D forward/backward on its real, then its
 * fake samples; gradients add into D->grad. */
static void d_micro(mg_trainer *t, int j, long d_index, float extra[EXTRA])
{
    mg_net *G = &t->G, *D = &t->D;
    const int n = t->d_micro, last = j == t->tc.accumulate - 1;
    const size_t at = (size_t)j * t->micro;
    mg_net_set_labels(G, labels_at(t->y_fake, at));
    const float *fake = mg_net_forward(G, t->z + at * t->noise_dim, t->micro, MG_TRAIN);
    const float *real = seen_by_d(t, t->real_batch + at * mg_shape_size(t->data_shape), AUGMENT_REAL,
                                  t->real_first + at, t->aug_real);
    fake = seen_by_d(t, fake, AUGMENT_FAKE_D, t->fake_first + at, t->aug_fake);
    if (mg_penalty_any(&t->tc.penalty)) { /* GP's interpolation streams: global index of the D input */
        const uint64_t first = (t->real_first + at) / (uint64_t)t->tc.pack;
        bool ran;
        const float v = (float)mg_penalty_d(&t->pen, &t->tc.penalty, real, fake, labels_at(t->y_real, at),
                                            labels_at(t->y_fake, at), n, d_index, t->tc.seed, first,
                                            1.0 / t->tc.accumulate, &ran);
        extra[X_PENALTY] += v / (float)t->tc.accumulate;
    }
    /* PacGAN: pack consecutive samples of the NCHW batch are one D input of pack*c
     * channels, so packing is only a smaller batch count over the same memory */
    mg_net_set_labels(D, labels_at(t->y_real, at));
    const float *out = mg_net_forward(D, real, n, MG_TRAIN);
    float loss = mg_d_loss_real(t->tc.loss, out, n, t->dlogit);
    float w = micro_weight(t, t->dlogit, n);
    extra[X_LOSS] += w * loss;
    extra[X_STAT_REAL] += w * d_stat(t, out, n);
    extra[X_REAL_SIGN] += w * mg_ada_mean_sign(out, n);
    mg_net_backward(D, t->dlogit, true, false);
    mg_net_set_labels(D, labels_at(t->y_fake, at));
    out = mg_net_forward(D, fake, n, MG_TRAIN);
    loss = mg_d_loss_fake(t->tc.loss, out, n, t->dlogit);
    micro_weight(t, t->dlogit, n);
    extra[X_LOSS] += w * loss;
    extra[X_STAT_FAKE] += w * d_stat(t, out, n);
    if (!last) {
        mg_net_backward(D, t->dlogit, true, false);
        return;
    }
    /* before the last backward, which adds to it, so that overlap sends it too */
    if (t->step == t->tc.inject_nan_at_step && t->rank == t->size - 1)
        D->grad[0] = NAN;
    final_backward(t, &t->rep_d, &t->ov_d, extra, t->dlogit);
}

/* One D update (the critic-th of its step); returns false when nan_policy says stop. */
static bool d_update(mg_trainer *t, step_stats *s, long *skipped, int critic)
{
    mg_net *D = &t->D;
    draw_real(t);
    draw_noise(t);
    memcpy(t->snap_d, D->state, D->n_state * sizeof(float));
    compute_begin(t);
    mg_net_zero_grad(D);
    float extra[EXTRA] = {0};
    for (int j = 0; j < t->tc.accumulate; j++)
        d_micro(t, j, t->step * t->tc.n_critic + critic, extra);
    compute_end(t);

    bool ok = reduce_update(t, &t->rep_d, &t->ov_d, extra, &s->norm_d);
    const float *reduced = mg_replica_tail(&t->rep_d);
    s->loss_d = reduced[X_LOSS];
    s->d_real = reduced[X_STAT_REAL];
    s->d_fake = reduced[X_STAT_FAKE];
    if (reduced[X_PENALTY] != 0) /* 0: no penalty ran (lazy R1 between its updates) */
        t->penalty_d = reduced[X_PENALTY];
    if (!ok) {
        if (bad_update(t, "D", t->step))
            return false;
        memcpy(D->state, t->snap_d, D->n_state * sizeof(float));
        (*skipped)++;
        return true;
    }
    take_averaged_states(t, D);
    if (t->tc.augment.adaptive.on) /* the reduced sign: the same p on every rank */
        mg_ada_observe(&t->ada, &t->tc.augment.adaptive, reduced[X_REAL_SIGN], t->tc.batch);
    compute_begin(t);
    s->lr_d = mg_sched_lr(&t->tc.sched_d, t->tc.opt_d.lr, t->step, t->tc.steps);
    mg_frozen_save(&t->frozen_d, D->param);
    mg_replica_update(&t->rep_d, s->lr_d);
    if (t->tc.clip > 0) {
        const float c = t->tc.clip;
        for (size_t i = 0; i < D->n_param; i++)
            D->param[i] = fminf(fmaxf(D->param[i], -c), c);
    }
    mg_frozen_restore(&t->frozen_d, D->param);
    compute_end(t);
    return true;
}

/* Micro-batch j of the G update: G's fakes (with reused noise and accumulate 1 still in
 * place from the D update; with accumulate k, G runs again on micro-batch j's noise, which
 * gives the same fakes, and its running statistics are put back after, so that they move
 * once per step as without accumulation), D forward (on the augmented fakes with
 * train.augment) and backward into its input (frozen), back through the augmentation, G
 * backward. The fakes keep their classes: reused with the fakes, or drawn with fresh noise. */
static void g_micro(mg_trainer *t, int j, float extra[EXTRA])
{
    mg_net *G = &t->G, *D = &t->D;
    const int k = t->tc.accumulate, n = t->d_micro, last = j == k - 1;
    const size_t at = (size_t)j * t->micro;
    const bool keep = t->tc.g_reuse_fakes && k > 1;
    if (keep && j == 0)
        memcpy(t->g_state_keep, G->state, G->n_state * sizeof(float));
    mg_net_set_labels(G, labels_at(t->y_fake, at));
    const float *fake = t->tc.g_reuse_fakes && k == 1 ? G->act[G->n_layers - 1]
                                                      : mg_net_forward(G, t->z + at * t->noise_dim, t->micro, MG_TRAIN);
    mg_net_set_labels(D, labels_at(t->y_fake, at));
    const float *out =
        mg_net_forward(D, seen_by_d(t, fake, AUGMENT_FAKE_G, t->fake_first + at, t->aug_fake), n, MG_TRAIN);
    const float loss = mg_g_loss(t->tc.loss, out, n, t->dlogit);
    const float w = micro_weight(t, t->dlogit, n);
    extra[X_LOSS] += w * loss;
    extra[X_STAT_FAKE] += w * d_stat(t, out, n);
    /* (d_batch, pack*c, h, w) is (local, c, h, w): the packed input gradient is G's */
    const float *dfake = mg_net_backward(D, t->dlogit, false, true);
    if (t->tc.augment.on) { /* back through the augmentation into G's output */
        mg_augment_backward(&t->aug, dfake, t->aug_dx);
        dfake = t->aug_dx;
    }
    if (!last) {
        mg_net_backward(G, dfake, true, false);
        return;
    }
    if (keep) /* before final_backward, whose overlap sends the state with bn: local */
        memcpy(G->state, t->g_state_keep, G->n_state * sizeof(float));
    final_backward(t, &t->rep_g, &t->ov_g, extra, dfake);
}

/* The G update through a frozen D; returns false when nan_policy says stop. */
static bool g_update(mg_trainer *t, step_stats *s, long *skipped)
{
    mg_net *G = &t->G;
    if (!t->tc.g_reuse_fakes)
        draw_noise(t);
    compute_begin(t);
    mg_net_zero_grad(G);
    float extra[EXTRA] = {0};
    extra[X_STOP] = (stop_requested || (t->rank == 0 && t->step + 1 == t->tc.stop_at_step)) ? 1.0f : 0.0f;
    for (int j = 0; j < t->tc.accumulate; j++)
        g_micro(t, j, extra);
    compute_end(t);

    bool ok = reduce_update(t, &t->rep_g, &t->ov_g, extra, &s->norm_g);
    const float *reduced = mg_replica_tail(&t->rep_g);
    s->loss_g = reduced[X_LOSS];
    s->stop = reduced[X_STOP] > 0;
    if (!ok) {
        if (bad_update(t, "G", t->step))
            return false;
        memcpy(G->state, t->snap_g, G->n_state * sizeof(float));
        (*skipped)++;
        return true;
    }
    take_averaged_states(t, G);
    compute_begin(t);
    s->lr_g = mg_sched_lr(&t->tc.sched_g, t->tc.opt_g.lr, t->step, t->tc.steps);
    mg_frozen_save(&t->frozen_g, G->param);
    mg_replica_update(&t->rep_g, s->lr_g);
    mg_frozen_restore(&t->frozen_g, G->param);
    if (t->tc.ema.on) /* G is the same on every rank, so is its average */
        mg_ema_update(&t->ema, G, t->step + 1);
    compute_end(t);
    return true;
}

/* ---- the loop ---- */

/* One step: n_critic D updates, then the G update. False when nan_policy says stop. */
static bool train_step(mg_trainer *t, step_stats *s, mg_train_result *r)
{
    memcpy(t->snap_g, t->G.state, t->G.n_state * sizeof(float));
    bool go = true;
    for (int k = 0; k < t->tc.n_critic && go; k++)
        go = d_update(t, s, &r->skipped_d, k);
    return go && g_update(t, s, &r->skipped_g);
}

/* Runs f(t->G) with G holding the EMA weights when train.ema is on (swapped in and back):
 * the grids and the evaluation show the averaged generator. */
static void with_shown_G(mg_trainer *t, void (*f)(mg_trainer *t, void *ctx), void *ctx)
{
    if (t->tc.ema.on)
        mg_ema_swap(&t->ema, &t->G);
    f(t, ctx);
    if (t->tc.ema.on)
        mg_ema_swap(&t->ema, &t->G);
}

static void write_grid(mg_trainer *t, void *ctx)
{
    (void)ctx;
    mg_sample_grid_write(&t->grid, &t->G, t->step);
}

static void run_eval(mg_trainer *t, void *ctx)
{
    *(double *)ctx = mg_train_eval_run(t->eval, evaluated_G(t), t->step, t->metrics);
}

mg_train_result mg_trainer_run(mg_trainer *t)
{
    mg_train_result r = {.status = MG_TRAIN_DONE, .losses_finite = true};
    const mg_train_cfg *tc = &t->tc;
    long window_step = t->step;
    double window_start = mg_now();
    while (t->step < tc->steps) {
        step_stats s = {0};
        if (!train_step(t, &s, &r)) {
            r.status = MG_TRAIN_NAN;
            r.losses_finite = false;
            break;
        }
        t->step++;
        if (t->step == tc->diverge_at_step && t->rank == t->size - 1)
            t->G.param[0] += 1e-3f;
        r.loss_d = s.loss_d;
        r.loss_g = s.loss_g;
        r.losses_finite &= isfinite(s.loss_d) && isfinite(s.loss_g);
        if (t->step % tc->log_interval == 0 || t->step == tc->steps || s.stop) {
            const double now = mg_now();
            mg_trainer_log_step(t, &s, t->step - window_step, now - window_start);
            window_step = t->step;
            window_start = now;
        }
        if (t->grid_on && t->step % tc->sample_interval == 0)
            with_shown_G(t, write_grid, NULL);
        const bool save = s.stop || (tc->ckpt_interval && t->step % tc->ckpt_interval == 0) || t->step == tc->steps;
        /* before every checkpoint too: never save replicas that differ */
        if (((tc->check_replicas && t->step % tc->check_replicas == 0) || save) &&
            !mg_trainer_check_replicas(t, "during training")) {
            if (t->rank == 0)
                fprintf(stderr, "mpigan: stopping without a checkpoint of them; the checkpoints already written are "
                                "intact. A rank that computes differently (a faulty node, a library differing "
                                "between nodes) is the usual cause; `--resume` restarts from the newest one.\n");
            r.status = MG_TRAIN_DIVERGED;
            break;
        }
        if (save)
            mg_trainer_save_checkpoint(t);
        /* after a whole step, never between a D update and the G update reusing its fakes;
         * its time stays out of the next img/s */
        if (!s.stop && mg_train_eval_due(t->eval, t->step, tc->steps)) {
            double eval_seconds = 0;
            with_shown_G(t, run_eval, &eval_seconds);
            window_start += eval_seconds;
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
        mg_trainer_check_replicas(t, "at the end");
    r.step = t->step;
    r.replicas_equal = t->replicas_equal;
    return r;
}

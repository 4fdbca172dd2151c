/* Allreduce microbenchmark for the communication model (docs/scaling.md).
 * Run under tools/mpirun.sh N (one rank has nothing to measure and says so).
 *
 *   1. A size sweep: in-place float allreduce of 4 B .. 16 MiB, each size timed alone
 *      (barrier, then one mg_dist_allreduce_sum); the time of a repetition is the slowest
 *      rank's. tools/study/scaling_model.py fits the alpha-beta model of a ring allreduce to it.
 *   2. With --config: the messages one training step of that config sends, at their real
 *      sizes (the trainer's fused gradient allreduces of D and G, n_param + 4 floats each,
 *      and synchronised BatchNorm's statistics: per BN layer of C channels, 2C+1 floats per
 *      training-mode forward (shifted sums and count, one message while the running mean is
 *      near the batch mean, as in training) and 2C+1 per backward), each timed alone, and
 *      the whole set back to back as one step sends it.
 *   3. With --config and --gap-ms G > 0 (tools/study/scaling.py passes 10): every message again,
 *      each repetition after G ms of sgemm on buffers of its own, as the trainer sends its
 *      messages between layers' work rather than back to back. A message sent after
 *      compute takes several times as long as in a tight loop, most of all a small one
 *      (MPI's own code and data are out of cache by then; the measurement is in
 *      docs/results/2026-12-03-scaling-after-gap), so these rows are what
 *      tools/study/scaling_model.py fits.
 *
 * All MPI goes through mg_dist (src/base/dist.c): barrier, allreduce, max. The message list
 * follows the trainer (docs/training.md): per step n_critic D updates (G forward, D forward
 * and backward on real and on fake) and one G update (D forward and backward, G backward;
 * g_step_noise: fresh adds a G forward). bn: local sends no BatchNorm messages.
 *
 * Output: CSV on stdout (or --out FILE, written by rank 0), one row per message size:
 *   label,np,kind,name,floats,bytes,per_step,reps,t_min_s,t_med_s,t_mean_s
 * kind is "sweep", "msg" (a message of the step, per_step = how often a step sends it),
 * "step" (the whole set; floats = total floats per step), "msg_after_compute" (part 3) or
 * "msg_after_compute_small_pages" (part 3's gradients again from 4 kB pages); the
 * gradients' "msg_shared" and "msg_shared_after_compute" rows time the trainer's default
 * path instead (train.reduce: node, mg_dist_shared_mean on a node-shared buffer).
 * The gradients are sent from a buffer on huge pages, as the trainer's reduction buffers
 * are (mg_alloc_floats_huge); the BatchNorm sums from an ordinary one, like the layers'.
 *
 * usage: bench_allreduce [--config FILE] [--label NAME] [--min-time S] [--max-bytes B] [--gap-ms G]
 *                        [--out FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_cfg.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_blas.h"
#include "mg_net.h"
#include "mg_util.h"

#define MAX_MSG 256

typedef struct {
    char name[64];
    size_t floats;
    int per_step;
    bool gradient; /* from the trainer's reduction buffers (huge pages), else a layer's */
} msg;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    int reps;
    double tmin, tmed, tmean;
} timing;

/* The work between two messages: sgemm on buffers no message touches, for `seconds`. */
static void compute_for(double seconds)
{
    enum { N = 256 };
    static float *a, *b, *c;
    if (seconds <= 0)
        return;
    if (!a) {
        a = mg_alloc_floats(N * N, "gap operand A");
        b = mg_alloc_floats(N * N, "gap operand B");
        c = mg_alloc_floats(N * N, "gap result");
        for (int i = 0; i < N * N; i++)
            a[i] = b[i] = 0.01f;
    }
    for (double t0 = mg_now(); mg_now() - t0 < seconds;)
        mg_sgemm_checked("bench_allreduce", "gap compute", CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f,
                         c, N);
}

/* Times fn over the ranks: a few warm-up calls, then as many repetitions as fit in
 * min_time (5 .. 2000, the same count on every rank); each repetition's time is the
 * slowest rank's. With gap > 0 s, every call comes after that much compute (not timed)
 * and the repetitions are capped at 60. */
static timing time_it(void (*fn)(void *), void *arg, double min_time, double gap)
{
    timing r = {0};
    double t_warm = 0;
    for (int i = 0; i < 3; i++) {
        compute_for(gap);
        mg_dist_barrier();
        double t0 = mg_now();
        fn(arg);
        t_warm = mg_now() - t0;
    }
    t_warm = mg_dist_max(t_warm);
    int reps = t_warm > 0 ? (int)(min_time / t_warm) : 2000;
    const int most = gap > 0 ? 60 : 2000;
    reps = reps < 5 ? 5 : reps > most ? most : reps;
    double *t = mg_alloc(sizeof(double) * (size_t)reps, "timings");
    for (int i = 0; i < reps; i++) {
        compute_for(gap);
        mg_dist_barrier();
        double t0 = mg_now();
        fn(arg);
        t[i] = mg_now() - t0;
    }
    for (int i = 0; i < reps; i++)
        t[i] = mg_dist_max(t[i]);
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    double sum = 0;
    for (int i = 0; i < reps; i++)
        sum += t[i];
    r.reps = reps;
    r.tmin = t[0];
    r.tmed = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    r.tmean = sum / reps;
    mg_free(t);
    return r;
}

static float *buf, *grad_buf;

typedef struct {
    float *p;
    size_t n;
} send;

/* A message of the step as the trainer sends it: gradients from the huge-page buffer. */
static send send_of(const msg *m) { return (send){m->gradient ? grad_buf : buf, m->floats}; }

typedef struct {
    const msg *m;
    int n;
} msg_set;

static void one(void *arg)
{
    const send *s = arg;
    mg_dist_allreduce_sum(s->p, s->n);
}

static void shared_one(void *arg) { mg_dist_shared_mean(arg); }

static void whole_step(void *arg)
{
    const msg_set *s = arg;
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->m[i].per_step; k++)
            mg_dist_allreduce_sum(send_of(&s->m[i]).p, s->m[i].floats);
}

static void add_msg(msg *m, int *n, const char *name, size_t floats, int per_step, bool gradient)
{
    if (per_step <= 0)
        return;
    MG_CHECK(*n < MAX_MSG, "bench_allreduce", NULL, "too many messages");
    snprintf(m[*n].name, sizeof m[*n].name, "%s", name);
    m[*n].floats = floats;
    m[*n].per_step = per_step;
    m[*n].gradient = gradient;
    (*n)++;
}

/* BatchNorm messages of net given how many training-mode forwards and input-gradient
 * backwards a step makes through it. */
static void bn_msgs(msg *m, int *n, const mg_net *net, int forwards, int backwards)
{
    for (int i = 0; i < net->n_layers; i++) {
        const mg_layer *l = &net->layers[i];
        if (strcmp(l->ops->kind, "batchnorm") != 0)
            continue;
        size_t C = (size_t)l->in.c;
        char name[80];
        snprintf(name, sizeof name, "%s fwd", l->name);
        add_msg(m, n, name, 2 * C + 1, forwards, false);
        snprintf(name, sizeof name, "%s bwd", l->name);
        add_msg(m, n, name, 2 * C + 1, backwards, false);
    }
}

/* The messages of one training step of config (see the comment at the top). */
static int step_msgs(const char *config, msg *m)
{
    int n = 0;
    mg_cfg *cfg = mg_cfg_load_file(config);
    mg_cfg_node root = mg_cfg_root(cfg), train = mg_cfg_get(root, "train");
    int n_critic = 1;
    bool fresh = false, bn_sync = true;
    if (mg_cfg_present(train)) {
        n_critic = (int)mg_cfg_int(train, "n_critic", 1, 1, 1000);
        fresh = !strcmp(mg_cfg_string(train, "g_step_noise", "reuse"), "fresh");
        bn_sync = strcmp(mg_cfg_string(train, "bn", "sync"), "local") != 0;
    }
    mg_net G, D;
    mg_net_from_cfg(&G, "G", mg_cfg_require(root, "generator"), (mg_shape){0, 0, 0}, 1);
    mg_net_from_cfg(&D, "D", mg_cfg_require(root, "discriminator"), G.out, 1);
    add_msg(m, &n, "D gradient", D.n_param + 4, n_critic, true);
    add_msg(m, &n, "G gradient", G.n_param + 4, 1, true);
    if (bn_sync) {
        bn_msgs(m, &n, &G, n_critic + (fresh ? 1 : 0), 1);
        bn_msgs(m, &n, &D, 2 * n_critic + 1, 2 * n_critic + 1);
    }
    mg_net_free(&G);
    mg_net_free(&D);
    mg_cfg_free(cfg);
    return n;
}

static void row(FILE *f, const char *label, const char *kind, const char *name, size_t floats, int per_step,
                timing t)
{
    if (mg_dist_rank() != 0)
        return;
    fprintf(f, "%s,%d,%s,%s,%zu,%zu,%d,%d,%.9g,%.9g,%.9g\n", label, mg_dist_size(), kind, name, floats,
            floats * sizeof(float), per_step, t.reps, t.tmin, t.tmed, t.tmean);
    fflush(f);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const char *config = NULL, *label = "mpi", *out = NULL;
    double min_time = 0.2, gap_ms = 0;
    size_t max_bytes = (size_t)16 << 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--config") && v) config = argv[++i];
        else if (!strcmp(a, "--label") && v) label = argv[++i];
        else if (!strcmp(a, "--out") && v) out = argv[++i];
        else if (!strcmp(a, "--min-time") && v) min_time = atof(argv[++i]);
        else if (!strcmp(a, "--max-bytes") && v) max_bytes = (size_t)atol(argv[++i]);
        else if (!strcmp(a, "--gap-ms") && v) gap_ms = atof(argv[++i]);
        else {
            if (mg_dist_rank() == 0)
                fprintf(stderr,
                        "usage: bench_allreduce [--config FILE] [--label NAME] [--min-time S] [--max-bytes B] "
                        "[--gap-ms G] [--out FILE]\n(run under tools/mpirun.sh N; see docs/scaling.md)\n");
            mg_dist_finalize();
            return 2;
        }
    }
    if (mg_dist_size() == 1) {
        printf("bench_allreduce: one rank has nothing to reduce; run it under tools/mpirun.sh 2 "
               "(tools/study/scaling.py does, per transport; see docs/scaling.md)\n");
        mg_dist_finalize();
        return 0;
    }
    msg m[MAX_MSG];
    int n_msg = config ? step_msgs(config, m) : 0;
    size_t max_floats = max_bytes / sizeof(float);
    for (int i = 0; i < n_msg; i++)
        if (m[i].floats > max_floats)
            max_floats = m[i].floats;
    buf = mg_alloc_floats(max_floats, "allreduce buffer");
    grad_buf = mg_alloc_floats_huge(max_floats, "gradient reduction buffer");
    for (size_t i = 0; i < max_floats; i++)
        buf[i] = grad_buf[i] = 1.0f;

    FILE *f = stdout;
    if (out && mg_dist_rank() == 0) {
        f = fopen(out, "w");
        MG_CHECK(f, out, "is the folder there and writable?", "cannot open for writing");
    }
    /* first calls set up connections and buffers: keep them out of the figures */
    for (int i = 0; i < 20; i++) {
        mg_dist_allreduce_sum(buf, i % 2 ? 1 : max_floats);
        mg_dist_allreduce_sum(grad_buf, i % 2 ? 1 : max_floats);
    }
    if (mg_dist_rank() == 0)
        fprintf(f, "label,np,kind,name,floats,bytes,per_step,reps,t_min_s,t_med_s,t_mean_s\n");
    for (size_t floats = 1; floats <= max_bytes / sizeof(float); floats *= 4) {
        char name[32];
        snprintf(name, sizeof name, "%zu B", floats * sizeof(float));
        send x = {buf, floats};
        row(f, label, "sweep", name, floats, 0, time_it(one, &x, min_time, 0));
    }
    if (n_msg) {
        size_t total = 0;
        for (int i = 0; i < n_msg; i++) {
            send x = send_of(&m[i]);
            row(f, label, "msg", m[i].name, m[i].floats, m[i].per_step, time_it(one, &x, min_time, 0));
            total += m[i].floats * (size_t)m[i].per_step;
        }
        msg_set s = {m, n_msg};
        row(f, label, "step", "all messages of one step", total, 1, time_it(whole_step, &s, min_time, 0));
        for (int i = 0; gap_ms > 0 && i < n_msg; i++) {
            send x = send_of(&m[i]);
            row(f, label, "msg_after_compute", m[i].name, m[i].floats, m[i].per_step,
                time_it(one, &x, min_time, 1e-3 * gap_ms));
        }
        /* the gradients through node-shared buffers (train.reduce: node), after and without compute */
        for (int i = 0; i < n_msg; i++) {
            if (!m[i].gradient)
                continue;
            mg_dist_shared *sh = mg_dist_shared_new(m[i].floats, true, "shared gradient buffer");
            row(f, label, "msg_shared", m[i].name, m[i].floats, m[i].per_step, time_it(shared_one, sh, min_time, 0));
            if (gap_ms > 0)
                row(f, label, "msg_shared_after_compute", m[i].name, m[i].floats, m[i].per_step,
                    time_it(shared_one, sh, min_time, 1e-3 * gap_ms));
            mg_dist_shared_free(sh);
        }
        /* the gradients once more from ordinary pages: what the huge pages buy, side by side */
        for (int i = 0; gap_ms > 0 && i < n_msg; i++) {
            send x = {buf, m[i].floats};
            if (m[i].gradient)
                row(f, label, "msg_after_compute_small_pages", m[i].name, m[i].floats, m[i].per_step,
                    time_it(one, &x, min_time, 1e-3 * gap_ms));
        }
    }
    if (f != stdout)
        fclose(f);
    mg_free(buf);
    mg_free(grad_buf);
    mg_dist_finalize();
    return 0;
}

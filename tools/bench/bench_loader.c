/* Data loader benchmark (docs/data.md). Run plain (one rank) or under tools/mpirun.sh N.
 *
 *   1. Loader throughput on Fashion-MNIST (converted into a temporary folder), samples/s
 *      per rank, for each sampler, with and without the prefetch thread; the consumer does
 *      nothing but take batches.
 *   2. A DCGAN-28 training step (configs/fmnist_dcgan.yaml: D on real and fake, G through
 *      D, gradient allreduce, Adam) fed by the loader with prefetch on, and the share of the
 *      step spent waiting for data (target < 2%); prefetch off for comparison.
 *   3. The shard sampler streaming a synthetic file of --stream-mb through --budget-mb
 *      (file >= 4x budget), against the sequential read rate of the same byte ranges in the
 *      same run. As root the page cache is dropped before each pass
 *      (echo 3 > /proc/sys/vm/drop_caches), so both read from the disk; otherwise the
 *      figures are cache-warm and the output says so.
 *
 * usage: bench_loader [--config FILE] [--steps N] [--stream-mb S] [--budget-mb M] [--dir D]
 *                     [--passes P] [--stream-only] [--warm]
 * (--warm keeps the page cache: the loader's CPU-bound ceiling.) */
#include <cblas.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mg_cfg.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_h5schema.h"
#include "mg_loader.h"
#include "mg_loss.h"
#include "mg_net.h"
#include "mg_optim.h"
#include "mg_util.h"

#define MiB (1024.0 * 1024.0)

static int rank, size;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    if (rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* Drops the page cache (root only); true when it worked. Collective. */
static bool drop_caches(void)
{
    bool ok = false;
    mg_dist_barrier();
    if (rank == 0) {
        sync();
        FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
        ok = f && fputs("3\n", f) >= 0;
        if (f)
            ok = fclose(f) == 0 && ok;
    }
    mg_dist_bcast(&ok, sizeof ok);
    mg_dist_barrier();
    return ok;
}

static mg_loader_cfg loader_cfg(const char *path, mg_sampler s, double budget_mb, bool prefetch)
{
    mg_loader_cfg c;
    mg_loader_cfg_default(&c);
    snprintf(c.path, sizeof c.path, "%s", path);
    c.sampler = s;
    c.memory_bytes = (size_t)(budget_mb * MiB);
    c.prefetch = prefetch;
    c.seed = 1;
    return c;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 1. Batches as fast as the loader delivers them, for `epochs` epochs of the file. */
static void throughput(const char *path, mg_sampler s, double budget_mb, bool prefetch, const char *label)
{
    const int b = 64, B = b * size;
    mg_loader_cfg c = loader_cfg(path, s, budget_mb, prefetch);
    mg_loader *L = mg_loader_open(&c, (mg_shape){1, 28, 28}, B);
    long steps = (long)(mg_loader_info(L)->n / B);
    double sum = 0;
    mg_loader_next(L, NULL); /* first window / thread start outside the timing */
    mg_dist_barrier();
    double t0 = mg_now();
    for (long t = 0; t < steps; t++)
        sum += mg_loader_next(L, NULL)[0];
    double dt = mg_now() - t0;
    mg_loader_stats st;
    mg_loader_get_stats(L, &st);
    double slowest = mg_dist_max(dt);
    double rate = (double)steps * b / dt, min_rate = mg_dist_min(rate);
    say("| %-34s | %8s | %10.0f | %10.0f | %7.1f | %6.3f |\n", label, prefetch ? "on" : "off", min_rate,
        (double)steps * B / slowest, st.bytes_read / MiB, st.read_s);
    (void)sum;
    mg_loader_close(L);
}

/* 2. DCGAN-28 steps fed by the loader. */
static void dcgan(const char *config, const char *path, bool prefetch, int steps)
{
    const int b = 64, B = b * size;
    mg_cfg *cfg = mg_cfg_load_file(config);
    mg_net G, D;
    mg_net_from_cfg(&G, "G", mg_cfg_require(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, b);
    mg_net_from_cfg(&D, "D", mg_cfg_require(mg_cfg_root(cfg), "discriminator"), G.out, b);
    mg_cfg_free(cfg);
    mg_rng rng;
    mg_rng_init(&rng, 1, mg_rng_stream_id(MG_STREAM_INIT, 0));
    mg_net_init_params(&G, &rng);
    mg_net_init_params(&D, &rng);
    mg_rng_init(&rng, 1, mg_rng_stream_id(MG_STREAM_NOISE, (uint32_t)rank));
    mg_opt_cfg oc = mg_opt_cfg_default(MG_OPT_ADAM);
    oc.lr = 2e-4f;
    oc.beta1 = 0.5f;
    mg_optim og, od;
    mg_optim_init(&og, &oc, G.n_param);
    mg_optim_init(&od, &oc, D.n_param);
    size_t nz = mg_shape_size(G.in) * (size_t)b;
    float *z = mg_alloc_floats(nz, "noise"), *dl = mg_alloc_floats((size_t)b, "dlogit");

    mg_loader_cfg c = loader_cfg(path, MG_SAMPLER_GLOBAL, 1024, prefetch);
    mg_loader *L = mg_loader_open(&c, D.in, B);
    double wait = 0, total = 0, worst_wait = 0;
    double *waits = mg_alloc((size_t)steps * sizeof(double), "waits");
    const int warm = 3;
    for (int it = 0; it < warm + steps; it++) {
        mg_dist_barrier();
        double t0 = mg_now();
        const float *real = mg_loader_next(L, NULL);
        double t1 = mg_now();
        mg_rng_fill_normal(&rng, z, nz, 0, 1);
        const float *fake = mg_net_forward(&G, z, b, MG_TRAIN);
        mg_net_zero_grad(&D);
        const float *out = mg_net_forward(&D, real, b, MG_TRAIN);
        mg_d_loss_real(MG_LOSS_NONSATURATING, out, b, dl);
        mg_net_backward(&D, dl, true, false);
        out = mg_net_forward(&D, fake, b, MG_TRAIN);
        mg_d_loss_fake(MG_LOSS_NONSATURATING, out, b, dl);
        mg_net_backward(&D, dl, true, false);
        mg_dist_allreduce_mean(D.grad, D.n_param);
        mg_optim_step(&od, D.param, D.grad, oc.lr);
        mg_net_zero_grad(&G);
        out = mg_net_forward(&D, fake, b, MG_TRAIN);
        mg_g_loss(MG_LOSS_NONSATURATING, out, b, dl);
        float *dfake = mg_net_backward(&D, dl, false, true);
        mg_net_backward(&G, dfake, true, false);
        mg_dist_allreduce_mean(G.grad, G.n_param);
        mg_optim_step(&og, G.param, G.grad, oc.lr);
        double t2 = mg_now();
        if (it >= warm) {
            wait += t1 - t0;
            total += t2 - t0;
            waits[it - warm] = t1 - t0;
            worst_wait = t1 - t0 > worst_wait ? t1 - t0 : worst_wait;
        }
    }
    qsort(waits, (size_t)steps, sizeof(double), cmp_double);
    double median_wait = waits[steps / 2];
    mg_free(waits);
    double share = wait / total, worst = mg_dist_max(share);
    say("| prefetch %-3s | %5d | %9.2f | %9.3f | %9.3f | %8.2f | %7.2f%% | %7.2f%% | %7.0f |\n",
        prefetch ? "on" : "off", steps, 1e3 * total / steps, 1e3 * wait / steps, 1e3 * median_wait,
        1e3 * worst_wait, 100 * share, 100 * worst, (double)b * steps / total);
    mg_loader_close(L);
    mg_optim_free(&og);
    mg_optim_free(&od);
    mg_free(z);
    mg_free(dl);
    mg_net_free(&G);
    mg_net_free(&D);
}

/* 3a. Sequential pread of this rank's 1/P of the file's bytes, 8 MiB at a time; with
 * `hinted`, the kernel is told about the next two pieces first (POSIX_FADV_WILLNEED), as the
 * loader does. */
static double sequential_rate(const char *path, bool hinted, int64_t *bytes_out)
{
    struct stat stt;
    MG_CHECK(stat(path, &stt) == 0, path, NULL, "cannot stat: %s", strerror(errno));
    int64_t lo = (int64_t)rank * stt.st_size / size, hi = (int64_t)(rank + 1) * stt.st_size / size;
    int fd = open(path, O_RDONLY);
    MG_CHECK(fd >= 0, path, NULL, "cannot open: %s", strerror(errno));
    const size_t piece = 8u << 20;
    char *buf = mg_alloc(piece, "read buffer");
    mg_dist_barrier();
    double t0 = mg_now();
    for (int64_t at = lo; at < hi;) {
        size_t want = (size_t)(hi - at) < piece ? (size_t)(hi - at) : piece;
        if (hinted)
            for (int64_t a = at == lo ? at + (int64_t)piece : at + 2 * (int64_t)piece;
                 a <= at + 2 * (int64_t)piece && a < hi; a += (int64_t)piece)
                posix_fadvise(fd, (off_t)a, (off_t)piece, POSIX_FADV_WILLNEED);
        ssize_t got = pread(fd, buf, want, (off_t)at);
        MG_CHECK(got > 0, path, NULL, "read failed");
        at += got;
    }
    double dt = mg_now() - t0;
    close(fd);
    mg_free(buf);
    *bytes_out = hi - lo;
    return dt;
}

/* 3b. One epoch of this rank's shard through the shard sampler. */
static double shard_epoch(const char *path, double budget_mb, mg_shape s, int64_t *bytes_out, mg_loader_state *st)
{
    const int b = 64, B = b * size;
    mg_loader_cfg c = loader_cfg(path, MG_SAMPLER_SHARD, budget_mb, true);
    mg_loader *L = mg_loader_open(&c, s, B);
    int64_t n = mg_loader_info(L)->n;
    int64_t shard = (int64_t)(rank + 1) * n / size - (int64_t)rank * n / size;
    long steps = (long)((n / size) / b); /* the same on every rank, < one epoch */
    mg_dist_barrier();
    double t0 = mg_now();
    float sum = 0;
    for (long t = 0; t < steps; t++)
        sum += mg_loader_next(L, NULL)[0];
    double dt = mg_now() - t0;
    (void)sum;
    (void)shard;
    mg_loader_get_state(L, st);
    mg_loader_stats ls;
    mg_loader_get_stats(L, &ls);
    if (getenv("MG_BENCH_VERBOSE"))
        printf("[rank %d] shard epoch %.2f s: read %.2f s (%.0f MiB), decode %.2f s, waited %.2f s\n", rank, dt,
               ls.read_s, ls.bytes_read / MiB, ls.decode_s, ls.wait_s);
    *bytes_out = (int64_t)steps * b * (int64_t)mg_shape_size(s);
    mg_loader_close(L);
    return dt;
}

static void write_stream_file(const char *path, double mb, mg_shape s)
{
    mg_data_info info = {0};
    info.kind = MG_DATA_IMAGES;
    info.c = s.c;
    info.h = s.h;
    info.w = s.w;
    info.n = (int64_t)(mb * MiB) / (int64_t)mg_shape_size(s);
    info.has_labels = true;
    info.value_range[1] = 255;
    snprintf(info.source, sizeof info.source, "bench_loader synthetic stream file");
    mg_h5_writer *w = mg_h5_create(path, &info, NULL);
    const int64_t per = 1024;
    size_t sb = mg_shape_size(s);
    unsigned char *x = mg_alloc(per * sb, "pixels");
    int32_t *y = mg_alloc(per * sizeof(int32_t), "labels");
    for (int64_t start = 0; start < info.n; start += per) {
        int64_t k = info.n - start < per ? info.n - start : per;
        for (int64_t i = 0; i < k; i++) {
            y[i] = (int32_t)((start + i) % 10);
            for (size_t j = 0; j < sb; j++)
                x[(size_t)i * sb + j] = (unsigned char)((start + i) * 31 + j);
        }
        mg_h5_write_rows(w, start, k, x, y);
    }
    mg_h5_writer_close(w);
    mg_free(x);
    mg_free(y);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    rank = mg_dist_rank();
    size = mg_dist_size();
    const char *config = "configs/fmnist_dcgan.yaml", *base = "/tmp";
    int steps = 100, passes = 3;
    bool stream_only = false, warm = false;
    double stream_mb = 1024, budget_mb = 256;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--config") == 0)
            config = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--steps") == 0)
            steps = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--stream-mb") == 0)
            stream_mb = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--budget-mb") == 0)
            budget_mb = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--dir") == 0)
            base = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--passes") == 0)
            passes = atoi(argv[++i]);
        else if (strcmp(argv[i], "--stream-only") == 0)
            stream_only = true;
        else if (strcmp(argv[i], "--warm") == 0)
            warm = true;
        else {
            say("usage: bench_loader [--config FILE] [--steps N] [--stream-mb S] [--budget-mb M] [--dir D] "
                "[--passes P] [--stream-only] [--warm]\n");
            mg_dist_finalize();
            return 2;
        }
    }
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
    char dir[512] = "";
    if (rank == 0) {
        snprintf(dir, sizeof dir, "%s/mg_bench_loader_XXXXXX", base);
        MG_CHECK(mkdtemp(dir) != NULL, dir, NULL, "cannot create a temporary folder: %s", strerror(errno));
    }
    mg_dist_bcast(dir, sizeof dir);
    char train[700], stream[700];
    snprintf(train, sizeof train, "%s/%s", dir, MG_FMNIST_TRAIN_FILE);
    snprintf(stream, sizeof stream, "%s/stream.h5", dir);

    say("bench_loader: %d rank%s, local batch 64, OpenBLAS threads %d, %ld cores online\n\n", size,
        size > 1 ? "s" : "", openblas_get_num_threads(), sysconf(_SC_NPROCESSORS_ONLN));
    if (rank == 0 && !stream_only) {
        double t0 = mg_now();
        mg_convert_fmnist(MG_FMNIST_DEFAULT_DIR, dir);
        say("Fashion-MNIST converted in %.2f s\n\n", mg_now() - t0);
    }
    mg_dist_barrier();

    if (!stream_only) {
    say("1. Loader throughput, Fashion-MNIST train (60000 x 1x28x28 uint8), page cache warm, one epoch\n\n");
    say("| sampler                            | prefetch | samples/s per rank (slowest) | samples/s all ranks | MiB read per rank | read s |\n");
    say("|------------------------------------|----------|------------|------------|---------|--------|\n");
    for (int p = 0; p < 2; p++) {
        throughput(train, MG_SAMPLER_GLOBAL, 1024, p, "global");
        throughput(train, MG_SAMPLER_SHARD, 1024, p, "shard, resident (1024 MiB)");
        throughput(train, MG_SAMPLER_SHARD, 4, p, "shard, streaming (4 MiB budget)");
    }

    say("\n2. DCGAN-28 step (configs/fmnist_dcgan.yaml) fed by the global sampler, local batch 64\n\n");
    say("| mode         | steps | step ms   | wait ms (mean) | (median) | (max) | wait %% of step | worst rank | img/s per rank |\n");
    say("|--------------|-------|-----------|-----------|-----------|----------|----------|----------|---------|\n");
    dcgan(config, train, true, steps);
    dcgan(config, train, false, steps / 2 > 10 ? steps / 2 : 10);
    }

    mg_shape s = {3, 64, 64};
    say("\n3. Shard streaming vs sequential read: %.0f MiB file of 3x64x64 images, budget %.0f MiB per rank "
        "(file / budget = %.1f, shard / budget = %.1f)\n\n", stream_mb, budget_mb, stream_mb / budget_mb,
        stream_mb / size / budget_mb);
    if (rank == 0)
        write_stream_file(stream, stream_mb, s);
    mg_dist_barrier();
    bool cold = true;
    say("| pass | sequential MiB/s (all ranks) | sequential + WILLNEED MiB/s | shard sampler MiB/s | shard / best sequential |\n");
    say("|------|------------------|------------------|------------------|-------|\n");
    double *seq_best = mg_alloc((size_t)passes * sizeof(double), "rates"), *shard_rate = mg_alloc((size_t)passes * sizeof(double), "rates");
    mg_loader_state first = {0};
    for (int rep = 0; rep < passes; rep++) {
        int64_t bytes = 0;
        cold = !warm && drop_caches() && cold;
        double dt = sequential_rate(stream, false, &bytes);
        double seq = (double)bytes * size / mg_dist_max(dt) / MiB;
        cold = !warm && drop_caches() && cold;
        dt = sequential_rate(stream, true, &bytes);
        double seq_hint = (double)bytes * size / mg_dist_max(dt) / MiB;
        double best = seq > seq_hint ? seq : seq_hint;
        cold = !warm && drop_caches() && cold;
        mg_loader_state st;
        double ds = shard_epoch(stream, budget_mb, s, &bytes, &st);
        double shr = (double)bytes * size / mg_dist_max(ds) / MiB;
        say("| %4d | %16.0f | %16.0f | %16.0f | %4.0f%% |\n", rep + 1, seq, seq_hint, shr, 100 * shr / best);
        seq_best[rep] = best;
        shard_rate[rep] = shr;
        if (rep == 0)
            first = st;
    }
    qsort(seq_best, (size_t)passes, sizeof(double), cmp_double);
    qsort(shard_rate, (size_t)passes, sizeof(double), cmp_double);
    say("\nmedians over %d passes: best sequential %.0f MiB/s, shard sampler %.0f MiB/s: %.0f%% (target >= 50%%)\n",
        passes, seq_best[passes / 2], shard_rate[passes / 2], 100 * shard_rate[passes / 2] / seq_best[passes / 2]);
    mg_free(seq_best);
    mg_free(shard_rate);
    say("shard window %llu samples = %.0f MiB, block %llu samples = %.1f MiB; two windows in the budget\n",
        (unsigned long long)first.window_samples, first.window_samples * (double)mg_shape_size(s) / MiB,
        (unsigned long long)first.block_samples, first.block_samples * (double)mg_shape_size(s) / MiB);
    say(cold ? "page cache dropped before every pass (echo 3 > /proc/sys/vm/drop_caches): disk reads\n"
        : warm ? "--warm: page cache kept, the figures are the loader's CPU-bound ceiling\n"
               : "could not drop the page cache (not root?): the figures above are cache-warm\n");
    mg_dist_barrier();
    if (rank == 0) {
        unlink(stream);
        char p[800];
        snprintf(p, sizeof p, "%s/%s", dir, MG_FMNIST_TEST_FILE);
        unlink(p);
        unlink(train);
        rmdir(dir);
    }
    mg_dist_finalize();
    return 0;
}

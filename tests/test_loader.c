/* mpirun-np: 1 2 3 */
/* The data loader under MPI: the global sampler gives every global batch the same samples
 * whatever the number of ranks; the shard sampler sees every sample once per epoch, also
 * through a memory budget smaller than the shard; a saved state resumes exactly; one factor
 * column handed out as the labels (label_factor) with both samplers, its value checked;
 * bad files fail on every rank, quickly, with the documented message.
 *
 * Every sample's pixels encode its index, so a batch can be checked against what the
 * loader claims it holds. Checks are collected per rank and agreed on before asserting,
 * so a failure on one rank cannot leave the others waiting in a collective. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mg_test.h"
#include "mg_testenv.h"

#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_h5schema.h"
#include "mg_loader.h"

#define N_SAMPLES 1003
static const mg_shape SHAPE = {1, 4, 5};
static char dir[256];
static char good[300], reversed[300], wrong_shape[300], corrupt[300], truncated[300], no_data[300],
    float_images[300], compressed[300], short_labels[300], ring[300], with_factors[300], bad_factor[300];

/* ------------------------------------------------------------------ checks that agree */

static int n_bad;
static char first_bad[512];

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
    if (ok)
        return;
    if (n_bad++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(first_bad, sizeof first_bad, fmt, ap);
        va_end(ap);
    }
}

/* Collective: fails the test on every rank if any rank saw a problem. */
static void agree(const char *what)
{
    int mine = n_bad;
    bool any = mg_dist_any(mine != 0);
    n_bad = 0;
    if (mine)
        fail_msg("%s: rank %d: %d problems, first: %s", what, mg_dist_rank(), mine, first_bad);
    if (any)
        fail_msg("%s: another rank saw a problem", what);
}

/* ------------------------------------------------------------------ files */

static unsigned char pixel(int64_t i, int j)
{
    if (j < 3)
        return (unsigned char)((i >> (8 * j)) & 255);
    return (unsigned char)((i * 7 + j * 13) & 255);
}

static int32_t label_of(int64_t i) { return (int32_t)(i % 7); }

/* Factor column j of sample i (3 columns of 5, 4 and 2 values), and the factors file. */
static const char *const factor_names[3] = {"a", "b", "c"};
static const int32_t factor_sizes[3] = {5, 4, 2};
static int32_t factor_of(int64_t i, int j) { return (int32_t)((j == 1 ? i / 3 : i) % factor_sizes[j]); }

/* The images of write_images with a factors dataset; bad_row >= 0 gets a value outside its
 * factor's size in column 1. */
static void write_factors(const char *path, int64_t bad_row)
{
    mg_data_info info = {0};
    info.kind = MG_DATA_IMAGES;
    info.n = N_SAMPLES;
    info.c = SHAPE.c, info.h = SHAPE.h, info.w = SHAPE.w;
    info.has_labels = true;
    info.chunk_rows = 37;
    info.value_range[1] = 255;
    snprintf(info.source, sizeof info.source, "test_loader factors");
    mg_h5_writer *w = mg_h5_create(path, &info, NULL);
    mg_h5_add_factors(w, 3, factor_names, factor_sizes);
    size_t sb = mg_shape_size(SHAPE);
    unsigned char *x = malloc(sb * N_SAMPLES);
    int32_t *y = malloc(sizeof(int32_t) * N_SAMPLES), *f = malloc(3 * sizeof(int32_t) * N_SAMPLES);
    for (int64_t i = 0; i < N_SAMPLES; i++) {
        for (size_t j = 0; j < sb; j++)
            x[(size_t)i * sb + j] = pixel(i, (int)j);
        y[i] = label_of(i);
        for (int j = 0; j < 3; j++)
            f[i * 3 + j] = factor_of(i, j);
    }
    if (bad_row >= 0)
        f[bad_row * 3 + 1] = 9;
    mg_h5_write_rows(w, 0, N_SAMPLES, x, y);
    mg_h5_write_factors(w, 0, N_SAMPLES, f);
    mg_h5_writer_close(w);
    free(x);
    free(y);
    free(f);
}

static void write_images(const char *path, int64_t n, mg_shape s, int64_t chunk_rows)
{
    mg_data_info info = {0};
    info.kind = MG_DATA_IMAGES;
    info.n = n;
    info.c = s.c;
    info.h = s.h;
    info.w = s.w;
    info.has_labels = true;
    info.chunk_rows = chunk_rows;
    info.value_range[1] = 255;
    snprintf(info.source, sizeof info.source, "test_loader synthetic");
    mg_h5_writer *w = mg_h5_create(path, &info, NULL);
    size_t sb = mg_shape_size(s);
    unsigned char *x = malloc(sb * (size_t)n);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        for (size_t j = 0; j < sb; j++)
            x[(size_t)i * sb + j] = pixel(i, (int)j);
        y[i] = label_of(i);
    }
    mg_h5_write_rows(w, 0, n, x, y);
    mg_h5_writer_close(w);
    free(x);
    free(y);
}

/* A file written with plain HDF5 (as another tool would): chunks written last to first so
 * that their addresses run backwards, no attributes. type/filter vary for the bad cases. */
static void write_raw(const char *path, const char *name, hid_t type, bool deflate, bool reverse, int64_t n_labels)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t d[4] = {N_SAMPLES, 1, 4, 5}, c[4] = {10, 1, 4, 5};
    hid_t s = H5Screate_simple(4, d, NULL);
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(p, 4, c);
    if (deflate)
        H5Pset_deflate(p, 1);
    hid_t ds = H5Dcreate2(f, name, type, s, H5P_DEFAULT, p, H5P_DEFAULT);
    unsigned char *x = malloc(20 * N_SAMPLES);
    for (int64_t i = 0; i < N_SAMPLES; i++)
        for (int j = 0; j < 20; j++)
            x[i * 20 + j] = pixel(i, j);
    int64_t n_chunks = (N_SAMPLES + 9) / 10;
    for (int64_t k = 0; k < n_chunks; k++) {
        int64_t chunk = reverse ? n_chunks - 1 - k : k;
        hsize_t st[4] = {(hsize_t)(chunk * 10), 0, 0, 0}, cnt[4] = {10, 1, 4, 5};
        if (st[0] + cnt[0] > N_SAMPLES)
            cnt[0] = N_SAMPLES - st[0];
        hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(4, cnt, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, cnt, NULL);
        H5Dwrite(ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, x + st[0] * 20);
        H5Sclose(fs);
        H5Sclose(ms);
    }
    if (n_labels > 0) {
        hsize_t ld[1] = {(hsize_t)n_labels};
        hid_t ls = H5Screate_simple(1, ld, NULL);
        hid_t l = H5Dcreate2(f, "labels", H5T_STD_I32LE, ls, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        int32_t *y = malloc(sizeof(int32_t) * (size_t)n_labels);
        for (int64_t i = 0; i < n_labels; i++)
            y[i] = label_of(i);
        H5Dwrite(l, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
        free(y);
        H5Dclose(l);
        H5Sclose(ls);
    }
    free(x);
    H5Dclose(ds);
    H5Pclose(p);
    H5Sclose(s);
    H5Fclose(f);
}

static void copy_prefix(const char *from, const char *to, double fraction)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    fseek(a, 0, SEEK_END);
    long n = ftell(a);
    fseek(a, 0, SEEK_SET);
    long keep = (long)(n * fraction);
    char *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, a), n);
    assert_int_equal(fwrite(buf, 1, (size_t)keep, b), keep);
    free(buf);
    fclose(a);
    fclose(b);
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(dir, sizeof dir, "loader");
    snprintf(good, sizeof good, "%s/good.h5", dir);
    snprintf(reversed, sizeof reversed, "%s/reversed.h5", dir);
    snprintf(wrong_shape, sizeof wrong_shape, "%s/wrong_shape.h5", dir);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.h5", dir);
    snprintf(truncated, sizeof truncated, "%s/truncated.h5", dir);
    snprintf(no_data, sizeof no_data, "%s/no_data.h5", dir);
    snprintf(float_images, sizeof float_images, "%s/float_images.h5", dir);
    snprintf(compressed, sizeof compressed, "%s/compressed.h5", dir);
    snprintf(short_labels, sizeof short_labels, "%s/short_labels.h5", dir);
    snprintf(ring, sizeof ring, "%s/ring.h5", dir);
    snprintf(with_factors, sizeof with_factors, "%s/factors.h5", dir);
    snprintf(bad_factor, sizeof bad_factor, "%s/bad_factor.h5", dir);
    if (mg_dist_rank() == 0) {
        write_factors(with_factors, -1);
        write_factors(bad_factor, 500);
        write_images(good, N_SAMPLES, SHAPE, 37);
        write_raw(reversed, "images", H5T_STD_U8LE, false, true, N_SAMPLES);
        write_images(wrong_shape, N_SAMPLES, (mg_shape){1, 5, 4}, 0);
        FILE *f = fopen(corrupt, "wb");
        for (int i = 0; i < 5000; i++)
            fputc((i * 131) & 255, f);
        fclose(f);
        copy_prefix(good, truncated, 0.5);
        write_raw(no_data, "pixels", H5T_STD_U8LE, false, false, 0);
        write_raw(float_images, "images", H5T_IEEE_F32LE, false, false, 0);
        write_raw(compressed, "images", H5T_STD_U8LE, true, false, 0);
        write_raw(short_labels, "images", H5T_STD_U8LE, false, false, N_SAMPLES - 3);
        mg_convert_mixture(ring, MG_MIXTURE_RING, 500, 3, 0);
    }
    mg_dist_barrier();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(dir); /* everything in it, also what a failed test left */
    return 0;
}

static mg_loader_cfg cfg_for(const char *path, mg_sampler sampler, size_t memory, bool prefetch, uint64_t seed)
{
    mg_loader_cfg c;
    mg_loader_cfg_default(&c);
    snprintf(c.path, sizeof c.path, "%s", path);
    c.sampler = sampler;
    c.memory_bytes = memory;
    c.prefetch = prefetch;
    c.seed = seed;
    return c;
}

/* Checks that each of the b samples holds the pixels and label of the index it claims. */
static void check_batch(const float *x, const int *labels, const int64_t *idx, int b)
{
    size_t sb = mg_shape_size(SHAPE);
    for (int i = 0; i < b; i++) {
        check(idx[i] >= 0 && idx[i] < N_SAMPLES, "index %lld out of range", (long long)idx[i]);
        int64_t decoded = 0;
        for (int j = 0; j < 3; j++)
            decoded |= (int64_t)lround((x[i * sb + j] + 1.0) * 127.5) << (8 * j);
        check(decoded == idx[i], "sample %d holds index %lld but claims %lld", i, (long long)decoded,
              (long long)idx[i]);
        for (size_t j = 0; j < sb; j++) {
            float want = (float)pixel(idx[i], (int)j) / 127.5f - 1.0f;
            check(x[i * sb + j] == want, "sample %lld pixel %zu: %g, expected %g", (long long)idx[i], j,
                  (double)x[i * sb + j], (double)want);
        }
        if (labels)
            check(labels[i] == label_of(idx[i]), "sample %lld: label %d, expected %d", (long long)idx[i], labels[i],
                  label_of(idx[i]));
    }
}

/* ------------------------------------------------------------------ global sampler */

static void global_matches_one_rank(const char *path)
{
    const int B = 12, steps = 200; /* about 2.4 epochs of 1003 samples */
    int rank = mg_dist_rank(), size = mg_dist_size();
    mg_loader_cfg dc = cfg_for(path, MG_SAMPLER_GLOBAL, 1 << 20, true, 42);
    mg_loader_cfg rc = cfg_for(path, MG_SAMPLER_GLOBAL, 1 << 20, false, 42);
    mg_loader *L = mg_loader_open(&dc, SHAPE, B);
    mg_loader *R = mg_loader_open_as(&rc, SHAPE, B, 0, 1);
    int b = mg_loader_local_batch(L);
    check(b == B / size, "local batch %d", b);
    /* counts[t][k]: how often step t's batch holds sample k, summed over ranks at the end
     * (one collective instead of one per step) and compared with the one-rank batch. */
    double *counts = calloc((size_t)steps * N_SAMPLES, sizeof(double));
    int64_t *ref = malloc(sizeof(int64_t) * (size_t)steps * B);
    int *labels = calloc((size_t)B, sizeof(int));
    for (int t = 0; t < steps; t++) {
        const float *x = mg_loader_next(L, labels);
        const int64_t *idx = mg_loader_last_indices(L);
        check_batch(x, labels, idx, b);
        const float *rx = mg_loader_next(R, NULL);
        const int64_t *ridx = mg_loader_last_indices(R);
        check_batch(rx, NULL, ridx, B);
        memcpy(ref + (size_t)t * B, ridx, sizeof(int64_t) * (size_t)B);
        for (int i = 0; i < b; i++) {
            check(idx[i] == ridx[rank * b + i], "step %d: rank %d slot %d holds %lld, one-rank run %lld", t, rank, i,
                  (long long)idx[i], (long long)ridx[rank * b + i]);
            if (idx[i] >= 0 && idx[i] < N_SAMPLES)
                counts[(size_t)t * N_SAMPLES + idx[i]] += 1;
        }
    }
    check(mg_loader_epoch(L) == (uint64_t)(steps * B / N_SAMPLES), "epoch %llu", (unsigned long long)mg_loader_epoch(L));
    mg_dist_allreduce_sum_f64(counts, (size_t)steps * N_SAMPLES);
    for (int t = 0; t < steps; t++) {
        for (int i = 0; i < B; i++)
            counts[(size_t)t * N_SAMPLES + ref[(size_t)t * B + i]] -= 1;
        for (int k = 0; k < N_SAMPLES; k++)
            check(counts[(size_t)t * N_SAMPLES + k] == 0, "step %d: sample %d count differs by %g from the one-rank batch",
                  t, k, counts[(size_t)t * N_SAMPLES + k]);
    }
    check(mg_dist_all_equal_u64(mg_checksum(ref, sizeof(int64_t) * (size_t)steps * B)), "references differ");
    free(counts);
    free(ref);
    free(labels);
    mg_loader_close(L);
    mg_loader_close(R);
    agree("global sampler");
}

static void test_global_sampler(void **state)
{
    (void)state;
    global_matches_one_rank(good);
}

/* Chunks stored last to first, no attributes, contiguous labels: still read right. */
static void test_global_sampler_foreign_layout(void **state)
{
    (void)state;
    global_matches_one_rank(reversed);
}

/* The first epoch of the global sampler is a permutation; the second is another one. */
static void test_global_epochs_are_permutations(void **state)
{
    (void)state;
    mg_loader_cfg c = cfg_for(good, MG_SAMPLER_GLOBAL, 1 << 20, false, 7);
    mg_loader *R = mg_loader_open_as(&c, SHAPE, 17, 0, 1); /* 17 does not divide 1003: batches straddle epochs */
    int64_t *stream = malloc(sizeof(int64_t) * 2 * N_SAMPLES + 64 * 17);
    int64_t got = 0;
    while (got < 2 * N_SAMPLES) {
        mg_loader_next(R, NULL);
        memcpy(stream + got, mg_loader_last_indices(R), 17 * sizeof(int64_t));
        got += 17;
    }
    for (int e = 0; e < 2; e++) {
        int *seen = calloc(N_SAMPLES, sizeof(int));
        for (int64_t i = 0; i < N_SAMPLES; i++)
            seen[stream[e * N_SAMPLES + i]]++;
        for (int k = 0; k < N_SAMPLES; k++)
            check(seen[k] == 1, "epoch %d: sample %d seen %d times", e, k, seen[k]);
        free(seen);
    }
    int same = 0, sorted = 0;
    for (int64_t i = 0; i < N_SAMPLES; i++) {
        same += stream[i] == stream[N_SAMPLES + i];
        sorted += stream[i] == i;
    }
    check(same < 20 && sorted < 20, "epochs not shuffled (%d equal positions, %d in place)", same, sorted);
    free(stream);
    mg_loader_close(R);
    agree("global epochs");
}

/* data.limit: only the file's first samples, each once per epoch, with either sampler;
 * more than the file holds is an error naming the file. */
static void test_limit(void **state)
{
    (void)state;
    const int64_t limit = 100;
    const mg_sampler samplers[2] = {MG_SAMPLER_GLOBAL, MG_SAMPLER_SHARD};
    for (int k = 0; k < 2; k++) {
        mg_loader_cfg c = cfg_for(good, samplers[k], 1 << 20, false, 3);
        c.limit = limit;
        mg_loader *R = mg_loader_open_as(&c, SHAPE, 10, 0, 1);
        check(mg_loader_info(R)->n == limit, "info.n %lld with limit %lld", (long long)mg_loader_info(R)->n,
              (long long)limit);
        int seen[N_SAMPLES] = {0};
        for (int t = 0; t < 2 * limit / 10; t++) {
            mg_loader_next(R, NULL);
            const int64_t *idx = mg_loader_last_indices(R);
            for (int i = 0; i < 10; i++) {
                check(idx[i] >= 0 && idx[i] < limit, "sampler %d: sample %lld beyond the limit", k, (long long)idx[i]);
                if (idx[i] >= 0 && idx[i] < N_SAMPLES)
                    seen[idx[i]]++;
            }
        }
        for (int i = 0; i < limit; i++)
            check(seen[i] == 2, "sampler %d: sample %d seen %d times in 2 epochs", k, i, seen[i]);
        mg_loader_close(R);
    }
    mg_loader_cfg c = cfg_for(good, MG_SAMPLER_GLOBAL, 1 << 20, false, 3);
    c.limit = N_SAMPLES + 1;
    MG_EXPECT_FATAL(mg_loader_open(&c, SHAPE, 12), "data.limit 1004 is more than the 1003 samples");
    agree("limit");
}

/* ------------------------------------------------------------------ shard sampler */

static void shard_exactly_once(size_t memory, bool prefetch)
{
    const int B = 12;
    int rank = mg_dist_rank(), size = mg_dist_size();
    mg_loader_cfg c = cfg_for(good, MG_SAMPLER_SHARD, memory, prefetch, 5);
    mg_loader *L = mg_loader_open(&c, SHAPE, B);
    int b = mg_loader_local_batch(L);
    int64_t lo = (int64_t)rank * N_SAMPLES / size, hi = (int64_t)(rank + 1) * N_SAMPLES / size, n = hi - lo;
    int64_t n_max = (int64_t)N_SAMPLES / size + 1;
    int64_t steps = (2 * n_max + b - 1) / b; /* the same on every rank */
    int64_t *stream = malloc(sizeof(int64_t) * (size_t)(steps * b));
    int *labels = malloc(sizeof(int) * (size_t)b);
    for (int64_t t = 0; t < steps; t++) {
        const float *x = mg_loader_next(L, labels);
        const int64_t *idx = mg_loader_last_indices(L);
        check_batch(x, labels, idx, b);
        memcpy(stream + t * b, idx, sizeof(int64_t) * (size_t)b);
    }
    /* Per rank: two epochs, each its shard exactly once, in different orders. */
    double *counts = calloc(N_SAMPLES, sizeof(double));
    for (int e = 0; e < 2; e++) {
        for (int64_t i = 0; i < n; i++) {
            int64_t k = stream[e * n + i];
            check(k >= lo && k < hi, "rank %d epoch %d: sample %lld outside its shard [%lld, %lld)", rank, e,
                  (long long)k, (long long)lo, (long long)hi);
            if (k >= 0 && k < N_SAMPLES && e == 0)
                counts[k] += 1;
        }
    }
    int64_t same = 0, in_place = 0, runs = 0;
    for (int64_t i = 0; i < n; i++) {
        same += stream[i] == stream[n + i];
        in_place += stream[i] == lo + i;
        runs += i + 1 < n && stream[i + 1] == stream[i] + 1; /* blocks handed out unshuffled */
    }
    check(same < n / 4 && in_place < n / 4 && runs < n / 4,
          "shard not shuffled (%lld equal positions, %lld in place, %lld successors)", (long long)same,
          (long long)in_place, (long long)runs);
    /* Across ranks: every sample exactly once in the first epoch. */
    mg_dist_allreduce_sum_f64(counts, N_SAMPLES);
    for (int k = 0; k < N_SAMPLES; k++)
        check(counts[k] == 1, "epoch 0: sample %d seen %g times across ranks", k, counts[k]);
    /* Second epoch too, counted the same way. */
    memset(counts, 0, N_SAMPLES * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        counts[stream[n + i]] += 1;
    mg_dist_allreduce_sum_f64(counts, N_SAMPLES);
    for (int k = 0; k < N_SAMPLES; k++)
        check(counts[k] == 1, "epoch 1: sample %d seen %g times across ranks", k, counts[k]);
    mg_loader_state st;
    mg_loader_get_state(L, &st);
    check(st.window_samples == 0 || (int64_t)st.window_samples * 2 < n,
          "window %llu should be less than half the shard %lld", (unsigned long long)st.window_samples, (long long)n);
    free(counts);
    free(stream);
    free(labels);
    mg_loader_close(L);
    agree("shard sampler");
}

static void test_shard_resident(void **state)
{
    (void)state;
    shard_exactly_once(1 << 20, true);
}

/* 1 KiB: windows of 36 samples of 28 bytes (data, label, order), blocks of 4; the shard
 * (334 to 1003 samples) is 9 to 28 times the budget. */
static void test_shard_small_budget(void **state)
{
    (void)state;
    shard_exactly_once(1024, true);
    shard_exactly_once(1024, false);
    shard_exactly_once(3000, true);
}

static void expect_open_error(const char *path, mg_shape shape, int B, const char *message);

/* ------------------------------------------------------------------ vectors */

/* A mixture file (x float32 (N, 2)): batches hold the stored vectors and labels. */
static void test_vectors(void **state)
{
    (void)state;
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(ring, &info);
    float *all = malloc(sizeof(float) * 2 * 500);
    int32_t *lab = malloc(sizeof(int32_t) * 500);
    mg_h5_read_samples(f, 0, 500, all);
    mg_h5_read_labels(f, 0, 500, lab);
    mg_h5_close(f);
    mg_data_info_free(&info);
    for (int s = 0; s < 2; s++) {
        mg_loader_cfg c = cfg_for(ring, s ? MG_SAMPLER_SHARD : MG_SAMPLER_GLOBAL, s ? 256 : 1 << 20, true, 2);
        mg_loader *L = mg_loader_open(&c, (mg_shape){2, 1, 1}, 6);
        int b = mg_loader_local_batch(L), labels[6];
        for (int t = 0; t < 300; t++) {
            const float *x = mg_loader_next(L, labels);
            const int64_t *idx = mg_loader_last_indices(L);
            for (int i = 0; i < b; i++) {
                check(x[2 * i] == all[2 * idx[i]] && x[2 * i + 1] == all[2 * idx[i] + 1],
                      "vector of sample %lld differs", (long long)idx[i]);
                check(labels[i] == lab[idx[i]], "label of sample %lld differs", (long long)idx[i]);
            }
        }
        mg_loader_close(L);
    }
    free(all);
    free(lab);
    agree("vectors");
    expect_open_error(ring, (mg_shape){3, 1, 1}, 6, "samples are vectors of 2");
}

/* ------------------------------------------------------------------ state */

static void resume_identically(mg_sampler sampler, size_t memory)
{
    const int B = 12, before = 37, after = 150;
    mg_loader_cfg c = cfg_for(good, sampler, memory, true, 11);
    mg_loader *A = mg_loader_open(&c, SHAPE, B);
    int b = mg_loader_local_batch(A);
    for (int t = 0; t < before; t++)
        mg_loader_next(A, NULL);
    mg_loader_state st;
    mg_loader_get_state(A, &st);
    check(st.step == (uint64_t)before, "state step %llu", (unsigned long long)st.step);
    int64_t *want = malloc(sizeof(int64_t) * (size_t)(after * b));
    float *want_x = malloc(sizeof(float) * (size_t)b * mg_shape_size(SHAPE));
    for (int t = 0; t < after; t++) {
        const float *x = mg_loader_next(A, NULL);
        memcpy(want + t * b, mg_loader_last_indices(A), sizeof(int64_t) * (size_t)b);
        if (t == after - 1)
            memcpy(want_x, x, sizeof(float) * (size_t)b * mg_shape_size(SHAPE));
    }
    /* A fresh loader without prefetch, restored from the saved state. */
    mg_loader_cfg c2 = c;
    c2.prefetch = false;
    mg_loader *B2 = mg_loader_open(&c2, SHAPE, B);
    mg_loader_next(B2, NULL); /* some history that the restore must discard */
    mg_loader_set_state(B2, &st);
    for (int t = 0; t < after; t++) {
        const float *x = mg_loader_next(B2, NULL);
        const int64_t *idx = mg_loader_last_indices(B2);
        for (int i = 0; i < b; i++)
            check(idx[i] == want[t * b + i], "after resuming, step %d slot %d: %lld, expected %lld", t, i,
                  (long long)idx[i], (long long)want[t * b + i]);
        if (t == after - 1)
            check(memcmp(x, want_x, sizeof(float) * (size_t)b * mg_shape_size(SHAPE)) == 0, "last batch differs");
    }
    /* Restoring the live loader to an earlier point also replays. */
    mg_loader_set_state(A, &st);
    mg_loader_next(A, NULL);
    const int64_t *idx = mg_loader_last_indices(A);
    for (int i = 0; i < b; i++)
        check(idx[i] == want[i], "rewinding the live loader: slot %d", i);
    /* A state from another configuration is refused. */
    mg_loader_state other = st;
    other.seed = 12;
    MG_EXPECT_FATAL(mg_loader_set_state(B2, &other), "seed");
    other = st;
    other.global_batch = 24;
    MG_EXPECT_FATAL(mg_loader_set_state(B2, &other), "global batch");
    free(want);
    free(want_x);
    mg_loader_close(A);
    mg_loader_close(B2);
    agree("resume");
}

static void test_state_resume(void **state)
{
    (void)state;
    resume_identically(MG_SAMPLER_GLOBAL, 1 << 20);
    resume_identically(MG_SAMPLER_SHARD, 1 << 20);
    resume_identically(MG_SAMPLER_SHARD, 1024);
}

/* ------------------------------------------------------------------ factor labels */

/* With label_factor "b", every sampler hands out column b of each sample as its label (the
 * pixels still those of the sample), and says the labels take 4 values. */
static void factor_labels(mg_sampler sampler, size_t memory, bool prefetch)
{
    const int B = 12;
    mg_loader_cfg c = cfg_for(with_factors, sampler, memory, prefetch, 8);
    snprintf(c.label_factor, sizeof c.label_factor, "b");
    mg_loader *L = mg_loader_open(&c, SHAPE, B);
    int values = 0;
    check(mg_loader_labels(L, &values) && values == 4, "labels of factor b take %d values, not 4", values);
    const int b = mg_loader_local_batch(L);
    int *labels = malloc(sizeof(int) * (size_t)b);
    for (int t = 0; t < 200; t++) { /* over two epochs of the global sampler */
        const float *x = mg_loader_next(L, labels);
        const int64_t *idx = mg_loader_last_indices(L);
        check_batch(x, NULL, idx, b);
        for (int i = 0; i < b; i++)
            check(labels[i] == factor_of(idx[i], 1), "sample %lld: label %d, factor b is %d", (long long)idx[i],
                  labels[i], factor_of(idx[i], 1));
    }
    free(labels);
    mg_loader_close(L);
    agree("factor labels");
}

static void test_factor_labels(void **state)
{
    (void)state;
    factor_labels(MG_SAMPLER_GLOBAL, 1 << 20, true);
    factor_labels(MG_SAMPLER_SHARD, 1 << 20, false);
    factor_labels(MG_SAMPLER_SHARD, 1024, true); /* streaming windows of factor rows */
    /* without label_factor the same file hands out its labels */
    mg_loader_cfg c = cfg_for(with_factors, MG_SAMPLER_GLOBAL, 1 << 20, true, 8);
    mg_loader *L = mg_loader_open(&c, SHAPE, 12);
    int values = -1;
    check(mg_loader_labels(L, &values) && values == 0, "labels: %d values (the file names no classes)", values);
    int labels[12];
    const float *x = mg_loader_next(L, labels);
    check_batch(x, labels, mg_loader_last_indices(L), mg_loader_local_batch(L));
    mg_loader_close(L);
    agree("labels beside factors");
}

/* A factor the file lacks, a file without factors, a value outside the factor's size. */
static void test_factor_errors(void **state)
{
    (void)state;
    mg_loader_cfg c = cfg_for(with_factors, MG_SAMPLER_GLOBAL, 1 << 20, true, 1);
    snprintf(c.label_factor, sizeof c.label_factor, "colour");
    MG_EXPECT_FATAL(mg_loader_open(&c, SHAPE, 12), "has no factor 'colour' (its factors: a, b, c)");
    check(strstr(mg_last_error(), with_factors) != NULL, "message does not name the file: %s", mg_last_error());
    c = cfg_for(good, MG_SAMPLER_GLOBAL, 1 << 20, true, 1);
    snprintf(c.label_factor, sizeof c.label_factor, "b");
    MG_EXPECT_FATAL(mg_loader_open(&c, SHAPE, 12), "has no factors dataset");
    check(strstr(mg_last_error(), good) != NULL, "message does not name the file: %s", mg_last_error());
    /* sample 500's factor b is 9 of 4 values: the batch holding it fails (one rank's loader) */
    c = cfg_for(bad_factor, MG_SAMPLER_SHARD, 1 << 20, false, 1);
    snprintf(c.label_factor, sizeof c.label_factor, "b");
    mg_loader *L = mg_loader_open_as(&c, SHAPE, 12, 0, 1);
    MG_EXPECT_FATAL(for (int t = 0; t < 200; t++) mg_loader_next(L, NULL), "sample 500: factor 'b' is 9, outside 0..3");
    mg_loader_close(L);
    agree("factor errors");
}

/* ------------------------------------------------------------------ bad files */

static void expect_open_error(const char *path, mg_shape shape, int B, const char *message)
{
    mg_loader_cfg c = cfg_for(path, MG_SAMPLER_GLOBAL, 1 << 20, true, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    MG_EXPECT_FATAL(mg_loader_open(&c, shape, B), message);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    check(s < 5.0, "%s: the error took %.1f s", path, s);
    if (!strstr(message, "number of ranks")) /* a batch error is not about the file */
        check(strstr(mg_last_error(), path) != NULL || strstr(mg_last_error(), "another rank") != NULL,
              "message does not name the file: %s", mg_last_error());
    agree(path);
}

static void test_bad_files(void **state)
{
    (void)state;
    expect_open_error(wrong_shape, SHAPE, 12, "samples are (1, 5, 4)");
    expect_open_error(good, (mg_shape){3, 4, 5}, 12, "the model's input is (3, 4, 5)");
    expect_open_error(good, SHAPE, 1206, "fewer than the global batch 1206");
    expect_open_error(corrupt, SHAPE, 12, "not an HDF5 file");
    expect_open_error(truncated, SHAPE, 12, "truncated");
    expect_open_error(no_data, SHAPE, 12, "has no dataset 'images'");
    expect_open_error(float_images, SHAPE, 12, "wrong type");
    expect_open_error(compressed, SHAPE, 12, "h5repack");
    expect_open_error(short_labels, SHAPE, 12, "'labels' has 1000 entries");
    char missing[320];
    snprintf(missing, sizeof missing, "%s/missing.h5", dir);
    expect_open_error(missing, SHAPE, 12, "No such file");
    if (mg_dist_size() > 1)
        expect_open_error(good, SHAPE, 12 * mg_dist_size() + 1, "multiple of the number of ranks");
}

/* One rank's file is bad, the others' good: every rank still fails, none waits. */
static void test_error_on_one_rank(void **state)
{
    (void)state;
    if (mg_dist_size() < 2)
        MG_SKIP("needs 2 or more ranks");
    mg_loader_cfg c = cfg_for(mg_dist_rank() == 1 ? corrupt : good, MG_SAMPLER_GLOBAL, 1 << 20, true, 1);
    MG_EXPECT_FATAL(mg_loader_open(&c, SHAPE, 12), mg_dist_rank() == 1 ? "not an HDF5 file" : "another rank");
    agree("error on one rank");
}

/* The file shrinks under a running loader: the reading threads report it, and the next
 * mg_loader_next raises it (local loaders: each rank its own copy). */
static void test_read_error(void **state)
{
    (void)state;
    char copy[320];
    snprintf(copy, sizeof copy, "%s/shrink_%d.h5", dir, mg_dist_rank());
    for (int s = 0; s < 2; s++) { /* global; shard streaming (a resident shard is read once, at the start) */
        copy_prefix(good, copy, 1.0);
        mg_loader_cfg c = cfg_for(copy, s ? MG_SAMPLER_SHARD : MG_SAMPLER_GLOBAL, s ? 1024 : 1 << 20, true, 3);
        mg_loader *L = mg_loader_open_as(&c, SHAPE, 12, 0, 1);
        mg_loader_next(L, NULL);
        assert_int_equal(truncate(copy, 4096), 0);
        MG_EXPECT_FATAL(for (int t = 0; t < 2000; t++) mg_loader_next(L, NULL), "unexpected end of file");
        mg_loader_close(L);
        unlink(copy);
    }
    agree("read error");
}

/* ------------------------------------------------------------------ config */

static void test_cfg(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse("data: {path: a.h5, sampler: shard, memory_mb: 3, prefetch: false, seed: 9}\n",
                               "t.yaml");
    mg_loader_cfg c;
    mg_loader_cfg_from(&c, mg_cfg_get(mg_cfg_root(cfg), "data"), 1);
    assert_string_equal(c.path, "a.h5");
    assert_int_equal(c.sampler, MG_SAMPLER_SHARD);
    assert_int_equal(c.memory_bytes, 3u << 20);
    assert_false(c.prefetch);
    assert_int_equal(c.seed, 9);
    mg_cfg_check_unused(cfg);
    mg_cfg_free(cfg);

    cfg = mg_cfg_parse("data: {path: a.h5}\n", "t.yaml");
    mg_loader_cfg_from(&c, mg_cfg_get(mg_cfg_root(cfg), "data"), 77);
    assert_int_equal(c.sampler, MG_SAMPLER_GLOBAL);
    assert_true(c.prefetch);
    assert_int_equal(c.seed, 77);
    mg_cfg_free(cfg);

    cfg = mg_cfg_parse("data: {path: a.h5, sampler: random}\n", "t.yaml");
    MG_EXPECT_FATAL(mg_loader_cfg_from(&c, mg_cfg_get(mg_cfg_root(cfg), "data"), 1), "sampler");
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("data: {sampler: shard}\n", "t.yaml");
    MG_EXPECT_FATAL(mg_loader_cfg_from(&c, mg_cfg_get(mg_cfg_root(cfg), "data"), 1), "path");
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("data: {path: a.h5, memory_mb: 0}\n", "t.yaml");
    MG_EXPECT_FATAL(mg_loader_cfg_from(&c, mg_cfg_get(mg_cfg_root(cfg), "data"), 1), "memory_mb");
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("data: {path: a.h5, memroy_mb: 4}\n", "t.yaml");
    mg_loader_cfg_from(&c, mg_cfg_get(mg_cfg_root(cfg), "data"), 1);
    MG_EXPECT_FATAL(mg_cfg_check_unused(cfg), "memroy_mb");
    mg_cfg_free(cfg);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg),
        cmocka_unit_test(test_global_sampler),
        cmocka_unit_test(test_global_sampler_foreign_layout),
        cmocka_unit_test(test_global_epochs_are_permutations),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_shard_resident),
        cmocka_unit_test(test_shard_small_budget),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_state_resume),
        cmocka_unit_test(test_factor_labels),
        cmocka_unit_test(test_factor_errors),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_error_on_one_rank),
        cmocka_unit_test(test_read_error),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    mg_dist_finalize();
    return failed ? 1 : 0;
}

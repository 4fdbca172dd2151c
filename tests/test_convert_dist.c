/* The distributed writer (mg_convert_dist.h): the file's samples, labels and factors are a
 * function of the items only (checked against the expected values under 1 and 2 ranks, so
 * both runs write the same bytes), bad items are skipped and counted or end every rank with
 * one message naming the item, and a failure leaves neither the final nor the temporary file.
 * mpirun-np: 1 2 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "mg_test.h"
#include "mg_testenv.h"

#include "mg_convert_dist.h"
#include "mg_dist.h"
#include "mg_h5schema.h"

#define C 3
#define H 5
#define W 7
#define SB (C * H * W)
#define NF 3

typedef struct {
    int bad_every;   /* items with i % bad_every == bad_at are bad (0: none) */
    int bad_at;
    int64_t only_bad; /* this one item is bad (-1: none) */
    bool all_bad;
} item_rule;

static uint8_t pixel(int64_t i, int k) { return (uint8_t)((i * 131 + k * 7 + (i >> 3)) & 0xff); }

static bool is_bad(const item_rule *r, int64_t i)
{
    return r->all_bad || i == r->only_bad || (r->bad_every > 0 && i % r->bad_every == r->bad_at);
}

static bool make_item(void *ctx, int64_t i, uint8_t *sample, int32_t *label, int32_t *factors, char *why,
                      size_t why_size)
{
    const item_rule *r = ctx;
    if (is_bad(r, i)) {
        snprintf(why, why_size, "dir/item-%lld.png: damaged", (long long)i);
        return false;
    }
    for (int k = 0; k < SB; k++)
        sample[k] = pixel(i, k);
    if (label)
        *label = (int32_t)(i % 7);
    if (factors)
        for (int j = 0; j < NF; j++)
            factors[j] = (int32_t)(i * (j + 1) + j);
    return true;
}

static mg_dist_write_spec spec_for(item_rule *rule, int64_t n, bool labels, int nf)
{
    static const char *const names[NF] = {"shape", "colour", "scale"};
    mg_dist_write_spec s;
    memset(&s, 0, sizeof s);
    s.info.kind = MG_DATA_IMAGES;
    s.info.c = C;
    s.info.h = H;
    s.info.w = W;
    s.info.has_labels = labels;
    s.info.value_range[1] = 255;
    s.info.chunk_rows = 16;
    snprintf(s.info.source, sizeof s.info.source, "test_convert_dist");
    s.n_items = n;
    s.n_factors = nf;
    s.factor_names = nf ? names : NULL;
    s.round_bytes = 5 * SB; /* 5 items per rank and round: many rounds, a short last one */
    s.quiet = true;
    s.make = make_item;
    s.ctx = rule;
    return s;
}

/* Files in dir other than the given one (a leftover temporary file). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Reads path back and checks it holds exactly the items the rule keeps, in order. */
static void check_file(const char *path, const item_rule *rule, int64_t n, bool labels, int nf)
{
    mg_data_info info;
    char err[1024];
    mg_h5_file *f = mg_h5_open(path, &info, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    mg_h5_raw x, y;
    if (!mg_h5_raw_layout(f, &x, &y, err, sizeof err))
        fail_msg("raw layout refused: %s", err);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++)
        kept += !is_bad(rule, i);
    assert_int_equal(info.n, kept);
    assert_int_equal(info.c, C);
    assert_int_equal(info.h, H);
    assert_int_equal(info.w, W);
    assert_int_equal(info.has_labels, labels);
    assert_int_equal(mg_h5_n_factors(f), nf);
    if (nf) {
        assert_string_equal(mg_h5_factor_name(f, 0), "shape");
        assert_string_equal(mg_h5_factor_name(f, 2), "scale");
    }
    uint8_t *pix = malloc((size_t)kept * SB);
    int32_t *lab = malloc((size_t)kept * 4), *fac = malloc((size_t)kept * NF * 4);
    mg_h5_read_samples(f, 0, kept, pix);
    if (labels)
        mg_h5_read_labels(f, 0, kept, lab);
    if (nf)
        mg_h5_read_factors(f, 0, kept, fac);
    int64_t row = 0;
    for (int64_t i = 0; i < n; i++) {
        if (is_bad(rule, i))
            continue;
        for (int k = 0; k < SB; k++)
            if (pix[row * SB + k] != pixel(i, k))
                fail_msg("row %lld (item %lld) byte %d: %u, expected %u", (long long)row, (long long)i, k,
                         pix[row * SB + k], pixel(i, k));
        if (labels)
            assert_int_equal(lab[row], i % 7);
        for (int j = 0; j < nf; j++)
            assert_int_equal(fac[row * nf + j], i * (j + 1) + j);
        row++;
    }
    free(pix);
    free(lab);
    free(fac);
    mg_h5_raw_free(&x);
    mg_h5_raw_free(&y);
    mg_h5_close(f);
    mg_data_info_free(&info);
}

static void test_all_good(void **state)
{
    (void)state;
    char dir[256], out[400];
    mg_test_dir_make(dir, sizeof dir, "convdist");
    snprintf(out, sizeof out, "%s/all.h5", dir);
    item_rule rule = {0, 0, -1, false};
    mg_dist_write_spec s = spec_for(&rule, 53, true, NF);
    mg_dist_write_result res;
    mg_convert_dist_write(out, &s, &res);
    assert_int_equal(res.n_written, 53);
    assert_int_equal(res.n_bad, 0);
    if (mg_dist_rank() == 0) {
        check_file(out, &rule, 53, true, NF);
        assert_int_equal(count_files(dir), 1);
    }
    mg_test_dir_remove(dir);
}

static void test_skip_bad(void **state)
{
    (void)state;
    char dir[256], out[400];
    mg_test_dir_make(dir, sizeof dir, "convdist");
    snprintf(out, sizeof out, "%s/skip.h5", dir);
    /* 8 of 61 bad (items 3, 11, ..., 59): the file is cut to 53 rows, which leaves its last
     * chunk partly past N, and must still pass the loader's raw-layout checks */
    item_rule rule = {8, 3, -1, false};
    mg_dist_write_spec s = spec_for(&rule, 61, false, 0);
    s.skip_bad = true;
    mg_dist_write_result res;
    mg_convert_dist_write(out, &s, &res);
    assert_int_equal(res.n_written, 53);
    assert_int_equal(res.n_bad, 8);
    assert_string_equal(res.first_bad, "dir/item-3.png: damaged");
    if (mg_dist_rank() == 0)
        check_file(out, &rule, 61, false, 0);
    mg_test_dir_remove(dir);
}

static void test_bad_item_fails_every_rank(void **state)
{
    (void)state;
    char dir[256], out[400];
    mg_test_dir_make(dir, sizeof dir, "convdist");
    snprintf(out, sizeof out, "%s/bad.h5", dir);
    /* items 37 and 41 are bad: with 5 items per rank, 37 lies on rank 1 under 2 ranks, 41
     * on rank 0; the message names the lowest on every rank */
    item_rule rule = {0, 0, 37, false};
    mg_dist_write_spec s = spec_for(&rule, 60, true, 0);
    s.skip_bad = false;
    mg_dist_write_result res;
    MG_EXPECT_FATAL(mg_convert_dist_write(out, &s, &res), "dir/item-37.png: damaged");
    assert_non_null(strstr(mg_last_error(), "--skip-bad"));
    mg_dist_barrier();
    assert_false(exists(out));
    assert_int_equal(count_files(dir), 0);
    mg_test_dir_remove(dir);
}

static void test_nothing_kept(void **state)
{
    (void)state;
    char dir[256], out[400];
    mg_test_dir_make(dir, sizeof dir, "convdist");
    snprintf(out, sizeof out, "%s/none.h5", dir);
    item_rule rule = {0, 0, -1, true};
    mg_dist_write_spec s = spec_for(&rule, 12, true, 0);
    s.skip_bad = true;
    mg_dist_write_result res;
    MG_EXPECT_FATAL(mg_convert_dist_write(out, &s, &res), "none of the 12 items");
    assert_non_null(strstr(mg_last_error(), "dir/item-0.png"));
    mg_dist_barrier();
    assert_int_equal(count_files(dir), 0);
    mg_test_dir_remove(dir);
}

/* A disk that fills: a file size limit (SIGXFSZ ignored, so write(2) fails with EFBIG
 * instead of killing the process) makes the HDF5 writes fail midway. One rank only: there
 * the failure is caught in-process; under mpirun it ends every rank through MPI_Abort. */
static void test_disk_full(void **state)
{
    (void)state;
    char dir[256], out[400];
    mg_test_dir_make(dir, sizeof dir, "convdist");
    snprintf(out, sizeof out, "%s/full.h5", dir);
    item_rule rule = {0, 0, -1, false};
    mg_dist_write_spec s = spec_for(&rule, 4000, true, 0); /* 420 kB of samples */
    s.round_bytes = 0;
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 << 10;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    mg_dist_write_result res;
    MG_EXPECT_FATAL(mg_convert_dist_write(out, &s, &res), "File too large");
    assert_non_null(strstr(mg_last_error(), "full.h5.tmp-"));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_false(exists(out));
    assert_int_equal(count_files(dir), 0);
    mg_test_dir_remove(dir);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_good),
        cmocka_unit_test(test_skip_bad),
        cmocka_unit_test(test_bad_item_fails_every_rank),
        cmocka_unit_test(test_nothing_kept),
        cmocka_unit_test(test_disk_full),
    };
    /* the disk-full case runs on one rank only (see there) */
    int n = (int)(sizeof tests / sizeof tests[0]) - (mg_dist_size() > 1 ? 1 : 0);
    int failed = _cmocka_run_group_tests("test_convert_dist", tests, (size_t)n, NULL, NULL);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}

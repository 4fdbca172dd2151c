/* The base helpers: checked HDF5 helpers (round trip of every kind, refusal of missing,
 * mistyped, misshapen and truncated data), the write-then-rename commit, mkdir -p, the
 * clock, the checksum, the text buffer and the JSON writer. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_h5util.h"
#include "mg_test.h"
#include "mg_text.h"
#include "mg_util.h"

static char dir[256];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mpigan_h5util_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char hint[] = "test hint";

/* One file holding one of every kind the helpers write, committed into place. */
static void write_sample_file(const char *path)
{
    char tmp[512];
    hid_t f = mg_h5_create_tmp(path, tmp, sizeof tmp);
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0);
    assert_int_not_equal(stat(path, &st), 0); /* nothing under the final name before the commit */
    mg_h5_attr_write_i64(f, tmp, "i", -42);
    mg_h5_attr_write_u64(f, tmp, "u", 0xfedcba9876543210ull);
    mg_h5_attr_write_f64(f, tmp, "d", 0.125);
    mg_h5_attr_write_str(f, tmp, "s", "hello");
    const char *one = "utf-8 \xc3\xa9";
    mg_h5_attr_write_vstr(f, tmp, "v", H5T_CSET_UTF8, 0, &one);
    const char *many[2] = {"a", "bc"};
    mg_h5_attr_write_vstr(f, tmp, "vs", H5T_CSET_UTF8, 2, many);
    mg_h5_write_text(f, tmp, "text", "line one\nline two\n");
    mg_h5_write_text(f, tmp, "empty", "");
    hid_t g = mg_h5_group_create(f, tmp, "g");
    const float x[6] = {1, 2, 3, 4, 5, 6};
    const hsize_t dims[2] = {2, 3};
    mg_h5_write_array(g, tmp, "x", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, x);
    const int32_t k[3] = {7, -8, 9};
    const hsize_t kd[1] = {3};
    mg_h5_write_array(g, tmp, "k", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, kd, k);
    mg_h5_attr_write_str(g, tmp, "on_group", "yes");
    assert_true(H5Gclose(g) >= 0);
    mg_h5_commit(f, tmp, path);
    assert_int_not_equal(stat(tmp, &st), 0);
    assert_int_equal(stat(path, &st), 0);
}

static void test_h5_round_trip(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/sub/dir/all.h5", dir); /* the directory is created */
    write_sample_file(path);

    hid_t f = mg_h5_open_read(path, "test file", hint);
    assert_int_equal(mg_h5_attr_read_i64(f, path, ".", "i", hint), -42);
    assert_true(mg_h5_attr_read_u64(f, path, ".", "u", hint) == 0xfedcba9876543210ull);
    assert_true(mg_h5_attr_read_f64(f, path, ".", "d", hint) == 0.125);
    char s[16];
    mg_h5_attr_read_str(f, path, ".", "s", s, sizeof s, hint);
    assert_string_equal(s, "hello");
    mg_h5_attr_read_str(f, path, "g", "on_group", s, sizeof s, hint);
    assert_string_equal(s, "yes");
    assert_true(mg_h5_attr_exists(f, path, ".", "v"));
    assert_false(mg_h5_attr_exists(f, path, ".", "nope"));
    char *text = mg_h5_read_text(f, path, "text", hint);
    assert_string_equal(text, "line one\nline two\n");
    mg_free(text);
    text = mg_h5_read_text(f, path, "empty", hint);
    assert_string_equal(text, "");
    mg_free(text);
    assert_true(mg_h5_exists(f, path, "g/x"));
    assert_false(mg_h5_exists(f, path, "g/y"));
    float x[6] = {0};
    const hsize_t dims[2] = {2, 3};
    mg_h5_read_array(f, path, "g/x", H5T_NATIVE_FLOAT, 2, dims, x, hint);
    for (int i = 0; i < 6; i++)
        assert_true(x[i] == (float)(i + 1));
    hsize_t got[4];
    assert_int_equal(mg_h5_shape(f, path, "g/k", got, 4, hint), 1);
    assert_int_equal(got[0], 3);
    int32_t k[3];
    mg_h5_read_array(f, path, "g/k", H5T_NATIVE_INT32, 1, got, k, hint);
    assert_int_equal(k[1], -8);
    assert_true(H5Fclose(f) >= 0);
}

static void test_h5_refusals(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/refuse.h5", dir);
    write_sample_file(path);
    hid_t f = mg_h5_open_read(path, "test file", hint);
    char small[4];
    MG_EXPECT_FATAL(mg_h5_attr_read_i64(f, path, ".", "missing", hint), "missing attribute missing");
    MG_EXPECT_FATAL(mg_h5_attr_read_str(f, path, ".", "s", small, sizeof small, hint), "unexpected length 5");
    MG_EXPECT_FATAL(mg_h5_attr_read_str(f, path, ".", "v", small, sizeof small, hint), "not a fixed-length string");
    MG_EXPECT_FATAL(mg_h5_attr_read_i64(f, path, ".", "vs", hint), "not a single value");
    MG_EXPECT_FATAL(mg_h5_read_text(f, path, "g/x", hint), "not a fixed-length string");
    float x[12];
    const hsize_t other[2] = {3, 2}, longer[1] = {12};
    MG_EXPECT_FATAL(mg_h5_read_array(f, path, "g/x", H5T_NATIVE_FLOAT, 2, other, x, hint),
                    "dataset g/x holds (2, 3) values, expected (3, 2)");
    MG_EXPECT_FATAL(mg_h5_read_array(f, path, "g/k", H5T_NATIVE_FLOAT, 1, longer, x, hint),
                    "dataset g/k holds 3 values, expected 12");
    MG_EXPECT_FATAL(mg_h5_read_array(f, path, "g/none", H5T_NATIVE_FLOAT, 1, longer, x, hint),
                    "missing dataset g/none");
    /* an HDF5 call that fails names the file, the object and the call */
    MG_EXPECT_FATAL(mg_h5_attr_write_i64(f, path, "i", 1), "H5Acreate2");
    assert_true(H5Fclose(f) >= 0);

    /* a truncated copy and a file that is not HDF5 are refused when opened */
    char cut[320], cmd[700];
    snprintf(cut, sizeof cut, "%s/cut.h5", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    snprintf(cmd, sizeof cmd, "head -c %lld '%s' > '%s'", (long long)st.st_size / 2, path, cut);
    assert_int_equal(system(cmd), 0);
    MG_EXPECT_FATAL(mg_h5_open_read(cut, "test file", hint), "not a readable test file");
    snprintf(cmd, sizeof cmd, "echo text > '%s'", cut);
    assert_int_equal(system(cmd), 0);
    MG_EXPECT_FATAL(mg_h5_open_read(cut, "test file", hint), "not a readable test file");
    snprintf(cut, sizeof cut, "%s/absent.h5", dir);
    MG_EXPECT_FATAL(mg_h5_open_read(cut, "test file", hint), "cannot read test file");
}

static void test_h5_rows(void **state)
{
    (void)state;
    char path[300], tmp[400];
    snprintf(path, sizeof path, "%s/rows.h5", dir);
    hid_t f = mg_h5_create_tmp(path, tmp, sizeof tmp);
    const int32_t zero[10] = {0};
    const hsize_t dims[2] = {5, 2};
    mg_h5_write_array(f, tmp, "r", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims, zero);
    hid_t set = H5Dopen2(f, "r", H5P_DEFAULT);
    assert_true(set >= 0);
    const int32_t mid[4] = {1, 2, 3, 4};
    mg_h5_rows_write(set, tmp, "r", H5T_NATIVE_INT32, 1, 2, mid);
    int32_t all[10];
    mg_h5_rows_read(set, tmp, "r", H5T_NATIVE_INT32, 0, 5, all);
    const int32_t want[10] = {0, 0, 1, 2, 3, 4, 0, 0, 0, 0};
    assert_memory_equal(all, want, sizeof want);
    mg_h5_rows_read(set, tmp, "r", H5T_NATIVE_INT32, 5, 0, all); /* no rows: nothing read */
    MG_EXPECT_FATAL(mg_h5_rows_read(set, tmp, "r", H5T_NATIVE_INT32, 4, 2, all), "rows [4, 6) of dataset r outside");
    assert_true(H5Dclose(set) >= 0);
    mg_h5_commit(f, tmp, path);
}

static void test_files_and_checksum(void **state)
{
    (void)state;
    char deep[300], tmp[400], path[400];
    snprintf(deep, sizeof deep, "%s/a/b/c", dir);
    mg_mkdir_p(deep);
    mg_mkdir_p(deep); /* existing: fine */
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    snprintf(path, sizeof path, "%s/file.txt", deep);
    mg_tmp_path(tmp, sizeof tmp, path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs("v1\n", f);
    assert_int_equal(fclose(f), 0);
    mg_file_commit(tmp, path);
    assert_int_not_equal(stat(tmp, &st), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3);
    MG_EXPECT_FATAL(mg_file_commit(tmp, path), "fsync failed"); /* the temporary is gone */

    /* known values: they are stored in model files, so they must never change */
    assert_true(mg_checksum("", 0) == 0x14650fb0739d0383ull);
    assert_true(mg_checksum("a", 1) == 0x44bd8ad473cd9906ull);
    assert_true(mg_checksum("ab", 2) != mg_checksum("ba", 2));

    const double t0 = mg_now(), t1 = mg_now();
    assert_true(t1 >= t0 && t0 > 0);
    assert_true(mg_clock_seconds(CLOCK_THREAD_CPUTIME_ID) >= 0);
}

static void test_text_and_json(void **state)
{
    (void)state;
    mg_text t = {0};
    assert_string_equal(mg_text_str(&t), "");
    for (int i = 0; i < 1000; i++)
        mg_text_put(&t, "%d,", i % 10);
    assert_int_equal(t.len, 2000);
    assert_int_equal(strlen(mg_text_str(&t)), 2000);
    char *s = mg_text_take(&t);
    assert_int_equal(strncmp(s, "0,1,2,", 6), 0);
    mg_free(s);
    assert_int_equal(t.len, 0);
    s = mg_text_take(&t);
    assert_string_equal(s, "");
    mg_free(s);

    mg_json j;
    mg_json_begin(&j, &t, 7);
    mg_json_int(&j, "step", 10);
    mg_json_num(&j, "x", 1.0 / 3.0);
    mg_json_num(&j, "nan", NAN);
    mg_json_num(&j, "inf", -INFINITY);
    mg_json_str(&j, "s", "a\"b\\c\n");
    mg_json_object(&j, "o");
    mg_json_array(&j, "a");
    mg_json_fmt(&j, NULL, "%.0f", 3.0);
    mg_json_uint(&j, NULL, 18446744073709551615ull);
    mg_json_end(&j);
    mg_json_array(&j, "empty");
    mg_json_end(&j);
    mg_json_bool(&j, "b", true);
    mg_json_end(&j);
    mg_json_raw(&j, "raw", "{\"k\": 1}");
    mg_json_end(&j);
    assert_string_equal(mg_text_str(&t), "{\"step\": 10, \"x\": 0.3333333, \"nan\": null, \"inf\": null, "
                                         "\"s\": \"a\\\"b\\\\c\\u000a\", \"o\": {\"a\": [3, 18446744073709551615], "
                                         "\"empty\": [], \"b\": true}, \"raw\": {\"k\": 1}}");
    mg_text_free(&t);
    MG_EXPECT_FATAL(mg_json_end(&j), "more ends than openings");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h5_round_trip),
        cmocka_unit_test(test_h5_refusals),
        cmocka_unit_test(test_h5_rows),
        cmocka_unit_test(test_files_and_checksum),
        cmocka_unit_test(test_text_and_json),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}

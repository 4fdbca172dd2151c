/* Bad data files end a real 2-rank run: each case starts `tools/mpirun.sh 2` on this
 * program in child mode (mg_dist_init, mg_loader_open, one batch) under `timeout 60`, and
 * checks that the job exits non-zero, within seconds, with the documented message, and
 * that a good file runs through (so the failures are not the launcher's).
 *
 * Runs as a plain process (it launches MPI itself). MG_MPIRUN may name the launcher;
 * otherwise tools/mpirun.sh is looked for from the working directory and from the
 * binary's location (BUILD/tests/..). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mg_test.h"
#include "mg_testenv.h"

#include "mg_dist.h"
#include "mg_h5schema.h"
#include "mg_loader.h"

static char tmp[256], self[1024], launcher[1200];

static int child(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    mg_loader_cfg cfg;
    mg_loader_cfg_default(&cfg);
    snprintf(cfg.path, sizeof cfg.path, "%s", argv[2]);
    cfg.sampler = strcmp(argv[3], "shard") == 0 ? MG_SAMPLER_SHARD : MG_SAMPLER_GLOBAL;
    mg_loader *L = mg_loader_open(&cfg, (mg_shape){1, 4, 5}, 8);
    mg_loader_next(L, NULL);
    printf("[rank %d] loaded one batch\n", mg_dist_rank());
    mg_loader_close(L);
    mg_dist_finalize();
    return 0;
}

static void write_images(const char *path, mg_shape s, int64_t n)
{
    mg_data_info info = {0};
    info.kind = MG_DATA_IMAGES;
    info.n = n;
    info.c = s.c;
    info.h = s.h;
    info.w = s.w;
    info.chunk_rows = 16;
    mg_h5_writer *w = mg_h5_create(path, &info, NULL);
    size_t sb = mg_shape_size(s);
    unsigned char *x = calloc((size_t)n, sb);
    mg_h5_write_rows(w, 0, n, x, NULL);
    mg_h5_writer_close(w);
    free(x);
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void find_launcher(void)
{
    const char *env = getenv("MG_MPIRUN");
    if (env) {
        snprintf(launcher, sizeof launcher, "%s", env);
        return;
    }
    if (file_exists("tools/mpirun.sh")) {
        snprintf(launcher, sizeof launcher, "tools/mpirun.sh");
        return;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", self);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    snprintf(launcher, sizeof launcher, "%s/../../tools/mpirun.sh", dir);
    if (!file_exists(launcher))
        fail_msg("cannot find tools/mpirun.sh; run from the repository root or set MG_MPIRUN");
}

/* Runs the child on path under mpirun -np 2; returns the exit status, the output in log. */
static int run_job(const char *path, const char *sampler, char *log, size_t logsize, double *seconds)
{
    char out[400], cmd[4096];
    snprintf(out, sizeof out, "%s/job.log", tmp);
    snprintf(cmd, sizeof cmd, "timeout 60 %s 2 %s --child %s %s > %s 2>&1", launcher, self, path, sampler, out);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st = system(cmd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    FILE *f = fopen(out, "r");
    size_t n = f ? fread(log, 1, logsize - 1, f) : 0;
    log[n] = 0;
    if (f)
        fclose(f);
    unlink(out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void expect_failure(const char *name, const char *sampler, const char *message)
{
    char path[400], log[65536];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    double s = 0;
    int rc = run_job(path, sampler, log, sizeof log, &s);
    printf("  %s (%s): exit %d after %.1f s\n", name, sampler, rc, s);
    if (rc == 0 || rc == 124)
        fail_msg("%s: the job %s (exit %d); output:\n%s", name, rc ? "hung (timeout)" : "succeeded", rc, log);
    if (s > 30)
        fail_msg("%s: the error took %.0f s", name, s);
    if (!strstr(log, message) || !strstr(log, "[rank "))
        fail_msg("%s: the output lacks a rank's message containing '%s':\n%s", name, message, log);
    if (strstr(log, "loaded one batch"))
        fail_msg("%s: a rank went on to load data:\n%s", name, log);
}

static void test_jobs(void **state)
{
    (void)state;
    char path[400], log[65536];
    snprintf(path, sizeof path, "%s/good.h5", tmp);
    write_images(path, (mg_shape){1, 4, 5}, 100);
    double s = 0;
    int rc = run_job(path, "global", log, sizeof log, &s);
    printf("  good.h5: exit %d after %.1f s\n", rc, s);
    if (rc != 0 || !strstr(log, "loaded one batch"))
        fail_msg("a good file did not load under mpirun (exit %d):\n%s", rc, log);

    char from[400];
    snprintf(from, sizeof from, "%s/good.h5", tmp);
    snprintf(path, sizeof path, "%s/truncated.h5", tmp);
    FILE *a = fopen(from, "rb"), *b = fopen(path, "wb");
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, a);
    fwrite(buf, 1, n / 2, b);
    fclose(a);
    fclose(b);
    snprintf(path, sizeof path, "%s/corrupt.h5", tmp);
    b = fopen(path, "wb");
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 255, b);
    fclose(b);
    snprintf(path, sizeof path, "%s/wrong_shape.h5", tmp);
    write_images(path, (mg_shape){3, 4, 5}, 100);
    snprintf(path, sizeof path, "%s/too_small.h5", tmp);
    write_images(path, (mg_shape){1, 4, 5}, 7);

    expect_failure("corrupt.h5", "global", "not an HDF5 file");
    expect_failure("truncated.h5", "shard", "truncated");
    expect_failure("wrong_shape.h5", "global", "samples are (3, 4, 5)");
    expect_failure("too_small.h5", "shard", "fewer than the global batch 8");
    expect_failure("missing.h5", "global", "No such file");
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(tmp, sizeof tmp, "data_errors");
    find_launcher();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(tmp);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child(argc, argv);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        snprintf(self, sizeof self, "%s", argv[0]);
    else
        self[n] = 0;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_jobs)};
    return cmocka_run_group_tests(tests, setup, teardown);
}

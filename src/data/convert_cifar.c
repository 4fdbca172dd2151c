/* `mpigan data cifar10`: CIFAR-10's binary batches into two data files
 * (mg_convert_images.h). A record is 1 label byte and the 3072 bytes of the R, G and B
 * planes of a 32 x 32 image, which is already the data file's channels-first sample, so a
 * record is copied as it is. Rank 0 checks every batch's length before anything is written;
 * each rank then reads its share of the records with pread(2) through the distributed
 * writer, which reports a label above 9 as a bad item naming the file and record. */
#include "mg_convert_images.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_convert_dist.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_h5schema.h"

#define PATH_CAP 4096
#define RECORD 3073
#define N_BATCHES 6 /* five training batches, then the test batch */

static const char *const batch_names[N_BATCHES] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                                   "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
static const char *const cifar_classes[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};

typedef struct {
    char path[N_BATCHES][PATH_CAP];
    int64_t records[N_BATCHES];
    int fd[N_BATCHES];
    int first, count; /* the batches of the file being written */
} cifar_ctx;

static void join(char *out, const char *dir, const char *name)
{
    size_t n = strlen(dir);
    snprintf(out, PATH_CAP, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

static bool make_record(void *vctx, int64_t item, uint8_t *sample, int32_t *label, int32_t *factors, char *why,
                        size_t why_size)
{
    (void)factors;
    cifar_ctx *ctx = vctx;
    int b = ctx->first;
    while (b < ctx->first + ctx->count - 1 && item >= ctx->records[b]) {
        item -= ctx->records[b];
        b++;
    }
    if (ctx->fd[b] < 0 && (ctx->fd[b] = open(ctx->path[b], O_RDONLY)) < 0) {
        snprintf(why, why_size, "%s: cannot open: %s", ctx->path[b], strerror(errno));
        return false;
    }
    uint8_t rec[RECORD];
    ssize_t got = pread(ctx->fd[b], rec, RECORD, (off_t)(item * RECORD));
    if (got != RECORD) {
        snprintf(why, why_size, "%s: cannot read record %lld: %s", ctx->path[b], (long long)item,
                 got < 0 ? strerror(errno) : "the file is shorter than when it was checked");
        return false;
    }
    if (rec[0] > 9) {
        snprintf(why, why_size, "%s: record %lld has label %u, not a class 0..9 (the file is damaged or not a "
                 "CIFAR-10 batch)", ctx->path[b], (long long)item, rec[0]);
        return false;
    }
    memcpy(sample, rec + 1, RECORD - 1);
    *label = rec[0];
    return true;
}

/* Rank 0: the class names of batches.meta.txt (one per line, blank lines skipped) when the
 * file exists; false with err when it exists but does not name ten classes. */
static bool read_meta(const char *dir, char names[10][64], bool *found, char *err, size_t errlen)
{
    char path[PATH_CAP];
    join(path, dir, "batches.meta.txt");
    *found = false;
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    *found = true;
    int n = 0;
    char line[256];
    while (n < 10 && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = 0;
        if (len)
            snprintf(names[n++], 64, "%s", line);
    }
    fclose(f);
    if (n < 10)
        snprintf(err, errlen, "%s: names %d classes, CIFAR-10 has 10 (one name per line)", path, n);
    return n == 10;
}

static void write_split(const char *out_path, cifar_ctx *ctx, int first, int count, const char *split,
                        const char *const *classes, const char *dir, int64_t *n_out)
{
    ctx->first = first;
    ctx->count = count;
    int64_t n = 0;
    for (int b = first; b < first + count; b++)
        n += ctx->records[b];
    mg_dist_write_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.info.kind = MG_DATA_IMAGES;
    spec.info.c = 3;
    spec.info.h = spec.info.w = 32;
    spec.info.has_labels = true;
    spec.info.value_range[1] = 255;
    snprintf(spec.info.split, sizeof spec.info.split, "%s", split);
    snprintf(spec.info.source, sizeof spec.info.source,
             "CIFAR-10 binary batches from %.400s (%s), converted by `mpigan data cifar10`", dir,
             count > 1 ? "data_batch_1..5.bin" : "test_batch.bin");
    mg_data_info_set_classes(&spec.info, 10, classes);
    spec.n_items = n;
    spec.make = make_record;
    spec.ctx = ctx;
    mg_dist_write_result res;
    mg_convert_dist_write(out_path, &spec, &res);
    mg_data_info_free(&spec.info);
    if (n_out)
        *n_out = res.n_written;
}

void mg_convert_cifar10(const char *dir, const char *out_dir, int64_t *n_train, int64_t *n_test)
{
    cifar_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    char err[1024] = "";
    char names[10][64];
    bool have_meta = false;
    for (int b = 0; b < N_BATCHES; b++) {
        join(ctx.path[b], dir, batch_names[b]);
        ctx.fd[b] = -1;
    }
    if (mg_dist_rank() == 0) {
        for (int b = 0; b < N_BATCHES && !err[0]; b++) {
            struct stat st;
            if (stat(ctx.path[b], &st) != 0)
                snprintf(err, sizeof err, "%s: cannot open: %s (the CIFAR-10 binary version has data_batch_1..5.bin "
                         "and test_batch.bin)", ctx.path[b], strerror(errno));
            else if (!S_ISREG(st.st_mode) || st.st_size == 0 || st.st_size % RECORD != 0)
                snprintf(err, sizeof err, "%s: is %lld bytes, not a positive multiple of %d (a record is 1 label "
                         "byte and 3072 pixel bytes); the file is truncated or not a CIFAR-10 batch", ctx.path[b],
                         (long long)st.st_size, RECORD);
            else
                ctx.records[b] = st.st_size / RECORD;
        }
        if (!err[0])
            read_meta(dir, names, &have_meta, err, sizeof err);
        if (!err[0]) {
            struct stat st;
            if (stat(out_dir, &st) != 0 && mkdir(out_dir, 0777) != 0)
                snprintf(err, sizeof err, "%s: cannot create the output folder: %s", out_dir, strerror(errno));
            else if (stat(out_dir, &st) == 0 && !S_ISDIR(st.st_mode))
                snprintf(err, sizeof err, "%s: not a directory", out_dir);
        }
    }
    mg_convert_agree(err, "get CIFAR-10's binary version (cifar-10-binary.tar.gz) and give the folder it unpacks to");
    mg_dist_bcast(ctx.records, sizeof ctx.records);
    mg_dist_bcast(&have_meta, sizeof have_meta);
    mg_dist_bcast(names, sizeof names);
    const char *classes[10];
    for (int k = 0; k < 10; k++)
        classes[k] = have_meta ? names[k] : cifar_classes[k];

    char out[PATH_CAP];
    join(out, out_dir, MG_CIFAR10_TRAIN_FILE);
    write_split(out, &ctx, 0, 5, "train", classes, dir, n_train);
    join(out, out_dir, MG_CIFAR10_TEST_FILE);
    write_split(out, &ctx, 5, 1, "test", classes, dir, n_test);
    for (int b = 0; b < N_BATCHES; b++)
        if (ctx.fd[b] >= 0)
            close(ctx.fd[b]);
}

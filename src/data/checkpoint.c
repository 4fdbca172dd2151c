/* Training checkpoints in HDF5 (layout in mg_checkpoint.h): the only module that spells
 * their dataset and attribute names. The reading, writing and checking of HDF5 objects is
 * mg_h5util.h's; this file says what goes where and validates what it reads. */
#include "mg_checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_error.h"
#include "mg_h5util.h"
#include "mg_util.h"

#define FORMAT_NAME "mpigan-checkpoint"

#define H5_OK MG_H5_OK

void mg_rng_to_words(const mg_rng *r, uint32_t *w)
{
    w[0] = r->key[0], w[1] = r->key[1];
    for (int i = 0; i < 4; i++)
        w[2 + i] = r->ctr[i], w[6 + i] = r->block[i];
    w[10] = r->used;
    w[11] = r->has_spare;
    memcpy(&w[12], &r->spare, sizeof(float));
}

void mg_rng_from_words(mg_rng *r, const uint32_t *w)
{
    r->key[0] = w[0], r->key[1] = w[1];
    for (int i = 0; i < 4; i++)
        r->ctr[i] = w[2 + i], r->block[i] = w[6 + i];
    r->used = w[10];
    r->has_spare = w[11];
    memcpy(&r->spare, &w[12], sizeof(float));
}

/* ---- writing ---- */

static void write_floats(hid_t loc, const char *file, const char *name, const float *data, size_t n)
{
    const hsize_t dims[1] = {n};
    mg_h5_write_array(loc, file, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims, data);
}

static void write_net(hid_t f, const char *file, const char *group, const mg_net *net, const mg_optim *opt)
{
    hid_t g = mg_h5_group_create(f, file, group);
    write_floats(g, file, "param", net->param, net->n_param);
    write_floats(g, file, "state", net->state, net->n_state);
    if (opt->m)
        write_floats(g, file, "opt_m", opt->m, opt->n);
    if (opt->v)
        write_floats(g, file, "opt_v", opt->v, opt->n);
    mg_h5_attr_write_str(g, file, "opt_kind", mg_opt_kind_name(opt->cfg.kind));
    mg_h5_attr_write_i64(g, file, "opt_step", opt->step);
    H5_OK(H5Gclose(g), file, group);
}

static void write_loader_state(hid_t f, const char *file, const mg_ckpt *c)
{
    const char *name = "/loader/state";
    H5_OK(H5Gclose(mg_h5_group_create(f, file, "loader")), file, "/loader");
    const hsize_t dims[1] = {MG_LOADER_STATE_WORDS};
    mg_h5_write_array(f, file, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, dims, c->loader_state);
    hid_t set = H5_OK(H5Dopen2(f, name, H5P_DEFAULT), file, name);
    mg_h5_attr_write_str(set, file, "sampler", c->loader_sampler);
    mg_h5_attr_write_str(set, file, "fields", MG_LOADER_STATE_FIELDS);
    H5_OK(H5Dclose(set), file, name);
}

static void write_ada_state(hid_t f, const char *file, const mg_ckpt *c)
{
    const char *name = "/augment/adaptive";
    H5_OK(H5Gclose(mg_h5_group_create(f, file, "augment")), file, "/augment");
    const hsize_t dims[1] = {MG_CKPT_ADA_WORDS};
    mg_h5_write_array(f, file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dims, c->ada);
    hid_t set = H5_OK(H5Dopen2(f, name, H5P_DEFAULT), file, name);
    mg_h5_attr_write_str(set, file, "fields", "p,sign_sum,seen,last_rt");
    H5_OK(H5Dclose(set), file, name);
}

/* dir/latest names the newest complete checkpoint; replaced atomically like the files. */
static void write_latest(const char *dir, const char *name)
{
    char tmp[1100], final[1100];
    snprintf(final, sizeof final, "%s/latest", dir);
    mg_tmp_path(tmp, sizeof tmp, final);
    FILE *f = fopen(tmp, "w");
    MG_CHECK(f, tmp, "check permissions", "cannot write: %s", strerror(errno));
    MG_CHECK(fprintf(f, "%s\n", name) > 0 && fflush(f) == 0, tmp, "check the disk", "write failed: %s",
             strerror(errno));
    MG_CHECK(fclose(f) == 0, tmp, NULL, "close failed: %s", strerror(errno));
    mg_file_commit(tmp, final);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Removes all but the newest keep checkpoint files (names sort by step). */
static void prune(const char *dir, int keep)
{
    DIR *d = opendir(dir);
    MG_CHECK(d, dir, NULL, "cannot list: %s", strerror(errno));
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        long step;
        char tail[8];
        if (sscanf(e->d_name, "ckpt_%9ld.h%7s", &step, tail) == 2 && !strcmp(tail, "5") &&
            strlen(e->d_name) == strlen("ckpt_000000000.h5"))
            names[n++] = mg_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, compare_names);
    for (int i = 0; i < n; i++) {
        if (i < n - keep) {
            char path[1400];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            MG_CHECK(unlink(path) == 0 || errno == ENOENT, path, NULL, "cannot remove old checkpoint: %s",
                     strerror(errno));
        }
        mg_free(names[i]);
    }
}

void mg_ckpt_write(const char *dir, const mg_ckpt *c, int keep_last)
{
    char name[64], tmp[1100], final[1100];
    snprintf(name, sizeof name, "ckpt_%09ld.h5", c->step);
    snprintf(final, sizeof final, "%s/%s", dir, name);
    mg_mkdir_p(dir);
    hid_t f = mg_h5_create_tmp(final, tmp, sizeof tmp);
    hid_t meta = mg_h5_group_create(f, tmp, "meta");
    mg_h5_attr_write_str(meta, tmp, "format", FORMAT_NAME);
    mg_h5_attr_write_i64(meta, tmp, "format_version", MG_CKPT_FORMAT_VERSION);
    mg_h5_attr_write_i64(meta, tmp, "step", c->step);
    mg_h5_attr_write_i64(meta, tmp, "n_ranks", c->n_ranks);
    mg_h5_attr_write_i64(meta, tmp, "data_items", (int64_t)c->data_items);
    mg_h5_attr_write_i64(meta, tmp, "noise_items", (int64_t)c->noise_items);
    mg_h5_write_text(meta, tmp, "config", c->config_text);
    H5_OK(H5Gclose(meta), tmp, "/meta");
    write_net(f, tmp, "G", c->G, c->opt_g);
    write_net(f, tmp, "D", c->D, c->opt_d);
    H5_OK(H5Gclose(mg_h5_group_create(f, tmp, "rng")), tmp, "/rng");
    const hsize_t rng_dims[2] = {(hsize_t)c->n_ranks, MG_RNG_WORDS};
    mg_h5_write_array(f, tmp, "/rng/noise", H5T_STD_U32LE, H5T_NATIVE_UINT32, 2, rng_dims, c->rng_words);
    if (c->ema) {
        hid_t g = mg_h5_group_create(f, tmp, "G_ema");
        write_floats(g, tmp, "param", c->ema->param, c->ema->n_param);
        write_floats(g, tmp, "state", c->ema->state, c->ema->n_state);
        H5_OK(H5Gclose(g), tmp, "/G_ema");
    }
    if (c->has_loader_state)
        write_loader_state(f, tmp, c);
    if (c->has_ada)
        write_ada_state(f, tmp, c);
    mg_h5_commit(f, tmp, final);
    write_latest(dir, name);
    prune(dir, keep_last);
}

bool mg_ckpt_latest(const char *dir, char *path, size_t size)
{
    char pointer[1100];
    snprintf(pointer, sizeof pointer, "%s/latest", dir);
    FILE *f = fopen(pointer, "r");
    if (!f) {
        MG_CHECK(errno == ENOENT, pointer, NULL, "cannot read: %s", strerror(errno));
        return false;
    }
    char name[256] = "";
    bool ok = fgets(name, sizeof name, f) != NULL;
    fclose(f);
    name[strcspn(name, "\r\n")] = 0;
    MG_CHECK(ok && name[0] && !strchr(name, '/'), pointer, "remove it to start afresh",
             "does not name a checkpoint file");
    snprintf(path, size, "%s/%s", dir, name);
    MG_CHECK(access(path, R_OK) == 0, path, "the checkpoint directory was changed by hand?",
             "'latest' names a checkpoint that cannot be read: %s", strerror(errno));
    return true;
}

/* ---- reading ---- */

static const char incomplete[] = "the checkpoint is incomplete or foreign";

static hid_t open_checked(const char *path)
{
    hid_t f = mg_h5_open_read(path, "checkpoint",
                              "the file is truncated or is not an HDF5 file; resume from an older checkpoint");
    MG_CHECK(mg_h5_exists(f, path, "meta") && mg_h5_attr_exists(f, path, "meta", "format"), path,
             "this file was not written by mpigan train", "not an mpigan checkpoint (no /meta format attribute)");
    return f;
}

/* Reads a 1-d float dataset that must hold exactly n values. */
static void read_floats(hid_t f, const char *path, const char *name, float *dst, size_t n)
{
    const hsize_t dims[1] = {n};
    mg_h5_read_array(f, path, name, H5T_NATIVE_FLOAT, 1, dims, dst,
                     "the checkpoint was written for other networks or optimizers");
}

static void check_format(hid_t f, const char *path)
{
    char format[64];
    mg_h5_attr_read_str(f, path, "meta", "format", format, sizeof format, incomplete);
    MG_CHECK(!strcmp(format, FORMAT_NAME), path, "this file was not written by mpigan train",
             "format is '%s', not '%s'", format, FORMAT_NAME);
    int64_t version = mg_h5_attr_read_i64(f, path, "meta", "format_version", incomplete);
    MG_CHECK(version == MG_CKPT_FORMAT_VERSION, path, "use the mpigan version that wrote it",
             "checkpoint format version %lld, this build reads %d", (long long)version, MG_CKPT_FORMAT_VERSION);
}

static void read_net(hid_t f, const char *path, const char *group, mg_net *net, mg_optim *opt)
{
    char name[64];
    snprintf(name, sizeof name, "%s/param", group);
    read_floats(f, path, name, net->param, net->n_param);
    snprintf(name, sizeof name, "%s/state", group);
    read_floats(f, path, name, net->state, net->n_state);
    if (!opt)
        return;
    char kind[32];
    mg_h5_attr_read_str(f, path, group, "opt_kind", kind, sizeof kind, incomplete);
    MG_CHECK(!strcmp(kind, mg_opt_kind_name(opt->cfg.kind)), path, "resume with the optimizer the run started with",
             "%s was trained with %s, the config asks for %s", group, kind, mg_opt_kind_name(opt->cfg.kind));
    const char *slots[2] = {"opt_m", "opt_v"};
    float *bufs[2] = {opt->m, opt->v};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s/%s", group, slots[i]);
        bool in_file = mg_h5_exists(f, path, name);
        MG_CHECK(in_file == (bufs[i] != NULL), path, "resume with the optimizer settings the run started with",
                 "%s %s in the file but %s by the config", name, in_file ? "present" : "absent",
                 bufs[i] ? "needed" : "not used");
        if (bufs[i])
            read_floats(f, path, name, bufs[i], opt->n);
    }
    opt->step = (long)mg_h5_attr_read_i64(f, path, group, "opt_step", incomplete);
}

static char *read_config_text(hid_t f, const char *path)
{
    return mg_h5_read_text(f, path, "meta/config", "the checkpoint is incomplete");
}

/* /loader/state when the file has it (HDF5 data); has_loader_state says whether it did. */
static void read_loader_state(hid_t f, const char *path, mg_ckpt *c)
{
    const char *name = "loader/state";
    c->has_loader_state = mg_h5_exists(f, path, "loader");
    if (!c->has_loader_state)
        return;
    hsize_t dims[H5S_MAX_RANK] = {0};
    const int rank = mg_h5_shape(f, path, name, dims, H5S_MAX_RANK, "the checkpoint is incomplete");
    MG_CHECK(rank == 1 && dims[0] == MG_LOADER_STATE_WORDS, path,
             "the checkpoint was written by another mpigan version",
             "/%s holds %llu words, this build's loader state has %zu", name,
             rank == 1 ? (unsigned long long)dims[0] : 0ull, (size_t)MG_LOADER_STATE_WORDS);
    mg_h5_read_array(f, path, name, H5T_NATIVE_UINT64, 1, dims, c->loader_state, NULL);
    mg_h5_attr_read_str(f, path, name, "sampler", c->loader_sampler, sizeof c->loader_sampler, incomplete);
}

void mg_ckpt_read(const char *path, mg_ckpt *c)
{
    hid_t f = open_checked(path);
    check_format(f, path);
    c->step = (long)mg_h5_attr_read_i64(f, path, "meta", "step", incomplete);
    int n_ranks = (int)mg_h5_attr_read_i64(f, path, "meta", "n_ranks", incomplete);
    MG_CHECK(n_ranks >= 1, path, NULL, "bad n_ranks %d", n_ranks);
    c->data_items = (uint64_t)mg_h5_attr_read_i64(f, path, "meta", "data_items", incomplete);
    c->noise_items = (uint64_t)mg_h5_attr_read_i64(f, path, "meta", "noise_items", incomplete);
    c->config_text = read_config_text(f, path);
    read_net(f, path, "G", c->G, c->opt_g);
    read_net(f, path, "D", c->D, c->opt_d);

    if (!c->rng_words)
        c->rng_words = mg_alloc(sizeof(uint32_t) * (size_t)n_ranks * MG_RNG_WORDS, "checkpoint RNG states");
    const hsize_t rng_dims[2] = {(hsize_t)n_ranks, MG_RNG_WORDS};
    mg_h5_read_array(f, path, "rng/noise", H5T_NATIVE_UINT32, 2, rng_dims, c->rng_words,
                     "the checkpoint is incomplete, or was written for another number of ranks");
    c->n_ranks = n_ranks;
    read_loader_state(f, path, c);
    c->has_ada = mg_h5_exists(f, path, "augment") && mg_h5_exists(f, path, "augment/adaptive");
    if (c->has_ada) {
        const hsize_t dims[1] = {MG_CKPT_ADA_WORDS};
        mg_h5_read_array(f, path, "augment/adaptive", H5T_NATIVE_DOUBLE, 1, dims, c->ada,
                         "the checkpoint was written by another mpigan version");
    }
    c->has_ema = mg_h5_exists(f, path, "G_ema");
    if (c->ema && c->has_ema) {
        read_floats(f, path, "G_ema/param", c->ema->param, c->ema->n_param);
        read_floats(f, path, "G_ema/state", c->ema->state, c->ema->n_state);
    }
    H5_OK(H5Fclose(f), path, "/");
}

char *mg_ckpt_read_config(const char *path, long *step)
{
    hid_t f = open_checked(path);
    check_format(f, path);
    if (step)
        *step = (long)mg_h5_attr_read_i64(f, path, "meta", "step", incomplete);
    char *text = read_config_text(f, path);
    H5_OK(H5Fclose(f), path, "/");
    return text;
}

void mg_ckpt_read_net(const char *path, const char *which, mg_net *net)
{
    hid_t f = open_checked(path);
    check_format(f, path);
    bool ema = !strcmp(which, "G_ema");
    MG_CHECK(mg_h5_exists(f, path, which), path,
             ema ? "the run trained without train.ema; drop --ema to use its generator" : "the checkpoint is incomplete",
             "no /%s group%s", which, ema ? " (no EMA generator)" : "");
    read_net(f, path, which, net, NULL);
    H5_OK(H5Fclose(f), path, "/");
}

bool mg_ckpt_has_net(const char *path, const char *which)
{
    hid_t f = open_checked(path);
    check_format(f, path);
    bool has = mg_h5_exists(f, path, which);
    H5_OK(H5Fclose(f), path, "/");
    return has;
}

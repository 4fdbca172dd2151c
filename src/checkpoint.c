/* Training checkpoints in HDF5 (layout in mg_checkpoint.h). Every HDF5 call goes through
 * H5_OK, which reports the file, the object and HDF5's innermost message through the
 * error path; HDF5's automatic stack printing is switched off. */
#include "mg_checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_error.h"
#include "mg_h5check.h"

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

void mg_mkdir_p(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                MG_FAIL(path, "check permissions and the path", "cannot create directory: %s", strerror(errno));
            *p = saved;
            if (!saved)
                break;
        }
    }
}

/* ---- writing ---- */

static void write_floats(hid_t loc, const char *file, const char *name, const float *data, size_t n)
{
    hsize_t dims[1] = {n};
    hid_t space = H5_OK(H5Screate_simple(1, dims, NULL), file, name);
    hid_t set = H5_OK(H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), file, name);
    if (n)
        H5_OK(H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), file, name);
    H5_OK(H5Dclose(set), file, name);
    H5_OK(H5Sclose(space), file, name);
}

static void write_attr_i64(hid_t loc, const char *file, const char *name, int64_t v)
{
    hid_t space = H5_OK(H5Screate(H5S_SCALAR), file, name);
    hid_t a = H5_OK(H5Acreate2(loc, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), file, name);
    H5_OK(H5Awrite(a, H5T_NATIVE_INT64, &v), file, name);
    H5_OK(H5Aclose(a), file, name);
    H5_OK(H5Sclose(space), file, name);
}

static hid_t string_type(const char *file, const char *name, size_t len)
{
    hid_t t = H5_OK(H5Tcopy(H5T_C_S1), file, name);
    H5_OK(H5Tset_size(t, len ? len : 1), file, name);
    H5_OK(H5Tset_strpad(t, H5T_STR_NULLPAD), file, name);
    return t;
}

static void write_attr_str(hid_t loc, const char *file, const char *name, const char *s)
{
    hid_t t = string_type(file, name, strlen(s));
    hid_t space = H5_OK(H5Screate(H5S_SCALAR), file, name);
    hid_t a = H5_OK(H5Acreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT), file, name);
    H5_OK(H5Awrite(a, t, s), file, name);
    H5_OK(H5Aclose(a), file, name);
    H5_OK(H5Sclose(space), file, name);
    H5_OK(H5Tclose(t), file, name);
}

static void write_net(hid_t file_id, const char *file, const char *group, const mg_net *net, const mg_optim *opt)
{
    hid_t g = H5_OK(H5Gcreate2(file_id, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), file, group);
    write_floats(g, file, "param", net->param, net->n_param);
    write_floats(g, file, "state", net->state, net->n_state);
    if (opt->m)
        write_floats(g, file, "opt_m", opt->m, opt->n);
    if (opt->v)
        write_floats(g, file, "opt_v", opt->v, opt->n);
    write_attr_str(g, file, "opt_kind", mg_opt_kind_name(opt->cfg.kind));
    write_attr_i64(g, file, "opt_step", opt->step);
    H5_OK(H5Gclose(g), file, group);
}

static void write_loader_state(hid_t f, const char *file, const mg_ckpt *c)
{
    const char *name = "/loader/state";
    hid_t g = H5_OK(H5Gcreate2(f, "loader", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), file, "/loader");
    hsize_t dims[1] = {MG_LOADER_STATE_WORDS};
    hid_t space = H5_OK(H5Screate_simple(1, dims, NULL), file, name);
    hid_t set = H5_OK(H5Dcreate2(g, "state", H5T_STD_U64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), file, name);
    H5_OK(H5Dwrite(set, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->loader_state), file, name);
    write_attr_str(set, file, "sampler", c->loader_sampler);
    write_attr_str(set, file, "fields", MG_LOADER_STATE_FIELDS);
    H5_OK(H5Dclose(set), file, name);
    H5_OK(H5Sclose(space), file, name);
    H5_OK(H5Gclose(g), file, "/loader");
}

static void fsync_path(const char *path, bool directory)
{
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    MG_CHECK(fd >= 0, path, NULL, "cannot open for fsync: %s", strerror(errno));
    MG_CHECK(fsync(fd) == 0, path, "check the disk", "fsync failed: %s", strerror(errno));
    close(fd);
}

static void write_latest(const char *dir, const char *name)
{
    char tmp[1100], final[1100];
    snprintf(tmp, sizeof tmp, "%s/latest.tmp", dir);
    snprintf(final, sizeof final, "%s/latest", dir);
    FILE *f = fopen(tmp, "w");
    MG_CHECK(f, tmp, "check permissions", "cannot write: %s", strerror(errno));
    MG_CHECK(fprintf(f, "%s\n", name) > 0 && fflush(f) == 0 && fsync(fileno(f)) == 0, tmp, "check the disk",
             "write failed: %s", strerror(errno));
    MG_CHECK(fclose(f) == 0, tmp, NULL, "close failed: %s", strerror(errno));
    MG_CHECK(rename(tmp, final) == 0, final, NULL, "rename failed: %s", strerror(errno));
    fsync_path(dir, true);
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
    mg_h5_quiet();
    mg_mkdir_p(dir);
    char name[64], tmp[1100], final[1100];
    snprintf(name, sizeof name, "ckpt_%09ld.h5", c->step);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(final, sizeof final, "%s/%s", dir, name);

    hid_t f = H5_OK(H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp, "/");
    hid_t meta = H5_OK(H5Gcreate2(f, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), tmp, "/meta");
    write_attr_str(meta, tmp, "format", FORMAT_NAME);
    write_attr_i64(meta, tmp, "format_version", MG_CKPT_FORMAT_VERSION);
    write_attr_i64(meta, tmp, "step", c->step);
    write_attr_i64(meta, tmp, "n_ranks", c->n_ranks);
    write_attr_i64(meta, tmp, "data_items", (int64_t)c->data_items);
    write_attr_i64(meta, tmp, "noise_items", (int64_t)c->noise_items);
    {
        size_t len = strlen(c->config_text);
        hid_t t = string_type(tmp, "/meta/config", len);
        hid_t space = H5_OK(H5Screate(H5S_SCALAR), tmp, "/meta/config");
        hid_t set = H5_OK(H5Dcreate2(meta, "config", t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), tmp,
                          "/meta/config");
        H5_OK(H5Dwrite(set, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->config_text), tmp, "/meta/config");
        H5_OK(H5Dclose(set), tmp, "/meta/config");
        H5_OK(H5Sclose(space), tmp, "/meta/config");
        H5_OK(H5Tclose(t), tmp, "/meta/config");
    }
    H5_OK(H5Gclose(meta), tmp, "/meta");
    write_net(f, tmp, "G", c->G, c->opt_g);
    write_net(f, tmp, "D", c->D, c->opt_d);
    {
        hid_t g = H5_OK(H5Gcreate2(f, "rng", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), tmp, "/rng");
        hsize_t dims[2] = {(hsize_t)c->n_ranks, MG_RNG_WORDS};
        hid_t space = H5_OK(H5Screate_simple(2, dims, NULL), tmp, "/rng/noise");
        hid_t set = H5_OK(H5Dcreate2(g, "noise", H5T_STD_U32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), tmp,
                          "/rng/noise");
        H5_OK(H5Dwrite(set, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->rng_words), tmp, "/rng/noise");
        H5_OK(H5Dclose(set), tmp, "/rng/noise");
        H5_OK(H5Sclose(space), tmp, "/rng/noise");
        H5_OK(H5Gclose(g), tmp, "/rng");
    }
    if (c->ema) {
        hid_t g = H5_OK(H5Gcreate2(f, "G_ema", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), tmp, "/G_ema");
        write_floats(g, tmp, "param", c->ema->param, c->ema->n_param);
        write_floats(g, tmp, "state", c->ema->state, c->ema->n_state);
        H5_OK(H5Gclose(g), tmp, "/G_ema");
    }
    if (c->has_loader_state)
        write_loader_state(f, tmp, c);
    H5_OK(H5Fflush(f, H5F_SCOPE_GLOBAL), tmp, "/");
    H5_OK(H5Fclose(f), tmp, "/");
    fsync_path(tmp, false);
    MG_CHECK(rename(tmp, final) == 0, final, NULL, "rename failed: %s", strerror(errno));
    fsync_path(dir, true);
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

static hid_t open_checked(const char *path)
{
    hid_t f = mg_h5_open_read(path, "checkpoint",
                              "the file is truncated or is not an HDF5 file; resume from an older checkpoint");
    htri_t has_meta = H5_OK(H5Lexists(f, "meta", H5P_DEFAULT), path, "/meta");
    htri_t has_format = has_meta > 0 ? H5_OK(H5Aexists_by_name(f, "meta", "format", H5P_DEFAULT), path, "/meta") : 0;
    MG_CHECK(has_format > 0, path, "this file was not written by mpigan train",
             "not an mpigan checkpoint (no /meta format attribute)");
    return f;
}

static int64_t read_attr_i64(hid_t f, const char *path, const char *obj, const char *name)
{
    char what[128];
    snprintf(what, sizeof what, "%s attribute %s", obj, name);
    MG_CHECK(H5_OK(H5Aexists_by_name(f, obj, name, H5P_DEFAULT), path, what) > 0, path,
             "the checkpoint is incomplete or foreign", "missing %s", what);
    hid_t a = H5_OK(H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT), path, what);
    int64_t v = 0;
    H5_OK(H5Aread(a, H5T_NATIVE_INT64, &v), path, what);
    H5_OK(H5Aclose(a), path, what);
    return v;
}

static void read_attr_str(hid_t f, const char *path, const char *obj, const char *name, char *out, size_t size)
{
    char what[128];
    snprintf(what, sizeof what, "%s attribute %s", obj, name);
    MG_CHECK(H5_OK(H5Aexists_by_name(f, obj, name, H5P_DEFAULT), path, what) > 0, path,
             "the checkpoint is incomplete or foreign", "missing %s", what);
    hid_t a = H5_OK(H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT), path, what);
    hid_t t = H5_OK(H5Aget_type(a), path, what);
    MG_CHECK(H5_OK(H5Tget_class(t), path, what) == H5T_STRING, path, NULL, "%s is not a string", what);
    size_t len = H5Tget_size(t);
    MG_CHECK(len > 0 && len < size, path, NULL, "%s has an unexpected length %zu", what, len);
    hid_t mem = string_type(path, what, len);
    memset(out, 0, size);
    H5_OK(H5Aread(a, mem, out), path, what);
    H5_OK(H5Tclose(mem), path, what);
    H5_OK(H5Tclose(t), path, what);
    H5_OK(H5Aclose(a), path, what);
}

/* Reads a 1-d float dataset that must hold exactly n values. */
static void read_floats(hid_t f, const char *path, const char *name, float *dst, size_t n)
{
    MG_CHECK(H5_OK(H5Lexists(f, name, H5P_DEFAULT), path, name) > 0, path, "the checkpoint is incomplete or foreign",
             "missing dataset %s", name);
    hid_t set = H5_OK(H5Dopen2(f, name, H5P_DEFAULT), path, name);
    hid_t space = H5_OK(H5Dget_space(set), path, name);
    hsize_t dims[2] = {0, 0};
    int rank = H5_OK(H5Sget_simple_extent_dims(space, dims, NULL), path, name);
    MG_CHECK(rank == 1 && dims[0] == n, path, "the checkpoint was written for other networks or optimizers",
             "dataset %s holds %llu values, expected %zu", name, rank == 1 ? (unsigned long long)dims[0] : 0ull, n);
    if (n)
        H5_OK(H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst), path, name);
    H5_OK(H5Sclose(space), path, name);
    H5_OK(H5Dclose(set), path, name);
}

static void check_format(hid_t f, const char *path)
{
    char format[64];
    read_attr_str(f, path, "meta", "format", format, sizeof format);
    MG_CHECK(!strcmp(format, FORMAT_NAME), path, "this file was not written by mpigan train",
             "format is '%s', not '%s'", format, FORMAT_NAME);
    int64_t version = read_attr_i64(f, path, "meta", "format_version");
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
    read_attr_str(f, path, group, "opt_kind", kind, sizeof kind);
    MG_CHECK(!strcmp(kind, mg_opt_kind_name(opt->cfg.kind)), path, "resume with the optimizer the run started with",
             "%s was trained with %s, the config asks for %s", group, kind, mg_opt_kind_name(opt->cfg.kind));
    const char *slots[2] = {"opt_m", "opt_v"};
    float *bufs[2] = {opt->m, opt->v};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s/%s", group, slots[i]);
        bool in_file = H5_OK(H5Lexists(f, name, H5P_DEFAULT), path, name) > 0;
        MG_CHECK(in_file == (bufs[i] != NULL), path, "resume with the optimizer settings the run started with",
                 "%s %s in the file but %s by the config", name, in_file ? "present" : "absent",
                 bufs[i] ? "needed" : "not used");
        if (bufs[i])
            read_floats(f, path, name, bufs[i], opt->n);
    }
    opt->step = (long)read_attr_i64(f, path, group, "opt_step");
}

static char *read_config_text(hid_t f, const char *path)
{
    const char *name = "meta/config";
    MG_CHECK(H5_OK(H5Lexists(f, name, H5P_DEFAULT), path, name) > 0, path, "the checkpoint is incomplete",
             "missing dataset /%s", name);
    hid_t set = H5_OK(H5Dopen2(f, name, H5P_DEFAULT), path, name);
    hid_t t = H5_OK(H5Dget_type(set), path, name);
    size_t len = H5Tget_size(t);
    MG_CHECK(H5_OK(H5Tget_class(t), path, name) == H5T_STRING && len > 0, path, NULL, "/%s is not a string", name);
    char *text = mg_alloc(len + 1, "checkpoint config");
    hid_t mem = string_type(path, name, len);
    H5_OK(H5Dread(set, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, text), path, name);
    text[len] = 0;
    H5_OK(H5Tclose(mem), path, name);
    H5_OK(H5Tclose(t), path, name);
    H5_OK(H5Dclose(set), path, name);
    return text;
}

/* /loader/state when the file has it (HDF5 data); has_loader_state says whether it did. */
static void read_loader_state(hid_t f, const char *path, mg_ckpt *c)
{
    const char *name = "loader/state";
    c->has_loader_state = H5_OK(H5Lexists(f, "loader", H5P_DEFAULT), path, "/loader") > 0;
    if (!c->has_loader_state)
        return;
    MG_CHECK(H5_OK(H5Lexists(f, name, H5P_DEFAULT), path, name) > 0, path, "the checkpoint is incomplete",
             "missing dataset /%s", name);
    hid_t set = H5_OK(H5Dopen2(f, name, H5P_DEFAULT), path, name);
    hid_t space = H5_OK(H5Dget_space(set), path, name);
    hsize_t dims[H5S_MAX_RANK] = {0};
    int rank = H5_OK(H5Sget_simple_extent_dims(space, dims, NULL), path, name);
    MG_CHECK(rank == 1 && dims[0] == MG_LOADER_STATE_WORDS, path,
             "the checkpoint was written by another mpigan version",
             "/%s holds %llu words, this build's loader state has %zu", name,
             rank == 1 ? (unsigned long long)dims[0] : 0ull, (size_t)MG_LOADER_STATE_WORDS);
    H5_OK(H5Dread(set, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->loader_state), path, name);
    H5_OK(H5Sclose(space), path, name);
    H5_OK(H5Dclose(set), path, name);
    read_attr_str(f, path, name, "sampler", c->loader_sampler, sizeof c->loader_sampler);
}

void mg_ckpt_read(const char *path, mg_ckpt *c)
{
    hid_t f = open_checked(path);
    check_format(f, path);
    c->step = (long)read_attr_i64(f, path, "meta", "step");
    int n_ranks = (int)read_attr_i64(f, path, "meta", "n_ranks");
    MG_CHECK(n_ranks >= 1, path, NULL, "bad n_ranks %d", n_ranks);
    c->data_items = (uint64_t)read_attr_i64(f, path, "meta", "data_items");
    c->noise_items = (uint64_t)read_attr_i64(f, path, "meta", "noise_items");
    c->config_text = read_config_text(f, path);
    read_net(f, path, "G", c->G, c->opt_g);
    read_net(f, path, "D", c->D, c->opt_d);

    const char *name = "rng/noise";
    MG_CHECK(H5_OK(H5Lexists(f, "rng", H5P_DEFAULT), path, "/rng") > 0 &&
                 H5_OK(H5Lexists(f, name, H5P_DEFAULT), path, name) > 0,
             path, "the checkpoint is incomplete", "missing dataset /%s", name);
    hid_t set = H5_OK(H5Dopen2(f, name, H5P_DEFAULT), path, name);
    hid_t space = H5_OK(H5Dget_space(set), path, name);
    hsize_t dims[2] = {0, 0};
    int rank = H5_OK(H5Sget_simple_extent_dims(space, dims, NULL), path, name);
    MG_CHECK(rank == 2 && dims[0] == (hsize_t)n_ranks && dims[1] == MG_RNG_WORDS, path, NULL,
             "/%s has the wrong shape", name);
    if (!c->rng_words)
        c->rng_words = mg_alloc(sizeof(uint32_t) * (size_t)n_ranks * MG_RNG_WORDS, "checkpoint RNG states");
    H5_OK(H5Dread(set, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->rng_words), path, name);
    H5_OK(H5Sclose(space), path, name);
    H5_OK(H5Dclose(set), path, name);
    c->n_ranks = n_ranks;
    read_loader_state(f, path, c);
    c->has_ema = H5_OK(H5Lexists(f, "G_ema", H5P_DEFAULT), path, "/G_ema") > 0;
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
        *step = (long)read_attr_i64(f, path, "meta", "step");
    char *text = read_config_text(f, path);
    H5_OK(H5Fclose(f), path, "/");
    return text;
}

void mg_ckpt_read_net(const char *path, const char *which, mg_net *net)
{
    hid_t f = open_checked(path);
    check_format(f, path);
    bool ema = !strcmp(which, "G_ema");
    MG_CHECK(H5_OK(H5Lexists(f, which, H5P_DEFAULT), path, which) > 0, path,
             ema ? "the run trained without train.ema; drop --ema to use its generator" : "the checkpoint is incomplete",
             "no /%s group%s", which, ema ? " (no EMA generator)" : "");
    read_net(f, path, which, net, NULL);
    H5_OK(H5Fclose(f), path, "/");
}

bool mg_ckpt_has_net(const char *path, const char *which)
{
    hid_t f = open_checked(path);
    check_format(f, path);
    bool has = H5_OK(H5Lexists(f, which, H5P_DEFAULT), path, which) > 0;
    H5_OK(H5Fclose(f), path, "/");
    return has;
}

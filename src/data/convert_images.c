/* `mpigan data images`: a folder of JPEG/PNG files into one data file of S x S samples
 * (mg_convert_images.h). Rank 0 lists the folder once (sorted, so the order and the labels
 * do not depend on the rank count) and broadcasts the list; the ranks then read the headers
 * of their share to learn whether any image is colour (the file's C must be known before
 * it is created), and decode, crop and resize their share through the distributed writer. */
#include "mg_convert_images.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mg_convert_dist.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_h5schema.h"
#include "mg_image.h"

#define PATH_CAP 4096

/* A growing list of strings (and, for files, their labels). */
typedef struct {
    char **s;
    int32_t *label;
    int64_t n, cap;
} list;

static void list_push(list *l, const char *s, int32_t label)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 64;
        char **s2 = mg_alloc((size_t)cap * sizeof(char *), "file list");
        int32_t *l2 = mg_alloc((size_t)cap * sizeof(int32_t), "file list");
        if (l->n) {
            memcpy(s2, l->s, (size_t)l->n * sizeof(char *));
            memcpy(l2, l->label, (size_t)l->n * sizeof(int32_t));
        }
        mg_free(l->s);
        mg_free(l->label);
        l->s = s2;
        l->label = l2;
        l->cap = cap;
    }
    l->s[l->n] = mg_strdup(s);
    l->label[l->n++] = label;
}

static void list_free(list *l)
{
    for (int64_t i = 0; i < l->n; i++)
        mg_free(l->s[i]);
    mg_free(l->s);
    mg_free(l->label);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool join(char *out, const char *dir, const char *name)
{
    size_t n = strlen(dir);
    int k = snprintf(out, PATH_CAP, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
    return k > 0 && k < PATH_CAP;
}

/* The entries of dir that are image files (names) and folders; other regular files are
 * counted in *ignored. Hidden entries are skipped. False with err when dir cannot be read. */
static bool scan(const char *dir, list *images, list *dirs, int64_t *ignored, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open the folder: %s", dir, strerror(errno));
        return false;
    }
    for (struct dirent *e; (e = readdir(d));) {
        char full[PATH_CAP];
        struct stat st;
        if (e->d_name[0] == '.' || !join(full, dir, e->d_name) || stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (dirs)
                list_push(dirs, e->d_name, 0);
        } else if (S_ISREG(st.st_mode)) {
            if (mg_image_name_ok(e->d_name))
                list_push(images, e->d_name, 0);
            else
                (*ignored)++;
        }
    }
    closedir(d);
    if (images->n)
        qsort(images->s, (size_t)images->n, sizeof(char *), cmp_str);
    if (dirs && dirs->n)
        qsort(dirs->s, (size_t)dirs->n, sizeof(char *), cmp_str);
    return true;
}

/* Rank 0: the files (full paths) and their labels, the class names; "" in err when fine. */
static void list_input(const char *dir, list *files, list *classes, int64_t *ignored, char *err, size_t errlen)
{
    list top = {0}, dirs = {0};
    char path[PATH_CAP];
    if (!scan(dir, &top, &dirs, ignored, err, errlen))
        goto done;
    if (top.n > 0) {
        for (int64_t i = 0; i < top.n; i++)
            if (join(path, dir, top.s[i]))
                list_push(files, path, -1);
        goto done;
    }
    for (int64_t k = 0; k < dirs.n; k++) {
        list sub = {0};
        char subdir[PATH_CAP];
        if (!join(subdir, dir, dirs.s[k]) || !scan(subdir, &sub, NULL, ignored, err, errlen)) {
            list_free(&sub);
            goto done;
        }
        /* a folder without images is not a class */
        if (sub.n > 0) {
            for (int64_t i = 0; i < sub.n; i++)
                if (join(path, subdir, sub.s[i]))
                    list_push(files, path, (int32_t)classes->n);
            list_push(classes, dirs.s[k], 0);
        }
        list_free(&sub);
    }
    if (files->n == 0)
        snprintf(err, errlen, "%s: no JPEG or PNG images (*.jpg, *.jpeg, *.png) in the folder or its subfolders",
                 dir);
done:
    list_free(&top);
    list_free(&dirs);
}

/* Rank 0's lists to every rank: counts, then the strings back to back. */
static void share_lists(list *files, list *classes, int64_t *ignored)
{
    int64_t head[4] = {files->n, classes->n, *ignored, 0};
    char *blob = NULL;
    if (mg_dist_rank() == 0) {
        for (int64_t i = 0; i < files->n; i++)
            head[3] += (int64_t)strlen(files->s[i]) + 1;
        for (int64_t i = 0; i < classes->n; i++)
            head[3] += (int64_t)strlen(classes->s[i]) + 1;
        blob = mg_alloc((size_t)head[3] + 1, "file list");
        char *p = blob;
        for (int64_t i = 0; i < files->n; i++)
            p = stpcpy(p, files->s[i]) + 1;
        for (int64_t i = 0; i < classes->n; i++)
            p = stpcpy(p, classes->s[i]) + 1;
    }
    mg_dist_bcast(head, sizeof head);
    int32_t *labels = mg_alloc((size_t)(head[0] ? head[0] : 1) * sizeof(int32_t), "labels");
    if (mg_dist_rank() == 0)
        memcpy(labels, files->label, (size_t)head[0] * sizeof(int32_t));
    mg_dist_bcast(labels, (size_t)head[0] * sizeof(int32_t));
    if (mg_dist_rank() != 0) {
        blob = mg_alloc((size_t)head[3] + 1, "file list");
        mg_dist_bcast(blob, (size_t)head[3]);
        const char *p = blob;
        for (int64_t i = 0; i < head[0]; i++, p += strlen(p) + 1)
            list_push(files, p, labels[i]);
        for (int64_t i = 0; i < head[1]; i++, p += strlen(p) + 1)
            list_push(classes, p, 0);
        *ignored = head[2];
    } else {
        mg_dist_bcast(blob, (size_t)head[3]);
    }
    mg_free(labels);
    mg_free(blob);
}

typedef struct {
    const list *files;
    const mg_images_opts *opts;
    int channels;
    bool labels;
} images_ctx;

static bool make_image(void *vctx, int64_t item, uint8_t *sample, int32_t *label, int32_t *factors, char *why,
                       size_t why_size)
{
    (void)factors;
    const images_ctx *ctx = vctx;
    const char *path = ctx->files->s[item];
    const int s = ctx->opts->size;
    mg_image img;
    if (!mg_image_load(path, &img, why, why_size))
        return false;
    int x0 = 0, y0 = 0, rw = img.w, rh = img.h;
    if (ctx->opts->crop_center) {
        mg_crop_center(img.w, img.h, &x0, &y0, &rw);
        rh = rw;
    }
    if (rw < s || rh < s) {
        snprintf(why, why_size, "%s: the image is %d x %d, smaller than --size %d%s; images are not enlarged",
                 path, img.w, img.h, s, ctx->opts->crop_center ? " (its centred square)" : "");
        mg_image_free(&img);
        return false;
    }
    mg_resize_region(sample, ctx->channels, s, s, img.px, img.w, img.h, img.c, x0, y0, rw, rh, ctx->opts->resize);
    if (label)
        *label = ctx->files->label[item];
    mg_image_free(&img);
    return true;
}

void mg_images_out_path(char *out, size_t size, const char *dir, const char *out_dir)
{
    char name[PATH_CAP];
    snprintf(name, sizeof name, "%s", dir);
    size_t n = strlen(name);
    while (n > 1 && name[n - 1] == '/')
        name[--n] = 0;
    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    char resolved[PATH_MAX];
    if ((!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) && realpath(dir, resolved)) {
        const char *b = strrchr(resolved, '/');
        snprintf(name, sizeof name, "%s", b ? b + 1 : resolved);
        base = name;
    }
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0)
        base = "images";
    size_t m = strlen(out_dir);
    snprintf(out, size, "%s%s%s.h5", out_dir, m && out_dir[m - 1] == '/' ? "" : "/", base);
}

/* Rank 0: makes out_dir if missing (one level); "" in err when it is there. */
static void make_out_dir(const char *out_dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(out_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            snprintf(err, errlen, "%s: not a directory (--out names the folder the output goes into)", out_dir);
    } else if (mkdir(out_dir, 0777) != 0) {
        snprintf(err, errlen, "%s: cannot create the output folder: %s", out_dir, strerror(errno));
    }
}

void mg_convert_images(const char *dir, const char *out_dir, const mg_images_opts *opts, mg_images_result *res)
{
    memset(res, 0, sizeof *res);
    MG_CHECK(opts->size >= 1 && opts->size <= 4096, "--size", NULL, "%d is not in 1..4096", opts->size);
    list files = {0}, classes = {0};
    int64_t ignored = 0;
    char err[1024] = "";
    mg_images_out_path(res->out_path, sizeof res->out_path, dir, out_dir);
    if (mg_dist_rank() == 0) {
        list_input(dir, &files, &classes, &ignored, err, sizeof err);
        if (!err[0])
            make_out_dir(out_dir, err, sizeof err);
    }
    mg_convert_agree(err, "give a folder of images, or one subfolder of images per class");
    share_lists(&files, &classes, &ignored);

    /* C: 3 when any image is colour. Headers this rank cannot read count as grey here;
     * the conversion reports them. */
    int channels = 1;
    if (!opts->grey) {
        bool colour = false;
        char why[512];
        for (int64_t i = mg_dist_rank(); i < files.n && !colour; i += mg_dist_size()) {
            int w, h, c;
            colour = mg_image_probe(files.s[i], &w, &h, &c, why, sizeof why) && c == 3;
        }
        channels = mg_dist_any(colour) ? 3 : 1;
    }

    mg_dist_write_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.info.kind = MG_DATA_IMAGES;
    spec.info.c = channels;
    spec.info.h = spec.info.w = opts->size;
    spec.info.has_labels = classes.n > 0;
    spec.info.value_range[1] = 255;
    snprintf(spec.info.source, sizeof spec.info.source,
             "%lld images from %.300s, %s, resized to %d x %d (%s), converted by `mpigan data images`",
             (long long)files.n, dir, opts->crop_center ? "centred square crop" : "uncropped", opts->size,
             opts->size, opts->resize == MG_RESIZE_AREA ? "area" : "bilinear");
    if (classes.n > 0)
        mg_data_info_set_classes(&spec.info, (int)classes.n, (const char *const *)classes.s);
    spec.n_items = files.n;
    spec.skip_bad = opts->skip_bad;
    spec.quiet = opts->quiet;
    images_ctx ctx = {&files, opts, channels, classes.n > 0};
    spec.make = make_image;
    spec.ctx = &ctx;
    mg_dist_write_result wr;
    mg_convert_dist_write(res->out_path, &spec, &wr);
    res->n_written = wr.n_written;
    res->n_bad = wr.n_bad;
    res->n_ignored = ignored;
    res->channels = channels;
    res->n_classes = (int)classes.n;
    snprintf(res->first_bad, sizeof res->first_bad, "%s", wr.first_bad);
    mg_data_info_free(&spec.info);
    list_free(&files);
    list_free(&classes);
}

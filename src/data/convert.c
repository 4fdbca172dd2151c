/* Converters into the HDF5 data format: Fashion-MNIST IDX.gz (zlib), 2-D Gaussian
 * mixtures (Philox), and folders of PNG images (decoded by image.c). See mg_convert.h.
 *
 * Every converter runs as a "job": it writes a temporary file next to the output and
 * renames it at the end. While a job runs, a fatal-error handler is stacked in front of
 * the current one that closes what the job opened, frees what it allocated and removes the
 * temporary file before passing the message on, so any error, wherever it is raised
 * (zlib, libpng, HDF5 writer), leaves nothing under the output's final name. */
#include "mg_convert.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mg_error.h"
#include "mg_image.h"
#include "mg_rng.h"
#include "mg_util.h"

#define PATH_CAP 4096
#define MAX_JOB_BUFS 8
#define WRITE_BYTES ((int64_t)4 << 20) /* samples buffered per HDF5 write */

/* ------------------------------------------------------------------ the job */

static struct {
    int active;
    char tmp[PATH_CAP];
    mg_h5_writer *w;
    gzFile gz[2];
    void *bufs[MAX_JOB_BUFS];
    char **names;        /* a file list */
    int n_names;
    mg_data_info *info;  /* class names */
    mg_fatal_handler prev;
} job;

static void job_release(void)
{
    for (int i = 0; i < 2; i++)
        if (job.gz[i]) {
            gzclose(job.gz[i]);
            job.gz[i] = NULL;
        }
    for (int i = 0; i < MAX_JOB_BUFS; i++) {
        mg_free(job.bufs[i]);
        job.bufs[i] = NULL;
    }
    for (int i = 0; i < job.n_names; i++)
        mg_free(job.names[i]);
    mg_free(job.names);
    job.names = NULL;
    job.n_names = 0;
    if (job.info)
        mg_data_info_free(job.info);
    job.info = NULL;
}

static void job_handler(const char *message)
{
    mg_h5_writer_abandon(job.w);
    job.w = NULL;
    if (job.tmp[0])
        unlink(job.tmp);
    job.tmp[0] = 0;
    job_release();
    job.active = 0;
    mg_fatal_handler prev = job.prev;
    mg_set_fatal_handler(prev);
    prev(message);
}

static void job_begin(const char *final_path)
{
    MG_CHECK(!job.active, final_path, NULL, "a conversion is already running");
    MG_CHECK(strlen(final_path) + 32 < PATH_CAP, final_path, NULL, "output path too long");
    memset(&job, 0, sizeof job);
    mg_tmp_path(job.tmp, sizeof job.tmp, final_path);
    job.active = 1;
    job.prev = mg_set_fatal_handler(job_handler);
}

static void *job_alloc(size_t bytes, const char *what)
{
    for (int i = 0; i < MAX_JOB_BUFS; i++)
        if (!job.bufs[i])
            return job.bufs[i] = mg_alloc(bytes, what);
    MG_FAIL(what, NULL, "internal: too many conversion buffers");
}

static void job_commit(const char *final_path)
{
    mg_h5_writer_close(job.w);
    job.w = NULL;
    mg_file_commit(job.tmp, final_path);
    job.tmp[0] = 0;
    job_release();
    job.active = 0;
    mg_set_fatal_handler(job.prev);
}

static int64_t rows_per_write(const mg_data_info *info)
{
    int64_t r = WRITE_BYTES / mg_data_sample_bytes(info);
    if (r < 1)
        r = 1;
    return r < info->n ? r : info->n;
}

/* ------------------------------------------------------------------ Fashion-MNIST */

static const char *const fmnist_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                               "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Reads exactly n bytes; a short read is a truncated or corrupt file. */
static void gz_read_exact(gzFile g, const char *path, void *dst, size_t n, const char *what)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
        int got = gzread(g, (char *)dst + done, (unsigned)want);
        if (got <= 0) {
            int zerr = 0;
            const char *msg = gzerror(g, &zerr);
            if (got == 0 && (zerr == Z_OK || zerr == Z_BUF_ERROR))
                MG_FAIL(path, "the download or the package file is damaged; reinstall dataset-fashion-mnist",
                        "truncated: the %s stream ends in the %s after %zu of %zu bytes",
                        zerr == Z_BUF_ERROR ? "gzip" : "data", what, done, n);
            MG_FAIL(path, "the file is damaged; reinstall dataset-fashion-mnist", "gzip read error in the %s: %s",
                    what, zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        done += (size_t)got;
    }
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens an IDX.gz file and checks its magic number; returns the dimensions. */
static gzFile idx_open(int slot, const char *path, uint32_t magic, int ndims, uint32_t *dims)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        MG_FAIL(path, "install Debian's dataset-fashion-mnist or pass the folder holding the *-ubyte.gz files",
                "cannot open: %s", errno ? strerror(errno) : "out of memory");
    job.gz[slot] = g;
    gzbuffer(g, 1 << 17);
    unsigned char head[16];
    gz_read_exact(g, path, head, 4, "header");
    uint32_t m = be32(head);
    if (m != magic)
        MG_FAIL(path, "not an IDX file of the expected kind (train/t10k images-idx3 or labels-idx1)",
                "wrong magic number 0x%08x (expected 0x%08x: unsigned bytes, %d dimension%s)", m, magic, ndims,
                ndims > 1 ? "s" : "");
    gz_read_exact(g, path, head, 4 * (size_t)ndims, "header");
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(head + 4 * i);
    return g;
}

static void idx_expect_end(gzFile g, const char *path)
{
    unsigned char extra;
    int got = gzread(g, &extra, 1);
    int zerr = 0;
    const char *msg = gzerror(g, &zerr);
    if (got < 0 || (zerr != Z_OK && zerr != Z_STREAM_END))
        MG_FAIL(path, "the file is damaged", "gzip error at the end of the data: %s", msg);
    if (got > 0)
        MG_FAIL(path, "the file is damaged or not the expected IDX file", "holds more data than its header says");
}

static void convert_idx_pair(const char *images_gz, const char *labels_gz, const char *out_path, const char *split)
{
    job_begin(out_path);
    uint32_t idim[3] = {0}, ldim[1] = {0};
    gzFile gi = idx_open(0, images_gz, 0x00000803u, 3, idim);
    gzFile gl = idx_open(1, labels_gz, 0x00000801u, 1, ldim);
    if (idim[0] != ldim[0])
        MG_FAIL(images_gz, "the images and labels files do not belong together",
                "holds %u images but %s holds %u labels", idim[0], labels_gz, ldim[0]);
    if (idim[0] == 0 || idim[1] == 0 || idim[2] == 0 || idim[1] > 4096 || idim[2] > 4096)
        MG_FAIL(images_gz, "the file is damaged", "implausible dimensions %u x %u x %u", idim[0], idim[1], idim[2]);

    mg_data_info info = {0};
    job.info = &info;
    info.kind = MG_DATA_IMAGES;
    info.n = idim[0];
    info.c = 1;
    info.h = (int)idim[1];
    info.w = (int)idim[2];
    info.has_labels = true;
    info.value_range[0] = 0;
    info.value_range[1] = 255;
    snprintf(info.split, sizeof info.split, "%s", split);
    snprintf(info.source, sizeof info.source,
             "Fashion-MNIST (Xiao, Rasul and Vollgraf 2017), %s split, converted by `mpigan data fmnist` from %.200s",
             split, images_gz);
    mg_data_info_set_classes(&info, 10, fmnist_classes);
    job.w = mg_h5_create(job.tmp, &info, NULL);

    int64_t per = rows_per_write(&info), sb = mg_data_sample_bytes(&info);
    unsigned char *pix = job_alloc((size_t)(per * sb), "image buffer");
    unsigned char *lab8 = job_alloc((size_t)per, "label buffer");
    int32_t *lab = job_alloc((size_t)per * sizeof(int32_t), "label buffer");
    for (int64_t start = 0; start < info.n; start += per) {
        int64_t k = info.n - start < per ? info.n - start : per;
        gz_read_exact(gi, images_gz, pix, (size_t)(k * sb), "pixel data");
        gz_read_exact(gl, labels_gz, lab8, (size_t)k, "label data");
        for (int64_t i = 0; i < k; i++) {
            if (lab8[i] > 9)
                MG_FAIL(labels_gz, "the file is damaged", "label %u of sample %lld is not a class 0..9", lab8[i],
                        (long long)(start + i));
            lab[i] = lab8[i];
        }
        mg_h5_write_rows(job.w, start, k, pix, lab);
    }
    idx_expect_end(gi, images_gz);
    idx_expect_end(gl, labels_gz);
    job_commit(out_path);
    mg_data_info_free(&info);
}

static void join_path(char *out, const char *dir, const char *name)
{
    MG_CHECK(strlen(dir) + strlen(name) + 2 < PATH_CAP, dir, NULL, "path too long");
    size_t n = strlen(dir);
    snprintf(out, PATH_CAP, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

void mg_convert_fmnist(const char *idx_dir, const char *out_dir)
{
    static const char *const parts[2][4] = {
        {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", MG_FMNIST_TRAIN_FILE, "train"},
        {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", MG_FMNIST_TEST_FILE, "test"}};
    struct stat st;
    /* Missing inputs are reported before anything (the output folder) is created. */
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++) {
            char in[PATH_CAP];
            join_path(in, idx_dir, parts[p][k]);
            if (stat(in, &st) != 0)
                MG_FAIL(in, "install Debian's dataset-fashion-mnist or pass the folder holding the *-ubyte.gz files",
                        "cannot open: %s", strerror(errno));
        }
    if (stat(out_dir, &st) != 0) {
        if (mkdir(out_dir, 0777) != 0)
            MG_FAIL(out_dir, "create the parent directory first", "cannot create the output directory: %s",
                    strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        MG_FAIL(out_dir, "give a directory for the two output files", "not a directory");
    }
    for (int p = 0; p < 2; p++) {
        char img[PATH_CAP], lab[PATH_CAP], out[PATH_CAP];
        join_path(img, idx_dir, parts[p][0]);
        join_path(lab, idx_dir, parts[p][1]);
        join_path(out, out_dir, parts[p][2]);
        convert_idx_pair(img, lab, out, parts[p][3]);
    }
}

/* ------------------------------------------------------------------ mixtures */

void mg_mixture_params(mg_mixture_info *mix, mg_mixture_kind kind, double sigma)
{
    memset(mix, 0, sizeof *mix);
    if (kind == MG_MIXTURE_RING) {
        snprintf(mix->generator, sizeof mix->generator, "ring");
        mix->n_modes = 8;
        for (int k = 0; k < 8; k++) {
            double a = 2.0 * M_PI * k / 8.0;
            mix->means[k][0] = cos(a);
            mix->means[k][1] = sin(a);
        }
        mix->sigma = 0.01;
    } else {
        snprintf(mix->generator, sizeof mix->generator, "grid");
        mix->n_modes = 25;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++) {
                mix->means[i * 5 + j][0] = -4.0 + 2.0 * i;
                mix->means[i * 5 + j][1] = -4.0 + 2.0 * j;
            }
        mix->sigma = 0.05;
    }
    if (sigma > 0)
        mix->sigma = sigma;
}

void mg_convert_mixture(const char *out_path, mg_mixture_kind kind, int64_t n, uint64_t seed, double sigma)
{
    MG_CHECK(n >= 1, out_path, "give a positive number of samples", "cannot write %lld samples", (long long)n);
    MG_CHECK(sigma >= 0 && isfinite(sigma), out_path, NULL, "sigma %g must be a finite value >= 0", sigma);
    mg_mixture_info mix;
    mg_mixture_params(&mix, kind, sigma);
    mix.seed = seed;
    job_begin(out_path);
    mg_data_info info = {0};
    info.kind = MG_DATA_VECTORS;
    info.n = n;
    info.c = 2;
    info.h = info.w = 1;
    info.has_labels = true;
    snprintf(info.source, sizeof info.source,
             "synthetic 2-D mixture of %d Gaussians (%s), sigma %g, seed %llu, written by `mpigan data mixture`; "
             "labels are mode indices",
             mix.n_modes, mix.generator, mix.sigma, (unsigned long long)seed);
    job.w = mg_h5_create(job.tmp, &info, &mix);

    mg_rng rng;
    mg_rng_init(&rng, seed, mg_rng_stream_id(MG_STREAM_DATA, 0));
    int64_t per = rows_per_write(&info);
    float *x = job_alloc((size_t)per * 2 * sizeof(float), "sample buffer");
    int32_t *lab = job_alloc((size_t)per * sizeof(int32_t), "label buffer");
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t start = 0; start < n; start += per) {
        int64_t k = n - start < per ? n - start : per;
        for (int64_t i = 0; i < k; i++) {
            int m = (int)mg_rng_below(&rng, (uint64_t)mix.n_modes);
            float zx = mg_rng_normal(&rng), zy = mg_rng_normal(&rng);
            x[2 * i] = (float)(mix.means[m][0] + mix.sigma * zx);
            x[2 * i + 1] = (float)(mix.means[m][1] + mix.sigma * zy);
            lab[i] = m;
            for (int j = 0; j < 2; j++) {
                lo = x[2 * i + j] < lo ? x[2 * i + j] : lo;
                hi = x[2 * i + j] > hi ? x[2 * i + j] : hi;
            }
        }
        mg_h5_write_rows(job.w, start, k, x, lab);
    }
    mg_h5_writer_set_range(job.w, lo, hi);
    job_commit(out_path);
}

/* ------------------------------------------------------------------ PNG folders */

typedef struct { int w, h, c; } png_dims;

/* Reads a PNG through the converters' decoder (mg_image.h); checks it against *want (when
 * want->w > 0) or fills *want; writes the pixels as C x H x W into chw (when not NULL;
 * otherwise only the header is read). */
static void read_png(const char *path, const char *first, png_dims *want, unsigned char *chw)
{
    char why[512];
    mg_image img;
    memset(&img, 0, sizeof img);
    bool ok = chw ? mg_image_load(path, &img, why, sizeof why)
                  : mg_image_probe(path, &img.w, &img.h, &img.c, why, sizeof why);
    if (!ok)
        MG_FAIL(NULL, "every file ending in .png must be a readable image", "%s", why);
    png_dims d = {img.w, img.h, img.c};
    if (want->w <= 0) {
        *want = d;
    } else if (d.w != want->w || d.h != want->h || d.c != want->c) {
        mg_image_free(&img);
        MG_FAIL(path, "all images of a data set must have one size and colour type; resize them first "
                "(mpigan data images)",
                "is %d x %d with %d channel%s but %s is %d x %d with %d channel%s", d.w, d.h, d.c,
                d.c > 1 ? "s" : "", first, want->w, want->h, want->c, want->c > 1 ? "s" : "");
    }
    if (chw)
        for (int ch = 0; ch < d.c; ch++)
            for (size_t p = 0; p < (size_t)d.w * d.h; p++)
                chw[(size_t)ch * d.w * d.h + p] = img.px[p * d.c + ch];
    mg_image_free(&img);
}

static int has_png_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Names in dir that are regular files ending in .png (want_dirs 0) or subdirectories
 * (want_dirs 1), sorted. Appended to *list (a job-owned or caller-owned array). */
static char **list_dir(const char *dir, int want_dirs, int *count)
{
    DIR *d = opendir(dir);
    if (!d)
        MG_FAIL(dir, "give a folder of PNG images", "cannot open the folder: %s", strerror(errno));
    int cap = 64, n = 0;
    char **names = mg_alloc((size_t)cap * sizeof(char *), "file list");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char full[PATH_CAP];
        struct stat st;
        if (strlen(dir) + strlen(e->d_name) + 2 >= PATH_CAP)
            continue;
        join_path(full, dir, e->d_name);
        if (stat(full, &st) != 0)
            continue;
        if (want_dirs ? !S_ISDIR(st.st_mode) : !(S_ISREG(st.st_mode) && has_png_suffix(e->d_name)))
            continue;
        if (n == cap) {
            char **bigger = mg_alloc((size_t)cap * 2 * sizeof(char *), "file list");
            memcpy(bigger, names, (size_t)n * sizeof(char *));
            mg_free(names);
            names = bigger;
            cap *= 2;
        }
        names[n++] = mg_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), cmp_str);
    *count = n;
    return names;
}

static void free_list(char **names, int n)
{
    for (int i = 0; i < n; i++)
        mg_free(names[i]);
    mg_free(names);
}

void mg_convert_png_dir(const char *dir, const char *out_path)
{
    job_begin(out_path);
    mg_data_info info = {0};
    job.info = &info;
    int n_top = 0;
    char **top = list_dir(dir, 0, &n_top);
    job.names = top;
    job.n_names = n_top;

    /* Files as full paths, with labels when the folder is one subdirectory per class. */
    int n_files = 0, cap = 0;
    char **files = NULL;
    int32_t *labels = NULL;
    if (n_top > 0) {
        files = top;
        n_files = n_top;
        for (int i = 0; i < n_files; i++) {
            char full[PATH_CAP];
            join_path(full, dir, files[i]);
            mg_free(files[i]);
            files[i] = mg_strdup(full);
        }
    } else {
        int n_classes = 0;
        char **classes = list_dir(dir, 1, &n_classes);
        job.names = classes;
        job.n_names = n_classes;
        mg_free(top);
        for (int k = 0; k < n_classes; k++) {
            char sub[PATH_CAP];
            join_path(sub, dir, classes[k]);
            int m = 0;
            char **in = list_dir(sub, 0, &m);
            if (n_files + m > cap) {
                int ncap = (n_files + m) * 2 + 16;
                char **bf = mg_alloc((size_t)ncap * sizeof(char *), "file list");
                int32_t *bl = mg_alloc((size_t)ncap * sizeof(int32_t), "label list");
                if (n_files) {
                    memcpy(bf, files, (size_t)n_files * sizeof(char *));
                    memcpy(bl, labels, (size_t)n_files * sizeof(int32_t));
                }
                mg_free(files);
                mg_free(labels);
                files = bf;
                labels = bl;
                cap = ncap;
            }
            for (int i = 0; i < m; i++) {
                char full[PATH_CAP];
                join_path(full, sub, in[i]);
                files[n_files] = mg_strdup(full);
                labels[n_files++] = k;
            }
            free_list(in, m);
        }
        /* Classes without images are not classes. */
        int kept = 0;
        for (int k = 0; k < n_classes; k++) {
            int used = 0;
            for (int i = 0; i < n_files && !used; i++)
                used = labels[i] == k;
            if (!used) {
                mg_free(classes[k]);
                classes[k] = NULL;
                continue;
            }
            for (int i = 0; i < n_files; i++)
                if (labels[i] == k)
                    labels[i] = kept;
            char *name = classes[k];
            classes[k] = NULL;
            classes[kept++] = name;
        }
        if (n_files > 0)
            mg_data_info_set_classes(&info, kept, (const char *const *)classes);
        for (int k = 0; k < n_classes; k++)
            mg_free(classes[k]);
        mg_free(classes);
        job.names = files;
        job.n_names = n_files;
        job.bufs[MAX_JOB_BUFS - 1] = labels;
    }
    if (n_files == 0)
        MG_FAIL(dir, "put the images (*.png) in the folder, or one subfolder of images per class",
                "no PNG files found");

    png_dims d = {0, 0, 0};
    read_png(files[0], files[0], &d, NULL);
    info.kind = MG_DATA_IMAGES;
    info.n = n_files;
    info.c = d.c;
    info.h = d.h;
    info.w = d.w;
    info.has_labels = labels != NULL;
    info.value_range[0] = 0;
    info.value_range[1] = 255;
    snprintf(info.source, sizeof info.source, "PNG images from %.400s, converted by `mpigan data png`", dir);
    job.w = mg_h5_create(job.tmp, &info, NULL);

    int64_t per = rows_per_write(&info), sb = mg_data_sample_bytes(&info);
    unsigned char *pix = job_alloc((size_t)(per * sb), "image buffer");
    for (int64_t start = 0; start < info.n; start += per) {
        int64_t k = info.n - start < per ? info.n - start : per;
        for (int64_t i = 0; i < k; i++)
            read_png(files[start + i], files[0], &d, pix + i * sb);
        mg_h5_write_rows(job.w, start, k, pix, labels ? labels + start : NULL);
    }
    job_commit(out_path);
    mg_data_info_free(&info);
}

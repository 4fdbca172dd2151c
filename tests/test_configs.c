/* Every config in configs/ loads, builds its networks and trains two steps on 2 ranks, so
 * that a config users copy cannot rot unnoticed. Each runs as shipped except for what a
 * test must change, the way a user would with --set: run_dir, steps, batch, intervals,
 * and for the Fashion-MNIST configs data paths pointing at a small file of the same
 * format that this test makes itself (IDX files written here, converted by
 * `mpigan data fmnist`'s converter), and for the colour configs a small shapes set (the
 * writer of `mpigan data shapes`, with its factors) and a 3x32x32 labelled stand-in for
 * CIFAR-10 written here in the data format; the colour GANs
 * also train with every width divided by 8 (their full widths are only built, not
 * trained, to keep the suite short). The classifier trained from each classifier config
 * is the extractor of its GAN configs' evaluation during training; the factor classifier
 * config, trained once per shapes factor, gives shapes_dcgan64's factor coverage.
 * A config added to configs/ needs its test here: test_every_config_has_a_test fails until
 * it is in the list `covered`.
 * mpirun-np: 2 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "mg_cfg_override.h"
#include "mg_classifier.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_h5schema.h"
#include "mg_rng.h"
#include "mg_shapes.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_toy.h"
#include "mg_train.h"

#define N_TRAIN 192 /* the evaluation needs more real samples than its 128 features */
#define N_TEST 40

static char base[256], train_h5[320], test_h5[320], extractor[320];
/* the colour stand-ins: shapes (3x64x64, 4 classes) and CIFAR-10 (3x32x32, 10 classes) */
static char shapes_train[320], shapes_test[320], shapes_extractor[320];
static char cifar_train[320], cifar_test[320], cifar_extractor[320];
/* the shapes factor classifiers (eval.coverage of shapes_dcgan64), in the factors' order */
static char factor_extractor[MG_SHAPES_N_FACTORS][320];

/* An IDX file (gzip) as Fashion-MNIST ships it: magic 0x000008NN (unsigned bytes, NN
 * dimensions), big-endian 32-bit sizes, then the bytes. */
static void write_idx(const char *path, const int *dims, int n_dims, const unsigned char *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    unsigned char hdr[4 + 4 * 3] = {0, 0, 8, (unsigned char)n_dims};
    for (int d = 0; d < n_dims; d++) {
        hdr[4 + 4 * d] = (unsigned char)(dims[d] >> 24);
        hdr[5 + 4 * d] = (unsigned char)(dims[d] >> 16);
        hdr[6 + 4 * d] = (unsigned char)(dims[d] >> 8);
        hdr[7 + 4 * d] = (unsigned char)dims[d];
    }
    assert_int_equal(gzwrite(g, hdr, (unsigned)(4 + 4 * n_dims)), 4 + 4 * n_dims);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

/* n 28x28 images: class k is a bright horizontal band at rows 2k..2k+7 over noise. */
static void write_split(const char *dir, const char *prefix, int n, unsigned seed)
{
    unsigned char *img = malloc((size_t)n * 784), *lab = malloc((size_t)n);
    assert_non_null(img);
    assert_non_null(lab);
    unsigned s = seed;
    for (int i = 0; i < n; i++) {
        lab[i] = (unsigned char)(i % 10);
        for (int p = 0; p < 784; p++) {
            s = s * 1103515245u + 12345u;
            int row = p / 28, noise = (int)((s >> 16) % 64);
            img[(size_t)i * 784 + p] = (unsigned char)(row >= 2 * lab[i] && row < 2 * lab[i] + 8 ? 190 + noise : noise);
        }
    }
    char path[400];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    write_idx(path, (int[]){n, 28, 28}, 3, img, (size_t)n * 784);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    write_idx(path, (int[]){n}, 1, lab, (size_t)n);
    free(img);
    free(lab);
}

/* n side x side RGB images of K classes in the data format: class k is a block of its own
 * colour at its own place over dim noise. */
static void write_rgb(const char *path, int side, int K, int n, uint64_t seed)
{
    const size_t plane = (size_t)side * side, size = 3 * plane;
    unsigned char *x = malloc((size_t)n * size);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    assert_non_null(x);
    assert_non_null(y);
    mg_rng r;
    mg_rng_init(&r, seed, mg_rng_stream_id(MG_STREAM_TEST, 0));
    const int b = side / 4;
    for (int i = 0; i < n; i++) {
        const int k = i % K;
        y[i] = k;
        unsigned char *img = x + (size_t)i * size;
        for (size_t p = 0; p < size; p++)
            img[p] = (unsigned char)mg_rng_below(&r, 64);
        const int oy = (k % 3) * b + (int)mg_rng_below(&r, 2), ox = (k / 3 % 3) * b + (int)mg_rng_below(&r, 2);
        for (int ch = 0; ch < 3; ch++)
            for (int a = 0; a < b; a++)
                for (int c = 0; c < b; c++)
                    img[(size_t)ch * plane + (size_t)(oy + a) * side + ox + c] = (unsigned char)(80 + 50 * ((k + ch) % 4));
    }
    mg_test_write_images(path, 3, side, n, x, y, "test_configs colour stand-in");
    free(x);
    free(y);
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(base, sizeof base, "configs");
    snprintf(train_h5, sizeof train_h5, "%s/%s", base, MG_FMNIST_TRAIN_FILE);
    snprintf(test_h5, sizeof test_h5, "%s/%s", base, MG_FMNIST_TEST_FILE);
    snprintf(extractor, sizeof extractor, "%s/classifier/classifier.h5", base);
    snprintf(shapes_train, sizeof shapes_train, "%s/shapes-train.h5", base);
    snprintf(shapes_test, sizeof shapes_test, "%s/shapes-test.h5", base);
    snprintf(shapes_extractor, sizeof shapes_extractor, "%s/classifier-shapes/classifier.h5", base);
    snprintf(cifar_train, sizeof cifar_train, "%s/cifar10-train.h5", base);
    snprintf(cifar_test, sizeof cifar_test, "%s/cifar10-test.h5", base);
    snprintf(cifar_extractor, sizeof cifar_extractor, "%s/classifier-cifar10/classifier.h5", base);
    for (int f = 0; f < MG_SHAPES_N_FACTORS; f++)
        snprintf(factor_extractor[f], sizeof factor_extractor[f], "%s/classifier-shapes-%s/classifier.h5", base,
                 mg_shapes_factor_names[f]);
    mg_shapes_write(shapes_train, N_TRAIN, 3, MG_SHAPES_TRAIN); /* collective: every rank renders */
    mg_shapes_write(shapes_test, N_TEST, 3, MG_SHAPES_TEST);
    if (mg_dist_rank() == 0) {
        char idx[300];
        snprintf(idx, sizeof idx, "%s/idx", base);
        assert_int_equal(mkdir(idx, 0777), 0);
        write_split(idx, "train", N_TRAIN, 1);
        write_split(idx, "t10k", N_TEST, 2);
        mg_convert_fmnist(idx, base);
        write_rgb(cifar_train, 32, 10, N_TRAIN, 5);
        write_rgb(cifar_test, 32, 10, N_TEST, 6);
    }
    mg_dist_barrier();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(base);
    return 0;
}

/* The config's file, with the "key=value" overrides of the NULL-terminated list. */
static mg_cfg *load(const char *name, ...)
{
    char path[300];
    snprintf(path, sizeof path, "configs/%s", name);
    mg_cfg *cfg = mg_cfg_load_file(path);
    va_list ap;
    va_start(ap, name);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        mg_cfg_override(cfg, s);
    va_end(ap);
    return cfg;
}

/* Whether run_dir/metrics.jsonl holds an evaluation line with both strings. */
static bool eval_line_has(const char *run_dir, const char *a, const char *b)
{
    char path[500], line[16384];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "\"eval\": {") && strstr(line, a) && strstr(line, b);
    if (f)
        fclose(f);
    return found;
}

/* Whether run_dir/metrics.jsonl holds an evaluation's line. */
static bool has_eval_line(const char *run_dir)
{
    char path[500], line[8192];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "\"eval\": {") != NULL;
    if (f)
        fclose(f);
    return found;
}

/* Trains configs/<name> for 2 steps at a small batch, with the extra overrides (ap); the
 * run must complete with finite losses and identical replicas, and leave its final
 * checkpoint and, when the config evaluates, an evaluation line (features from ex). */
static void train_gan_ap(const char *name, const char *ex_path, va_list ap)
{
    char run_dir[400], set[500];
    snprintf(run_dir, sizeof run_dir, "%s/%s", base, name);
    mg_cfg *cfg = load(name, "train.steps=2", "train.batch=16", "train.log_interval=1", NULL);
    snprintf(set, sizeof set, "run_dir=%s", run_dir);
    mg_cfg_override(cfg, set);
    /* a config that evaluates during training does so at the last step, with the extractor
     * test_classifier trained and sizes that fit the small file */
    bool evaluates = mg_cfg_present(mg_cfg_get(mg_cfg_root(cfg), "eval"));
    if (evaluates) {
        char ex[500], cache[500];
        snprintf(ex, sizeof ex, "eval.extractor=%s", ex_path);
        snprintf(cache, sizeof cache, "eval.cache_dir=%s/eval_cache", base);
        static const char *const small[] = {"eval.interval=2", "eval.samples=140", "eval.batch=70", "eval.splits=2",
                                            "eval.kid_subsets=2", "eval.kid_subset_size=20", NULL};
        for (const char *const *o = small; *o; o++)
            mg_cfg_override(cfg, *o);
        mg_cfg_override(cfg, ex);
        mg_cfg_override(cfg, cache);
    }
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        mg_cfg_override(cfg, s);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (r.status != MG_TRAIN_DONE || r.step != 2)
        fail_msg("configs/%s: training ended with status %d after %ld steps", name, (int)r.status, r.step);
    if (!r.losses_finite)
        fail_msg("configs/%s: a loss was not finite", name);
    if (!r.replicas_equal)
        fail_msg("configs/%s: replicas differ", name);
    char ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/ckpt_000000002.h5", run_dir);
    struct stat st;
    if (mg_dist_any(stat(ckpt, &st) != 0))
        fail_msg("configs/%s: no final checkpoint %s", name, ckpt);
    if (evaluates && mg_dist_any(mg_dist_rank() == 0 && !has_eval_line(run_dir)))
        fail_msg("configs/%s: no evaluation in %s/metrics.jsonl", name, run_dir);
}

/* train_gan_ap with the Fashion-MNIST extractor and the overrides (NULL-terminated) */
static void train_gan(const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    train_gan_ap(name, extractor, ap);
    va_end(ap);
}

/* the same with the extractor ex_path */
static void train_gan_with(const char *name, const char *ex_path, ...)
{
    va_list ap;
    va_start(ap, ex_path);
    train_gan_ap(name, ex_path, ap);
    va_end(ap);
}

static void test_tiny(void **state) { (void)state; train_gan("tiny.yaml", NULL); }
static void test_ring8(void **state) { (void)state; train_gan("ring8.yaml", NULL); }
static void test_ring8_pac(void **state) { (void)state; train_gan("ring8_pac.yaml", NULL); }
static void test_ring8_paper(void **state) { (void)state; train_gan("ring8_paper.yaml", NULL); }
static void test_grid25(void **state) { (void)state; train_gan("grid25.yaml", NULL); }
static void test_grid25_pac(void **state) { (void)state; train_gan("grid25_pac.yaml", NULL); }
static void test_grid25_paper(void **state) { (void)state; train_gan("grid25_paper.yaml", NULL); }

/* configs/<name>: one epoch on the small files train and test, its model written to out,
 * the extractor the GAN configs of that data evaluate with, of `features` features;
 * extra1, extra2: more overrides (or NULL). */
static void train_classifier_set(const char *name, const char *train, const char *test, const char *out, int classes,
                                 int features, const char *extra1, const char *extra2)
{
    char data[400], test_set[400], out_set[400], path[300];
    snprintf(data, sizeof data, "data.path=%s", train);
    snprintf(test_set, sizeof test_set, "classifier.test_data=%s", test);
    snprintf(out_set, sizeof out_set, "classifier.out=%s", out);
    mg_cfg *cfg = load(name, data, test_set, out_set, "classifier.epochs=1", "classifier.batch=32",
                       "classifier.log_interval=1", extra1, extra2, NULL);
    snprintf(path, sizeof path, "configs/%s", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    /* the overrides that shape the network go into the model file, as `--set` would put
     * them, so the evaluation rebuilds the same network */
    char overrides[400];
    snprintf(overrides, sizeof overrides, "%s%s%s%s", extra1 ? extra1 : "", extra1 ? "\n" : "", extra2 ? extra2 : "",
             extra2 ? "\n" : "");
    mg_classifier_result r = mg_classifier_train(cfg, text, overrides, false);
    mg_cfg_free(cfg);
    assert_int_equal(r.steps, N_TRAIN / 32);
    assert_true(r.replicas_equal);
    assert_int_equal(r.n_classes, classes);
    assert_int_equal(r.feature_dim, features);
    struct stat st;
    if (mg_dist_any(stat(out, &st) != 0))
        fail_msg("configs/%s: no model file %s", name, out);
}

static void train_classifier(const char *name, const char *train, const char *test, const char *out, int classes)
{
    train_classifier_set(name, train, test, out, classes, 128, NULL, NULL);
}

static void test_classifier(void **state)
{
    (void)state;
    train_classifier("classifier.yaml", train_h5, test_h5, extractor, 10);
}

/* the colour classifiers on 3x64x64 (4 shape classes) and 3x32x32 (10 classes) stand-ins */
static void test_classifier_shapes(void **state)
{
    (void)state;
    train_classifier("classifier_shapes.yaml", shapes_train, shapes_test, shapes_extractor, 4);
}

/* the factor classifier config once per factor of the shapes set, as
 * tools/train_factor_classifiers.sh runs it: the factor and the last layer's size set */
static void test_classifier_shapes_factor(void **state)
{
    (void)state;
    for (int f = 0; f < MG_SHAPES_N_FACTORS; f++) {
        char factor[100], out[100];
        snprintf(factor, sizeof factor, "classifier.label.factor=%s", mg_shapes_factor_names[f]);
        snprintf(out, sizeof out, "model.layers[16].out=%d", (int)mg_shapes_factor_sizes[f]);
        train_classifier_set("classifier_shapes_factor.yaml", shapes_train, shapes_test, factor_extractor[f],
                             (int)mg_shapes_factor_sizes[f], 64, factor, out);
    }
}

static void test_classifier_cifar10(void **state)
{
    (void)state;
    train_classifier("classifier_cifar10.yaml", cifar_train, cifar_test, cifar_extractor, 10);
}

/* a Fashion-MNIST config on the small file with the overrides (NULL-terminated) */
static void train_fmnist(const char *name, const char *extra)
{
    char data[400];
    snprintf(data, sizeof data, "data.path=%s", train_h5);
    train_gan(name, data, "train.sample_interval=2", extra, NULL);
}

static void test_fmnist_dcgan(void **state) { (void)state; train_fmnist("fmnist_dcgan.yaml", NULL); }
static void test_fmnist_wgan(void **state) { (void)state; train_fmnist("fmnist_wgan.yaml", NULL); }
/* the DCGAN recipe with the other losses: only train.loss differs */
static void test_fmnist_hinge(void **state) { (void)state; train_fmnist("fmnist_hinge.yaml", NULL); }
static void test_fmnist_lsgan(void **state) { (void)state; train_fmnist("fmnist_lsgan.yaml", NULL); }
static void test_fmnist_minimax(void **state) { (void)state; train_fmnist("fmnist_minimax.yaml", NULL); }
/* class-conditional: the small file has labels and 10 class names; the evaluation draws
 * G's classes uniformly */
static void test_fmnist_cgan_sn(void **state) { (void)state; train_fmnist("fmnist_cgan_sn.yaml", NULL); }
/* its data.limit, scaled to the small file */
static void test_fmnist_diffaug(void **state) { (void)state; train_fmnist("fmnist_diffaug.yaml", "data.limit=64"); }

/* the penalty configs; r1_every 1 so that R1 runs in the 2 steps of the test */
static void test_fmnist_wgan_gp(void **state) { (void)state; train_fmnist("fmnist_wgan_gp.yaml", NULL); }
static void test_fmnist_dcgan_r1(void **state) { (void)state; train_fmnist("fmnist_dcgan_r1.yaml", "train.r1_every=1"); }

static void test_toy(void **state)
{
    (void)state;
    mg_cfg *cfg = load("toy.yaml", "toy.steps=2", "toy.log_every=1", NULL);
    mg_toy_result r = mg_toy_train(cfg, false);
    mg_cfg_free(cfg);
    assert_true(r.replicas_equal);
}

/* The colour GANs on their stand-ins, evaluated with the classifiers above, sample grids
 * on. Every width is divided by 8 through overrides (the shipped widths cost seconds per
 * step here); the layers, their kinds, shapes and every other key stay as shipped, and
 * test_colour_networks_as_shipped builds the full-width networks. */
static void test_shapes_dcgan64(void **state)
{
    (void)state;
    char data[400];
    snprintf(data, sizeof data, "data.path=%s", shapes_train);
    /* eval.coverage's 6 entries as shipped: every factor but the shape (factor 0, which the
     * extractor's own classes judge), in the factors' order */
    char cov[MG_SHAPES_N_FACTORS - 1][400];
    for (int f = 1; f < MG_SHAPES_N_FACTORS; f++)
        snprintf(cov[f - 1], sizeof cov[f - 1], "eval.coverage[%d]=%s", f - 1, factor_extractor[f]);
    train_gan_with("shapes_dcgan64.yaml", shapes_extractor, data, "train.sample_interval=2",
                   "generator.layers[0].out=1024", "generator.layers[3].shape[0]=64", "generator.layers[4].out=32",
                   "generator.layers[7].out=16", "generator.layers[10].out=8", "discriminator.layers[0].out=8",
                   "discriminator.layers[1].out=16", "discriminator.layers[4].out=32",
                   "discriminator.layers[7].out=64", cov[0], cov[1], cov[2], cov[3], cov[4], cov[5], NULL);
    char run_dir[400];
    snprintf(run_dir, sizeof run_dir, "%s/shapes_dcgan64.yaml", base);
    for (int f = 1; f < MG_SHAPES_N_FACTORS; f++) {
        char field[100];
        snprintf(field, sizeof field, "\"%s\": ", mg_shapes_factor_names[f]);
        if (mg_dist_any(mg_dist_rank() == 0 && !eval_line_has(run_dir, "\"factor_tv\": {", field)))
            fail_msg("configs/shapes_dcgan64.yaml: no factor coverage of '%s' in metrics.jsonl",
                     mg_shapes_factor_names[f]);
    }
}

static void test_cifar10_dcgan32(void **state)
{
    (void)state;
    char data[400];
    snprintf(data, sizeof data, "data.path=%s", cifar_train);
    train_gan_with("cifar10_dcgan32.yaml", cifar_extractor, data, "train.sample_interval=2",
                   "generator.layers[0].out=512", "generator.layers[3].shape[0]=32", "generator.layers[4].out=16",
                   "generator.layers[7].out=8", "discriminator.layers[0].out=8", "discriminator.layers[1].out=16",
                   "discriminator.layers[4].out=32", NULL);
}

/* the parameters of net's layers (its flat buffer pads each layer) */
static size_t layer_params(const mg_net *net)
{
    size_t n = 0;
    for (int i = 0; i < net->n_layers; i++)
        n += net->layers[i].n_param;
    return n;
}

/* The colour GANs' networks at their shipped widths: G makes what D takes, 3 x side x side,
 * with the parameter counts of DCGAN-64 and the 32x32 DCGAN. */
static void test_colour_networks_as_shipped(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int side;
        size_t g_params, d_params;
    } nets[] = {{"shapes_dcgan64.yaml", 64, 3592067, 2765633}, {"cifar10_dcgan32.yaml", 32, 1076611, 663361}};
    for (int i = 0; i < 2; i++) {
        mg_cfg *cfg = load(nets[i].name, NULL);
        mg_net G, D;
        mg_net_from_cfg(&G, "G", mg_cfg_require(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, 2);
        mg_net_from_cfg(&D, "D", mg_cfg_require(mg_cfg_root(cfg), "discriminator"), G.out, 2);
        assert_int_equal(G.out.c, 3);
        assert_int_equal(G.out.h, nets[i].side);
        assert_int_equal(G.out.w, nets[i].side);
        assert_int_equal(layer_params(&G), nets[i].g_params);
        assert_int_equal(layer_params(&D), nets[i].d_params);
        assert_int_equal(mg_shape_size(D.out), 1);
        mg_net_free(&G);
        mg_net_free(&D);
        mg_cfg_free(cfg);
    }
}

/* the configs the tests above train */
static const char *const covered[] = {
    "tiny.yaml",
    "ring8.yaml",
    "ring8_pac.yaml",
    "ring8_paper.yaml",
    "grid25.yaml",
    "grid25_pac.yaml",
    "grid25_paper.yaml",
    "classifier.yaml",
    "fmnist_dcgan.yaml",
    "fmnist_wgan.yaml",
    "fmnist_hinge.yaml",
    "fmnist_lsgan.yaml",
    "fmnist_minimax.yaml",
    "fmnist_cgan_sn.yaml",
    "fmnist_diffaug.yaml",
    "fmnist_wgan_gp.yaml",
    "fmnist_dcgan_r1.yaml",
    "toy.yaml",
    "classifier_shapes.yaml",
    "classifier_shapes_factor.yaml",
    "classifier_cifar10.yaml",
    "shapes_dcgan64.yaml",
    "cifar10_dcgan32.yaml",
};

static void test_every_config_has_a_test(void **state)
{
    (void)state;
    DIR *d = opendir("configs");
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        found++;
        bool listed = false;
        for (size_t i = 0; i < sizeof covered / sizeof covered[0]; i++)
            listed |= strcmp(covered[i], e->d_name) == 0;
        if (!listed) {
            closedir(d);
            fail_msg("configs/%s has no test in tests/test_configs.c", e->d_name);
        }
    }
    closedir(d);
    assert_int_equal(found, (int)(sizeof covered / sizeof covered[0]));
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_config_has_a_test),
        cmocka_unit_test(test_tiny),        cmocka_unit_test(test_ring8),
        cmocka_unit_test(test_ring8_pac),   cmocka_unit_test(test_ring8_paper),
        cmocka_unit_test(test_grid25),      cmocka_unit_test(test_grid25_pac),
        cmocka_unit_test(test_grid25_paper), cmocka_unit_test(test_classifier),
        cmocka_unit_test(test_fmnist_dcgan), cmocka_unit_test(test_fmnist_wgan),
        cmocka_unit_test(test_fmnist_hinge), cmocka_unit_test(test_fmnist_lsgan),
        cmocka_unit_test(test_fmnist_minimax), cmocka_unit_test(test_fmnist_cgan_sn),
        cmocka_unit_test(test_fmnist_diffaug),
        cmocka_unit_test(test_fmnist_wgan_gp), cmocka_unit_test(test_fmnist_dcgan_r1),
        cmocka_unit_test(test_toy),
        cmocka_unit_test(test_classifier_shapes), cmocka_unit_test(test_classifier_shapes_factor),
        cmocka_unit_test(test_classifier_cifar10),
        cmocka_unit_test(test_shapes_dcgan64), cmocka_unit_test(test_cifar10_dcgan32),
        cmocka_unit_test(test_colour_networks_as_shipped),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}

/* Training the evaluation's feature extractor data-parallel (see mg_classifier.h); its
 * command line is classifier_cmd.c.
 *
 * The loop is the toy trainer's (src/train/toy.c) with real data: the loader hands each rank its
 * slice of the global batch with labels, and one allreduce of the flat gradient per step
 * keeps the replicas identical. Progress statistics are summed locally and reduced only on
 * logging steps. Augmentation (left-right flips) draws from a per-sample stream keyed by
 * the sample's position in the global stream, so it does not depend on the rank count. */
#include "mg_classifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_batch_streams.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_eval_files.h"
#include "mg_extractor.h"
#include "mg_h5schema.h"
#include "mg_loader.h"
#include "mg_loss.h"
#include "mg_optim.h"
#include "mg_replica.h"
#include "mg_sched.h"
#include "mg_util.h"

#define FLIP_STREAM 0x464C4950u /* "FLIP" */

typedef struct {
    char test_data[1024], features[64], out[1024];
    char label_factor[64];      /* "" = the files' labels; else the factor column trained on */
    mg_cfg_node label;          /* classifier.label, for messages (absent: labels) */
    int epochs, batch;
    uint64_t seed;
    long log_interval;
    bool bn_sync, hflip;
    mg_opt_cfg opt;
    mg_sched sched;
    mg_loader_cfg data;
} classifier_cfg;

/* classifier.label: `labels` (the default: the data files' labels dataset) or
 * `{factor: NAME}` (that column of their factors dataset, e.g. colour on the shapes set). */
static void read_label(classifier_cfg *c, mg_cfg_node sec)
{
    static const char hint[] = "write `label: labels` or `label: {factor: NAME}` with NAME a factor of the data file";
    c->label = mg_cfg_get(sec, "label");
    c->label_factor[0] = 0;
    switch (mg_cfg_type_of(c->label)) {
    case MG_CFG_ABSENT:
        return;
    case MG_CFG_SCALAR:
        if (strcmp(mg_cfg_as_string(c->label), "labels") != 0)
            mg_cfg_fail(c->label, hint, "'%s' is not `labels`; a factor is given as {factor: %s}",
                        mg_cfg_as_string(c->label), mg_cfg_as_string(c->label));
        return;
    case MG_CFG_MAPPING: {
        mg_cfg_node f = mg_cfg_require(c->label, "factor");
        const char *name = mg_cfg_as_string(f);
        if (!name[0] || strlen(name) >= sizeof c->label_factor)
            mg_cfg_fail(f, hint, "the factor name is empty or longer than %zu characters", sizeof c->label_factor - 1);
        snprintf(c->label_factor, sizeof c->label_factor, "%s", name);
        return;
    }
    default:
        mg_cfg_fail(c->label, hint, "a list is neither `labels` nor {factor: NAME}");
    }
}

/* The classifier is to learn factor c->label_factor: the training and test files must
 * have it, with one size, and the model must end in that many classes. Checked on every
 * rank before any collective call, so a bad name ends every rank with a message naming
 * the file and classifier.label. */
static void check_factor(const classifier_cfg *c, mg_cfg *cfg, int k)
{
    const char *files[2] = {c->data.path, c->test_data};
    int32_t size = -1;
    for (int i = 0; i < 2; i++) {
        mg_data_info info;
        mg_h5_file *f = mg_h5_open_or_fail(files[i], &info);
        const int col = mg_data_factor_index(&info, c->label_factor);
        char names[512];
        mg_data_factor_list(&info, names, sizeof names);
        const int32_t this_size = col >= 0 ? info.factor_sizes[col] : 0;
        const int info_factors = info.n_factors;
        mg_h5_close(f);
        mg_data_info_free(&info);
        if (info_factors == 0)
            mg_cfg_fail(c->label, "factor labels come from files written by `mpigan data shapes`",
                        "%s has no factors dataset, so no factor '%s' to train on", files[i], c->label_factor);
        if (col < 0)
            mg_cfg_fail(c->label, "name one of the file's factors", "%s has no factor '%s' (its factors: %s)", files[i],
                        c->label_factor, names);
        if (i == 1 && this_size != size)
            mg_cfg_fail(c->label, "use training and test files of one data set",
                        "factor '%s' has %d values in %s, %d in %s", c->label_factor, size, files[0], this_size,
                        files[1]);
        size = this_size;
    }
    if (size > 0 && size != k) {
        mg_cfg_node layers = mg_cfg_require(mg_cfg_require(mg_cfg_root(cfg), "model"), "layers");
        const int last = mg_cfg_seq_len(layers) - 1;
        char hint[160];
        snprintf(hint, sizeof hint, "end the model with `linear, out: %d` (--set model.layers[%d].out=%d)", size, last,
                 size);
        mg_cfg_fail(mg_cfg_seq_at(layers, last), hint,
                    "the model ends in %d classes, but factor '%s' (classifier.label) of %s takes %d values", k,
                    c->label_factor, c->data.path, size);
    }
}

static void read_cfg(classifier_cfg *c, mg_cfg *cfg)
{
    mg_cfg_node root = mg_cfg_root(cfg);
    mg_cfg_node sec = mg_cfg_require(root, "classifier");
    mg_cfg_expect_mapping(sec);
    snprintf(c->test_data, sizeof c->test_data, "%s", mg_cfg_as_string(mg_cfg_require(sec, "test_data")));
    c->epochs = (int)mg_cfg_int(sec, "epochs", 4, 1, 10000);
    c->batch = (int)mg_cfg_int(sec, "batch", 128, 1, 1 << 20);
    c->seed = (uint64_t)mg_cfg_int(sec, "seed", 1, 0, 1L << 62);
    c->log_interval = mg_cfg_int(sec, "log_interval", 100, 1, 1L << 30);
    static const char *const bn_modes[] = {"sync", "local"};
    c->bn_sync = mg_cfg_choice(sec, "bn", bn_modes, 2, 0) == 0;
    c->hflip = mg_cfg_bool(sec, "hflip", true);
    snprintf(c->features, sizeof c->features, "%s", mg_cfg_string(sec, "features", "features"));
    snprintf(c->out, sizeof c->out, "%s", mg_cfg_as_string(mg_cfg_require(sec, "out")));
    c->opt = mg_opt_cfg_from(mg_cfg_require(sec, "optimizer"));
    c->sched = mg_sched_from(mg_cfg_get(sec, "schedule"));
    read_label(c, sec);
    mg_loader_cfg_default(&c->data);
    mg_loader_cfg_from(&c->data, mg_cfg_require(root, "data"), c->seed);
    snprintf(c->data.label_factor, sizeof c->data.label_factor, "%s", c->label_factor);
    const int size = mg_dist_size();
    if (c->batch % size)
        mg_cfg_fail(mg_cfg_get(sec, "batch"), "choose a global batch divisible by the number of ranks",
                    "global batch %d does not split over %d ranks", c->batch, size);
}

/* Mirrors image i of x (n, c, h, w) left-right when its coin says so. */
static void random_flips(float *x, int n, mg_shape s, uint64_t seed, uint64_t first_item)
{
    for (int i = 0; i < n; i++) {
        mg_rng r;
        mg_batch_streams_rng(&r, seed, FLIP_STREAM, first_item + (uint64_t)i);
        if (mg_rng_u32(&r) & 1u)
            continue;
        float *img = x + (size_t)i * mg_shape_size(s);
        for (int row = 0; row < s.c * s.h; row++) {
            float *line = img + (size_t)row * s.w;
            for (int a = 0, b = s.w - 1; a < b; a++, b--) {
                float t = line[a];
                line[a] = line[b], line[b] = t;
            }
        }
    }
}

static int argmax(const float *v, int k)
{
    int best = 0;
    for (int y = 1; y < k; y++)
        if (v[y] > v[best])
            best = y;
    return best;
}

double mg_classifier_accuracy(mg_net *net, const char *path)
{
    return mg_classifier_score(net, path, NULL, NULL, NULL);
}

double mg_classifier_score(mg_net *net, const char *path, const char *factor, double *label_hist, double *pred_hist)
{
    const int rank = mg_dist_rank(), size = mg_dist_size();
    const bool by_factor = factor && factor[0];
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(path, &info);
    const int col = by_factor ? mg_data_factor_index(&info, factor) : -1;
    MG_CHECK(info.kind == MG_DATA_IMAGES && (by_factor || info.has_labels), path,
             "score the classifier on a labelled image set", "the file holds no labelled images");
    MG_CHECK(!by_factor || col >= 0, path, "score a factor classifier on a file of its data set",
             "the file has no factor '%s'", factor);
    MG_CHECK(info.c == net->in.c && info.h == net->in.h && info.w == net->in.w, path,
             "the test set must have the training images' shape", "images are %dx%dx%d, the network takes %dx%dx%d",
             info.c, info.h, info.w, net->in.c, net->in.h, net->in.w);
    const int64_t lo = info.n * rank / size, hi = info.n * (rank + 1) / size;
    const int chunk = net->max_batch;
    const size_t sample = mg_shape_size(net->in);
    const int k = (int)mg_shape_size(net->out);
    unsigned char *raw = mg_alloc((size_t)chunk * sample, "test images");
    float *x = mg_alloc_floats((size_t)chunk * sample, "test batch");
    const int F = by_factor ? info.n_factors : 1; /* int32 per sample as read: a factors row, or a label */
    int32_t *rows = mg_alloc(sizeof(int32_t) * (size_t)chunk * (size_t)F, "test labels");
    /* correct, total, then the label and predicted-class histograms: one sum over ranks */
    double *counts = mg_alloc(sizeof(double) * (2 + 2 * (size_t)k), "test counts");
    for (int64_t start = lo; start < hi; start += chunk) {
        const int m = (int)(hi - start < chunk ? hi - start : chunk);
        mg_h5_read_samples(f, start, m, raw);
        if (by_factor)
            mg_h5_read_factors(f, start, m, rows);
        else
            mg_h5_read_labels(f, start, m, rows);
        for (size_t i = 0; i < (size_t)m * sample; i++)
            x[i] = (float)raw[i] / 127.5f - 1.0f; /* the loader's mapping */
        const float *logits = mg_net_forward(net, x, m, MG_EVAL);
        for (int i = 0; i < m; i++) {
            const int32_t y = rows[(size_t)i * F + (by_factor ? col : 0)];
            MG_CHECK(y >= 0 && y < k, path, "score the classifier on a file of the data set it was trained on",
                     "sample %lld has %s %d, the classifier knows %d classes", (long long)(start + i),
                     by_factor ? factor : "label", y, k);
            const int p = argmax(logits + (size_t)i * k, k);
            counts[0] += p == y;
            counts[2 + y] += 1;
            counts[2 + k + p] += 1;
        }
        counts[1] += m;
    }
    mg_h5_close(f);
    mg_data_info_free(&info);
    mg_free(raw);
    mg_free(x);
    mg_free(rows);
    mg_dist_allreduce_sum_f64(counts, 2 + 2 * (size_t)k);
    if (label_hist)
        memcpy(label_hist, counts + 2, sizeof(double) * (size_t)k);
    if (pred_hist)
        memcpy(pred_hist, counts + 2 + k, sizeof(double) * (size_t)k);
    const double accuracy = counts[0] / counts[1];
    mg_free(counts);
    return accuracy;
}

mg_classifier_result mg_classifier_train(mg_cfg *cfg, const char *config_text, const char *overrides, bool verbose)
{
    const int rank = mg_dist_rank(), size = mg_dist_size();
    verbose = verbose && rank == 0;
    classifier_cfg c;
    read_cfg(&c, cfg);
    const int local = c.batch / size;
    mg_net net;
    mg_net_from_cfg(&net, "C", mg_cfg_require(mg_cfg_root(cfg), "model"), (mg_shape){0, 0, 0}, local);
    mg_cfg_check_unused(cfg);
    const int k = (int)mg_shape_size(net.out);
    const int feature_layer = mg_extractor_find_layer(&net, c.features);
    MG_CHECK(feature_layer >= 0 && feature_layer < net.n_layers - 1, c.features,
             "give the penultimate layer `name: <classifier.features>` in the model",
             "no hidden layer of the model is named '%s'", c.features);
    MG_CHECK(k >= 2 && net.out.h == 1 && net.out.w == 1, net.name, "end the model with `linear, out: <classes>`",
             "the output is %dx%dx%d, not a vector of class logits", net.out.c, net.out.h, net.out.w);
    if (c.label_factor[0])
        check_factor(&c, cfg, k);
    if (c.bn_sync)
        mg_net_set_reduce(&net, mg_dist_reduce_sum_cb, NULL);

    char where[300];
    mg_error_set_context(mg_cfg_where(mg_cfg_require(mg_cfg_require(mg_cfg_root(cfg), "model"), "input"), where,
                                      sizeof where)); /* a data file of another shape names the model's input */
    mg_loader *L = mg_loader_open(&c.data, net.in, c.batch);
    mg_error_set_context(NULL);
    const mg_data_info *info = mg_loader_info(L);
    MG_CHECK(info->kind == MG_DATA_IMAGES && mg_loader_labels(L, NULL), c.data.path,
             "train the classifier on labelled images", "the data file has no labels");
    const long steps = (long)(((int64_t)c.epochs * info->n + c.batch - 1) / c.batch);

    mg_rng init_rng;
    mg_rng_init(&init_rng, c.seed, mg_rng_stream_id(MG_STREAM_INIT, 0));
    mg_net_init_params(&net, &init_rng);
    mg_optim opt;
    mg_optim_init(&opt, &c.opt, net.n_param);
    mg_replica rep;
    mg_replica_init(&rep, &net, &opt, 0, MG_REDUCE_NODE);
    mg_replica_sync(&rep);

    const size_t sample = mg_shape_size(net.in);
    float *x = mg_alloc_floats((size_t)local * sample, "classifier batch");
    int *labels = mg_alloc(sizeof(int) * (size_t)local, "classifier labels");
    float *dlogits = mg_alloc_floats((size_t)local * (size_t)k, "classifier loss gradient");
    if (verbose)
        printf("classifier: %s, %lld training images, %ld steps of global batch %d on %d rank%s (%d epochs); "
               "classes: %s%s%s (%d)\n",
               c.data.path, (long long)info->n, steps, c.batch, size, size > 1 ? "s" : "", c.epochs,
               c.label_factor[0] ? "factor '" : "the labels", c.label_factor, c.label_factor[0] ? "'" : "", k);

    mg_classifier_result res = {.steps = steps, .n_classes = k};
    res.feature_dim = (int)mg_shape_size(net.layers[feature_layer].out);
    double window[3] = {0, 0, 0}; /* loss sum, correct, samples: this rank, since the last log */
    double t_compute = 0, t_reduce = 0, t_data = 0;
    mg_dist_barrier();
    const double t_start = mg_now();
    double t_log = t_start;
    for (long step = 0; step < steps; step++) {
        double t0 = mg_now();
        const float *batch = mg_loader_next(L, labels);
        memcpy(x, batch, (size_t)local * sample * sizeof(float));
        if (c.hflip)
            random_flips(x, local, net.in, c.seed, (uint64_t)step * (uint64_t)c.batch + (uint64_t)rank * local);
        double t1 = mg_now();
        mg_net_zero_grad(&net);
        const float *logits = mg_net_forward(&net, x, local, MG_TRAIN);
        const float loss = mg_softmax_xent(logits, labels, local, k, dlogits, NULL);
        for (int i = 0; i < local; i++)
            window[1] += argmax(logits + (size_t)i * k, k) == labels[i];
        window[0] += (double)loss * local;
        window[2] += local;
        mg_net_backward(&net, dlogits, true, false);
        double t2 = mg_now();
        mg_replica_reduce(&rep);
        double t3 = mg_now();
        mg_replica_update(&rep, mg_sched_lr(&c.sched, c.opt.lr, step, steps));
        double t4 = mg_now();
        t_data += t1 - t0;
        t_compute += (t2 - t1) + (t4 - t3);
        t_reduce += t3 - t2;
        if ((step + 1) % c.log_interval == 0 || step + 1 == steps) {
            mg_dist_allreduce_sum_f64(window, 3);
            const double mean_loss = window[0] / window[2];
            MG_CHECK(isfinite(mean_loss), net.name, "lower the learning rate", "training loss is %g at step %ld",
                     mean_loss, step + 1);
            if (res.first_loss == 0)
                res.first_loss = mean_loss;
            res.final_loss = mean_loss;
            res.train_accuracy = window[1] / window[2];
            const double t = mg_now();
            if (verbose)
                printf("classifier: step %6ld/%ld  epoch %.2f  loss %.4f  train acc %.3f  lr %.2e  %.0f img/s\n",
                       step + 1, steps, (double)(step + 1) * c.batch / (double)info->n, mean_loss,
                       res.train_accuracy, mg_sched_lr(&c.sched, c.opt.lr, step, steps),
                       window[2] / (t - t_log));
            fflush(stdout);
            t_log = t;
            window[0] = window[1] = window[2] = 0;
        }
    }
    res.train_seconds = mg_dist_max(mg_now() - t_start);
    res.compute_seconds = t_compute, res.allreduce_seconds = t_reduce, res.data_seconds = t_data;
    mg_loader_close(L);

    /* local BatchNorm: keep rank 0's running statistics everywhere */
    if (!c.bn_sync)
        mg_dist_bcast(net.state, net.n_state * sizeof(float));
    res.replicas_equal = mg_dist_all_equal_u64(mg_replica_checksum(&net));

    const double t_test = mg_now();
    double *label_hist = mg_alloc(sizeof(double) * (size_t)k, "test label histogram");
    double *pred_hist = mg_alloc(sizeof(double) * (size_t)k, "test prediction histogram");
    res.test_accuracy = mg_classifier_score(&net, c.test_data, c.label_factor, label_hist, pred_hist);
    res.test_seconds = mg_dist_max(mg_now() - t_test);

    mg_model_file m = {0};
    m.config_text = (char *)config_text;
    m.overrides = (char *)(overrides ? overrides : "");
    m.param = net.param, m.n_param = net.n_param;
    m.state = net.state, m.n_state = net.n_state;
    snprintf(m.feature_layer, sizeof m.feature_layer, "%s", c.features);
    m.feature_dim = res.feature_dim, m.n_classes = k;
    m.test_accuracy = res.test_accuracy;
    snprintf(m.train_data, sizeof m.train_data, "%s", c.data.path);
    snprintf(m.test_data, sizeof m.test_data, "%s", c.test_data);
    m.seed = c.seed, m.steps = steps, m.n_ranks = size, m.train_seconds = res.train_seconds;
    snprintf(m.label_factor, sizeof m.label_factor, "%s", c.label_factor);
    m.test_label_hist = label_hist, m.test_pred_hist = pred_hist; /* what factor coverage compares with */
    if (rank == 0)
        mg_model_file_write(c.out, &m);
    res.checksum = mg_model_checksum(m.config_text, m.overrides, m.param, m.n_param, m.state, m.n_state);
    mg_dist_barrier();
    if (verbose) {
        printf("classifier: test accuracy %.4f on %s (%.1f s); training %.1f s (rank 0: compute %.1f s, "
               "allreduce %.1f s, data %.1f s); replicas %s\n",
               res.test_accuracy, c.test_data, res.test_seconds, res.train_seconds, t_compute, t_reduce, t_data,
               res.replicas_equal ? "identical" : "DIFFER");
        printf("classifier: wrote %s (checksum %016llx, %d-d features from layer '%s', %d classes)\n", c.out,
               (unsigned long long)res.checksum, res.feature_dim, c.features, k);
    }
    mg_free(x);
    mg_free(labels);
    mg_free(dlogits);
    mg_free(label_hist);
    mg_free(pred_hist);
    mg_replica_free(&rep);
    mg_optim_free(&opt);
    mg_net_free(&net);
    return res;
}

/* Loading and running the evaluation's feature extractor (see mg_extractor.h). The model
 * file stores the classifier's YAML config and --set overrides, so the network is rebuilt
 * exactly as it was trained and the stored flat buffers bind to it one to one. */
#include "mg_extractor.h"

#include <stdio.h>
#include <string.h>

#include "mg_cfg.h"
#include "mg_cfg_override.h"
#include "mg_error.h"
#include "mg_eval_files.h"
#include "mg_loss.h"

int mg_extractor_find_layer(const mg_net *net, const char *name)
{
    for (int i = 0; i < net->n_layers; i++)
        if (!strcmp(net->layers[i].name, name))
            return i;
    return -1;
}

/* Applies newline-separated --set assignments. */
static void apply_overrides(mg_cfg *cfg, const char *overrides)
{
    char line[512];
    for (const char *p = overrides; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            MG_CHECK(len < sizeof line, "override", NULL, "override too long: %.*s", (int)len, p);
            memcpy(line, p, len);
            line[len] = 0;
            mg_cfg_override(cfg, line);
        }
        p += len + (end ? 1 : 0);
    }
}

void mg_extractor_load(mg_extractor *ex, const char *path, int max_batch)
{
    memset(ex, 0, sizeof *ex);
    snprintf(ex->path, sizeof ex->path, "%s", path);
    mg_model_file m;
    mg_model_file_read(path, &m);
    char name[1100];
    snprintf(name, sizeof name, "%s:/config", path);
    mg_cfg *cfg = mg_cfg_parse(m.config_text, name);
    apply_overrides(cfg, m.overrides);
    mg_net_from_cfg(&ex->net, "C", mg_cfg_require(mg_cfg_root(cfg), "model"), (mg_shape){0, 0, 0}, max_batch);
    mg_cfg_free(cfg);
    MG_CHECK(ex->net.n_param == m.n_param && ex->net.n_state == m.n_state, path,
             "the file does not match its own config; retrain the classifier",
             "the stored network has %zu parameters and %zu state values, its config builds %zu and %zu", m.n_param,
             m.n_state, ex->net.n_param, ex->net.n_state);
    memcpy(ex->net.param, m.param, m.n_param * sizeof(float));
    memcpy(ex->net.state, m.state, m.n_state * sizeof(float));
    ex->feature_layer = mg_extractor_find_layer(&ex->net, m.feature_layer);
    MG_CHECK(ex->feature_layer >= 0, path, NULL, "no layer named '%s' in the stored network", m.feature_layer);
    ex->dim = (int)mg_shape_size(ex->net.layers[ex->feature_layer].out);
    ex->n_classes = (int)mg_shape_size(ex->net.out);
    MG_CHECK(ex->dim == m.feature_dim && ex->n_classes == m.n_classes, path, NULL,
             "feature dimension %d and classes %d differ from the file's attributes (%d, %d)", ex->dim,
             ex->n_classes, m.feature_dim, m.n_classes);
    ex->checksum = m.checksum;
    ex->test_accuracy = m.test_accuracy;
    snprintf(ex->label_factor, sizeof ex->label_factor, "%s", m.label_factor);
    snprintf(ex->test_data, sizeof ex->test_data, "%s", m.test_data);
    ex->test_pred_hist = m.test_pred_hist; /* taken over */
    m.test_pred_hist = NULL;
    mg_model_file_free(&m);
}

void mg_extractor_run(mg_extractor *ex, const float *x, int64_t n, float *feats, float *probs)
{
    const size_t in_size = mg_shape_size(ex->net.in);
    const int max = ex->net.max_batch;
    for (int64_t done = 0; done < n; done += max) {
        const int m = (int)(n - done < max ? n - done : max);
        const float *logits = mg_net_forward(&ex->net, x + (size_t)done * in_size, m, MG_EVAL);
        if (feats)
            memcpy(feats + (size_t)done * (size_t)ex->dim, ex->net.act[ex->feature_layer],
                   (size_t)m * (size_t)ex->dim * sizeof(float));
        if (probs)
            mg_softmax_rows(logits, m, ex->n_classes, probs + (size_t)done * (size_t)ex->n_classes);
    }
}

void mg_extractor_classify(mg_extractor *ex, const float *x, int64_t n, int *classes)
{
    const size_t in_size = mg_shape_size(ex->net.in);
    const int max = ex->net.max_batch, k = ex->n_classes;
    for (int64_t done = 0; done < n; done += max) {
        const int m = (int)(n - done < max ? n - done : max);
        const float *logits = mg_net_forward(&ex->net, x + (size_t)done * in_size, m, MG_EVAL);
        for (int i = 0; i < m; i++) {
            const float *z = logits + (size_t)i * k;
            int best = 0;
            for (int y = 1; y < k; y++)
                if (z[y] > z[best])
                    best = y;
            classes[done + i] = best;
        }
    }
}

void mg_extractor_free(mg_extractor *ex)
{
    mg_free(ex->test_pred_hist);
    mg_net_free(&ex->net);
    memset(ex, 0, sizeof *ex);
}

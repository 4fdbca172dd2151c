/* What every layer kind shares: setup, weight initialisation, and the table that maps a
 * YAML kind name to its constructor. Adding a kind adds one line to kinds[]. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mg_error.h"
#include "mg_layers.h"
#include "mg_onednn.h"

void mg_layer_setup(mg_layer *l, const mg_layer_ops *ops, mg_shape in, mg_shape out, void *impl)
{
    l->ops = ops;
    l->in = in;
    l->out = out;
    l->impl = impl;
    if (!l->name[0])
        snprintf(l->name, sizeof l->name, "%s", ops->kind);
}

mg_shape mg_shape_from_cfg(mg_cfg_node list, const char *hint)
{
    int len = mg_cfg_seq_len(list);
    if (len != 1 && len != 3)
        mg_cfg_fail(list, hint, "a shape has 1 or 3 entries, not %d", len);
    long v[3] = {1, 1, 1};
    for (int i = 0; i < len; i++)
        v[i] = mg_cfg_as_int(mg_cfg_seq_at(list, i), 1, 1L << 24);
    return (mg_shape){(int)v[0], (int)v[1], (int)v[2]};
}

void mg_layer_destroy(mg_layer *l)
{
    mg_free(l->impl);
    l->impl = NULL;
    mg_onednn_op_free(l->onednn);
    l->onednn = NULL;
}

void mg_init_weights(float *w, size_t n, int fan_in, int fan_out, const mg_init *init, mg_rng *rng)
{
    double a = init->gain;
    switch (init->kind) {
    case MG_INIT_NORMAL:
        mg_rng_fill_normal(rng, w, n, 0.0f, init->std);
        break;
    case MG_INIT_XAVIER_UNIFORM: { /* U(-b, b), b = gain sqrt(6 / (fan_in + fan_out)) */
        float b = (float)((a > 0 ? a : 1.0) * sqrt(6.0 / (fan_in + fan_out)));
        mg_rng_fill_uniform(rng, w, n, -b, b);
        break;
    }
    case MG_INIT_XAVIER_NORMAL: /* N(0, gain^2 2 / (fan_in + fan_out)) */
        mg_rng_fill_normal(rng, w, n, 0.0f, (float)((a > 0 ? a : 1.0) * sqrt(2.0 / (fan_in + fan_out))));
        break;
    case MG_INIT_KAIMING_UNIFORM: { /* U(-b, b), b = sqrt(6 / ((1 + a^2) fan_in)) */
        float b = (float)sqrt(6.0 / ((1.0 + a * a) * fan_in));
        mg_rng_fill_uniform(rng, w, n, -b, b);
        break;
    }
    case MG_INIT_KAIMING_NORMAL: /* N(0, 2 / ((1 + a^2) fan_in)) */
        mg_rng_fill_normal(rng, w, n, 0.0f, (float)sqrt(2.0 / ((1.0 + a * a) * fan_in)));
        break;
    }
}

/* YAML constructors, one per kind (defined in src/nn/layers/<kind>.c). */
typedef void (*from_cfg_fn)(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_linear_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_maxout_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_conv2d_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_conv_transpose2d_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_batchnorm_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_relu_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_leaky_relu_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_tanh_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_sigmoid_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_reshape_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_flatten_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_mbstd_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_embed_concat_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_onehot_concat_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);
void mg_projection_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in);

/* sn: the kind reads `sn` and `sn_iters` itself (spectral normalisation of its weight);
 * on any other kind those keys are an error naming the kind. */
static const struct { const char *kind; from_cfg_fn make; bool sn; } kinds[] = {
    {"linear", mg_linear_from_cfg, true},
    {"maxout", mg_maxout_from_cfg, false},
    {"conv2d", mg_conv2d_from_cfg, true},
    {"conv_transpose2d", mg_conv_transpose2d_from_cfg, true},
    {"batchnorm", mg_batchnorm_from_cfg, false},
    {"relu", mg_relu_from_cfg, false},
    {"leaky_relu", mg_leaky_relu_from_cfg, false},
    {"tanh", mg_tanh_from_cfg, false},
    {"sigmoid", mg_sigmoid_from_cfg, false},
    {"reshape", mg_reshape_from_cfg, false},
    {"flatten", mg_flatten_from_cfg, false},
    {"mbstd", mg_mbstd_from_cfg, false},
    {"embed_concat", mg_embed_concat_from_cfg, false},
    {"onehot_concat", mg_onehot_concat_from_cfg, false},
    {"projection", mg_projection_from_cfg, true},
};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

bool mg_layer_kind_exists(const char *kind)
{
    for (int i = 0; i < N_KINDS; i++)
        if (!strcmp(kinds[i].kind, kind))
            return true;
    return false;
}

const char *mg_layer_kind_list(void)
{
    static char list[512];
    if (!list[0])
        for (int i = 0; i < N_KINDS; i++) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", kinds[i].kind);
        }
    return list;
}

/* `sn` / `sn_iters` on a kind that does not take them: a config error at that key. */
static void refuse_sn(const char *kind, mg_cfg_node spec)
{
    static const char *const keys[] = {"sn", "sn_iters"};
    for (int k = 0; k < 2; k++) {
        mg_cfg_node n = mg_cfg_get(spec, keys[k]);
        if (mg_cfg_present(n))
            mg_cfg_fail(n, "spectral normalisation applies to the weight of linear, conv2d and conv_transpose2d "
                            "layers and to the class embedding of a projection head",
                        "'%s' on a %s layer, which has no weight it can normalise", keys[k], kind);
    }
}

void mg_layer_from_cfg(mg_layer *l, const char *kind, mg_cfg_node spec, mg_shape in)
{
    for (int i = 0; i < N_KINDS; i++)
        if (!strcmp(kinds[i].kind, kind)) {
            if (!kinds[i].sn)
                refuse_sn(kind, spec);
            kinds[i].make(l, spec, in);
            return;
        }
    char hint[600];
    snprintf(hint, sizeof hint, "known kinds: %s", mg_layer_kind_list());
    mg_cfg_fail(mg_cfg_get(spec, "kind"), hint, "unknown layer kind '%s'", kind);
}

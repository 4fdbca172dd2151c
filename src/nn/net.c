/* Networks: a sequence of layers bound to flat buffers (see mg_net.h for the layout).
 * Buffers are allocated once for the largest batch, so the training step allocates
 * nothing. */
#include "mg_net.h"

#include <stdio.h>
#include <string.h>

#include "mg_error.h"
#include "mg_layers.h"

/* 16 floats: every layer's block starts on a 64-byte boundary. */
static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

void mg_net_begin(mg_net *net, const char *name, mg_shape in)
{
    memset(net, 0, sizeof *net);
    snprintf(net->name, sizeof net->name, "%s", name);
    MG_CHECK(in.c > 0 && in.h > 0 && in.w > 0, net->name, "input is [c, h, w] or [d]",
             "input shape %dx%dx%d is not positive", in.c, in.h, in.w);
    net->in = in;
    net->out = in;
    net->default_init = (mg_init){.kind = MG_INIT_NORMAL, .std = 0.02f, .gain = 1.0f, .bn_std = 0.0f};
}

mg_shape mg_net_tail_shape(const mg_net *net) { return net->n_layers ? net->layers[net->n_layers - 1].out : net->in; }

mg_layer *mg_net_push(mg_net *net)
{
    MG_CHECK(!net->param, net->name, NULL, "cannot add layers after mg_net_finish");
    if (net->n_layers == net->cap_layers) {
        int cap = net->cap_layers ? 2 * net->cap_layers : 8;
        mg_layer *grown = mg_alloc(sizeof(mg_layer) * (size_t)cap, net->name);
        if (net->layers)
            memcpy(grown, net->layers, sizeof(mg_layer) * (size_t)net->n_layers);
        mg_free(net->layers);
        net->layers = grown;
        net->cap_layers = cap;
    }
    mg_layer *l = &net->layers[net->n_layers++];
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s.%d", net->name, net->n_layers - 1);
    l->n_classes = net->n_classes; /* what a conditional kind's constructor reads */
    return l;
}

void mg_net_set_classes(mg_net *net, int n_classes)
{
    MG_CHECK(n_classes >= 0 && net->n_layers == 0, net->name, "set the classes before adding layers",
             "cannot set %d classes here", n_classes);
    net->n_classes = n_classes;
}

void mg_net_set_labels(mg_net *net, const int *labels) { net->next_labels = labels; }

/* The workspace the layers that compute on the BLAS path need at max_batch: a layer on
 * oneDNN (l->onednn) needs none, so under that backend it shrinks to what is left. */
static size_t work_floats(const mg_net *net)
{
    size_t n_work = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const mg_layer *l = &net->layers[i];
        if (!l->onednn && l->n_work * (size_t)net->max_batch > n_work)
            n_work = l->n_work * (size_t)net->max_batch;
    }
    return n_work;
}

void mg_net_finish(mg_net *net, int max_batch)
{
    MG_CHECK(net->n_layers > 0, net->name, "give the network at least one layer", "network has no layers");
    MG_CHECK(max_batch > 0, net->name, NULL, "batch size %d must be positive", max_batch);
    net->max_batch = max_batch;
    size_t n_param = 0, n_state = 0, n_act = 0, n_cache = 0, widest = mg_shape_size(net->in);
    for (int i = 0; i < net->n_layers; i++) {
        mg_layer *l = &net->layers[i];
        n_param += align16(l->n_param);
        n_state += align16(l->n_state);
        n_act += align16(mg_shape_size(l->out) * (size_t)max_batch);
        n_cache += align16(l->n_cache * (size_t)max_batch + l->n_cache_fixed);
        if (mg_shape_size(l->out) > widest)
            widest = mg_shape_size(l->out);
    }
    net->n_param = n_param;
    net->n_state = n_state;
    net->param = mg_alloc_floats(n_param, "network parameters");
    net->grad = mg_alloc_floats(n_param, "network gradients");
    net->state = mg_alloc_floats(n_state, "network state");
    net->act_mem = mg_alloc_floats(n_act, "activations");
    net->act = mg_alloc(sizeof(float *) * (size_t)net->n_layers, "activation table");
    net->cache = mg_alloc_floats(n_cache, "layer caches");
    net->work = mg_alloc_scratch_floats(work_floats(net), "workspace");
    for (int k = 0; k < 2; k++)
        net->delta[k] = mg_alloc_floats(widest * (size_t)max_batch, "backward buffers");
    net->labels = mg_alloc(sizeof(int) * (size_t)max_batch, "network labels");
    net->conditional = false;
    for (int i = 0; i < net->n_layers; i++)
        net->conditional |= net->layers[i].needs_labels;

    size_t p = 0, s = 0, a = 0, c = 0;
    for (int i = 0; i < net->n_layers; i++) {
        mg_layer *l = &net->layers[i];
        l->param = net->param + p;
        l->grad = net->grad + p;
        l->state = net->state + s;
        l->cache = net->cache + c;
        l->work = net->work;
        l->labels = net->labels;
        net->act[i] = net->act_mem + a;
        p += align16(l->n_param);
        s += align16(l->n_state);
        a += align16(mg_shape_size(l->out) * (size_t)max_batch);
        c += align16(l->n_cache * (size_t)max_batch + l->n_cache_fixed);
    }
    net->out = net->layers[net->n_layers - 1].out;
}

void mg_net_set_backend(mg_net *net, mg_backend backend, mg_precision precision)
{
    MG_CHECK(net->param, net->name, "this is a bug in the caller", "mg_net_set_backend before mg_net_finish");
    MG_CHECK(backend >= 0 && backend < MG_BACKEND_COUNT && precision >= 0 && precision < MG_PRECISION_COUNT,
             net->name, "this is a bug in the caller", "unknown backend %d or precision %d", (int)backend,
             (int)precision);
    MG_CHECK(precision == MG_PRECISION_FP32 || backend == MG_BACKEND_ONEDNN, net->name,
             "set train.backend: onednn, or train.precision: fp32", "precision %s runs on the oneDNN backend only",
             mg_precision_names[precision]);
    MG_CHECK(precision != MG_PRECISION_BF16 || mg_onednn_bf16_supported(), net->name,
             "set train.precision: fp32 (bf16 needs AVX512_BF16 or AMX: Intel Cooper Lake, Sapphire Rapids and "
             "later, AMD Zen 4 and later)",
             "precision bf16: this CPU has no bfloat16 instructions oneDNN can use");
    for (int i = 0; i < net->n_layers; i++) {
        mg_layer *l = &net->layers[i];
        mg_onednn_op_free(l->onednn);
        l->onednn = NULL;
        if (backend == MG_BACKEND_ONEDNN && l->ops->onednn_make)
            l->onednn = l->ops->onednn_make(l, net->max_batch, precision == MG_PRECISION_BF16);
    }
    mg_free(net->work); /* every byte of it is touched (zeroed), so keep only what is used */
    net->work = mg_alloc_scratch_floats(work_floats(net), "workspace");
    for (int i = 0; i < net->n_layers; i++)
        net->layers[i].work = net->work;
    net->backend = backend;
    net->precision = precision;
}

int mg_net_onednn_layers(const mg_net *net)
{
    int count = 0;
    for (int i = 0; i < net->n_layers; i++)
        count += net->layers[i].onednn != NULL;
    return count;
}

mg_init mg_init_from_cfg(mg_cfg_node spec, mg_init def)
{
    static const char *const kinds[] = {"normal", "xavier_uniform", "xavier_normal", "kaiming_uniform",
                                        "kaiming_normal"};
    if (!mg_cfg_present(spec))
        return def;
    mg_cfg_expect_mapping(spec);
    mg_init init = def;
    init.kind = (mg_init_kind)mg_cfg_choice(spec, "kind", kinds, 5, (int)def.kind);
    init.std = (float)mg_cfg_real(spec, "std", def.std, 0.0, 10.0);
    init.gain = (float)mg_cfg_real(spec, "gain", def.gain, 0.0, 100.0);
    init.bn_std = (float)mg_cfg_real(spec, "bn_std", def.bn_std, 0.0, 10.0);
    return init;
}

/* `activation: relu` on a layer appends that activation as its own layer. */
static void push_activation(mg_net *net, mg_cfg_node act)
{
    static const char *const names[] = {"relu", "leaky_relu", "tanh", "sigmoid", "none"};
    int which = mg_cfg_as_choice(act, names, 5);
    if (which == 4)
        return;
    mg_shape in = mg_net_tail_shape(net);
    mg_layer *l = mg_net_push(net);
    snprintf(l->name + strlen(l->name), sizeof l->name - strlen(l->name), ".%s", names[which]);
    switch (which) {
    case 0: mg_relu_make(l, in); break;
    case 1: mg_leaky_relu_make(l, in, 0.2f); break;
    case 2: mg_tanh_make(l, in); break;
    case 3: mg_sigmoid_make(l, in); break;
    }
}

void mg_net_from_cfg(mg_net *net, const char *name, mg_cfg_node spec, mg_shape in, int max_batch)
{
    mg_net_from_cfg_packed(net, name, spec, in, 1, max_batch);
}

void mg_net_from_cfg_packed(mg_net *net, const char *name, mg_cfg_node spec, mg_shape in, int pack, int max_batch)
{
    MG_CHECK(pack >= 1, name, NULL, "pack %d must be at least 1", pack);
    mg_cfg_expect_mapping(spec);
    char where[320];
    mg_cfg_node input = mg_cfg_get(spec, "input");
    if (mg_cfg_present(input)) {
        mg_shape declared = mg_shape_from_cfg(input, "write [d] for vectors or [c, h, w] for images");
        if (in.c > 0 && (declared.c != in.c || declared.h != in.h || declared.w != in.w))
            mg_cfg_fail(input, "the network's input must match the data",
                        "declared input %dx%dx%d but the data gives %dx%dx%d", declared.c, declared.h,
                        declared.w, in.c, in.h, in.w);
        in = declared;
    } else if (in.c <= 0) {
        mg_cfg_fail(spec, NULL, "missing required key 'input'");
    }
    in.c *= pack; /* pack samples stacked along channels (features for vectors) */
    mg_net_begin(net, name, in);
    net->default_init = mg_init_from_cfg(mg_cfg_get(spec, "init"), net->default_init);
    net->n_classes = (int)mg_cfg_int(spec, "classes", 0, 0, 1 << 20);
    mg_cfg_node cond = mg_cfg_get(spec, "condition");
    if (mg_cfg_present(cond)) { /* the class embedding concatenated to the input, as layer 0 */
        static const char *const cond_kinds[] = {"concat"};
        mg_cfg_expect_mapping(cond);
        mg_cfg_choice(cond, "kind", cond_kinds, 1, -1);
        const int dim = (int)mg_cfg_int_req(cond, "dim", 1, 1 << 20);
        if (!net->n_classes)
            mg_cfg_fail(cond, "add classes: K (the data's class count) to this network",
                        "a condition needs the network's 'classes'");
        mg_layer *l = mg_net_push(net);
        snprintf(l->name + strlen(l->name), sizeof l->name - strlen(l->name), ".embed_concat");
        mg_embed_concat_make(l, in, dim);
    }

    mg_cfg_node layers = mg_cfg_require(spec, "layers");
    int n = mg_cfg_seq_len(layers);
    if (n == 0)
        mg_cfg_fail(layers, NULL, "the layer list is empty");
    char outer[400]; /* the caller's context (e.g. the config place of an extractor), restored below */
    snprintf(outer, sizeof outer, "%s", mg_error_context());
    for (int i = 0; i < n; i++) {
        mg_cfg_node ls = mg_cfg_seq_at(layers, i);
        mg_cfg_expect_mapping(ls);
        const char *kind = mg_cfg_as_string(mg_cfg_require(ls, "kind"));
        mg_shape tail = mg_net_tail_shape(net);
        mg_layer *l = mg_net_push(net);
        const char *user_name = mg_cfg_string(ls, "name", NULL);
        if (user_name)
            snprintf(l->name, sizeof l->name, "%s", user_name);
        else
            snprintf(l->name + strlen(l->name), sizeof l->name - strlen(l->name), ".%s", kind);
        mg_error_set_context(mg_cfg_where(ls, where, sizeof where));
        mg_layer_from_cfg(l, kind, ls, tail);
        l->frozen = mg_cfg_bool(ls, "frozen", false);
        mg_cfg_node init = mg_cfg_get(ls, "init");
        if (mg_cfg_present(init)) {
            l->init = mg_init_from_cfg(init, net->default_init);
            l->has_init = true;
        }
        mg_cfg_node act = mg_cfg_get(ls, "activation");
        if (mg_cfg_present(act))
            push_activation(net, act);
        mg_error_set_context(outer[0] ? outer : NULL);
    }
    mg_net_finish(net, max_batch);
}

void mg_net_init_params(mg_net *net, mg_rng *rng)
{
    memset(net->param, 0, net->n_param * sizeof(float));
    for (int i = 0; i < net->n_layers; i++) {
        mg_layer *l = &net->layers[i];
        if (l->ops->init)
            l->ops->init(l, l->has_init ? &l->init : &net->default_init, rng);
    }
}

const float *mg_net_forward(mg_net *net, const float *x, int n, mg_mode mode)
{
    MG_CHECK(n > 0 && n <= net->max_batch, net->name, "raise the batch the network was built for",
             "batch %d exceeds the network's capacity %d", n, net->max_batch);
    if (net->conditional) {
        MG_CHECK(net->next_labels, net->name, "call mg_net_set_labels before the forward pass",
                 "the network is class-conditional but has no labels");
        for (int i = 0; i < n; i++) {
            const int y = net->next_labels[i];
            MG_CHECK(y >= 0 && y < net->n_classes, net->name, "labels are 0 .. classes-1",
                     "label %d of sample %d is outside its %d classes", y, i, net->n_classes);
            net->labels[i] = y;
        }
    }
    net->input = x;
    net->last_batch = n;
    const float *in = x;
    for (int i = 0; i < net->n_layers; i++) {
        mg_layer *l = &net->layers[i];
        if (net->observe)
            net->observe(net->observe_ctx, net, i, in, n);
        l->ops->forward(l, in, net->act[i], n, mode);
        in = net->act[i];
    }
    return in;
}

float *mg_net_backward(mg_net *net, const float *dout, bool param_grads, bool want_dx)
{
    return mg_net_backward_hooked(net, dout, param_grads, want_dx, NULL, NULL);
}

float *mg_net_backward_hooked(mg_net *net, const float *dout, bool param_grads, bool want_dx, mg_backward_hook hook,
                              void *ctx)
{
    MG_CHECK(net->input, net->name, NULL, "backward called before forward");
    int n = net->last_batch;
    const float *dy = dout;
    int next = 0;
    float *dx = NULL;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        mg_layer *l = &net->layers[i];
        const float *x = i ? net->act[i - 1] : net->input;
        dx = (i > 0 || want_dx) ? net->delta[next] : NULL;
        l->ops->backward(l, x, net->act[i], dy, dx, n, param_grads && !l->frozen);
        if (hook && l->n_param > 0)
            hook(ctx, (size_t)(l->grad - net->grad));
        dy = dx;
        next ^= 1;
    }
    return dx;
}

void mg_net_check_batch(const mg_net *net, int n, const char *why)
{
    for (int i = 0; i < net->n_layers; i++) {
        const mg_layer *l = &net->layers[i];
        MG_CHECK(l->batch_multiple <= 1 || n % l->batch_multiple == 0, l->name,
                 "choose a batch (or group) so that the group divides it; groups never span ranks; "
                 "`mpigan nets` names the layers",
                 "needs batches in multiples of %d (its group), but gets %d (%s)", l->batch_multiple, n, why);
    }
}

void mg_net_zero_grad(mg_net *net) { memset(net->grad, 0, net->n_param * sizeof(float)); }

void mg_net_set_reduce(mg_net *net, mg_reduce_fn fn, void *ctx)
{
    for (int i = 0; i < net->n_layers; i++)
        if (!strcmp(net->layers[i].ops->kind, "batchnorm")) {
            net->layers[i].reduce = fn;
            net->layers[i].reduce_ctx = ctx;
        }
}

double mg_net_forward_macs(const mg_net *net)
{
    double macs = 0;
    for (int i = 0; i < net->n_layers; i++)
        macs += net->layers[i].macs;
    return macs;
}

void mg_net_print(const mg_net *net, FILE *f)
{
    size_t count = 0;
    for (int i = 0; i < net->n_layers; i++)
        count += net->layers[i].n_param;
    fprintf(f, "%s: input %dx%dx%d, %zu parameters", net->name, net->in.c, net->in.h, net->in.w, count);
    if (net->n_classes)
        fprintf(f, ", %d classes%s", net->n_classes, net->conditional ? "" : " (no layer reads them)");
    fprintf(f, "\n");
    for (int i = 0; i < net->n_layers; i++) {
        const mg_layer *l = &net->layers[i];
        fprintf(f, "  %-28s -> %4dx%3dx%3d  params %9zu%s\n", l->name, l->out.c, l->out.h, l->out.w,
                l->n_param, l->frozen ? "  (frozen)" : "");
    }
}

void mg_net_free(mg_net *net)
{
    for (int i = 0; i < net->n_layers; i++)
        mg_layer_destroy(&net->layers[i]);
    mg_free(net->layers);
    mg_free(net->param);
    mg_free(net->grad);
    mg_free(net->state);
    mg_free(net->act_mem);
    mg_free(net->act);
    mg_free(net->cache);
    mg_free(net->work);
    mg_free(net->delta[0]);
    mg_free(net->delta[1]);
    mg_free(net->labels);
    memset(net, 0, sizeof *net);
}

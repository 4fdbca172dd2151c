/* The frozen layers' parameter ranges of a network, saved and restored around an
 * optimizer step (see mg_frozen.h). */
#include "mg_frozen.h"

#include <string.h>

#include "mg_error.h"

void mg_frozen_init(mg_frozen *f, const mg_net *net)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].frozen && net->layers[i].n_param > 0)
            f->n++;
    f->off = mg_alloc(sizeof(size_t) * (size_t)(f->n + 1), "frozen ranges");
    f->len = mg_alloc(sizeof(size_t) * (size_t)(f->n + 1), "frozen ranges");
    int k = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const mg_layer *l = &net->layers[i];
        if (!l->frozen || l->n_param == 0)
            continue;
        f->off[k] = (size_t)(l->param - net->param);
        f->len[k] = l->n_param;
        f->total += l->n_param;
        k++;
    }
    f->saved = mg_alloc_floats(f->total + 1, "frozen parameters");
}

void mg_frozen_save(mg_frozen *f, const float *param)
{
    float *to = f->saved;
    for (int k = 0; k < f->n; to += f->len[k], k++)
        memcpy(to, param + f->off[k], f->len[k] * sizeof(float));
}

void mg_frozen_restore(const mg_frozen *f, float *param)
{
    const float *from = f->saved;
    for (int k = 0; k < f->n; from += f->len[k], k++)
        memcpy(param + f->off[k], from, f->len[k] * sizeof(float));
}

void mg_frozen_free(mg_frozen *f)
{
    mg_free(f->off);
    mg_free(f->len);
    mg_free(f->saved);
    memset(f, 0, sizeof *f);
}

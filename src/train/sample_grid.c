/* The training run's sample grids (see mg_sample_grid.h): fixed noise, G in evaluation
 * mode, one PNG per call. Kept out of train.c so the step loop only decides when. */
#include "mg_sample_grid.h"

#include <stdio.h>
#include <string.h>

#include "mg_error.h"
#include "mg_png_grid.h"
#include "mg_sample.h"
#include "mg_util.h"

bool mg_sample_grid_drawable(const mg_net *G)
{
    return (G->out.c == 1 || G->out.c == 3) && (G->out.h > 1 || G->out.w > 1);
}

void mg_sample_grid_init(mg_sample_grid *g, const mg_net *G, int n, uint64_t seed, const char *dir)
{
    memset(g, 0, sizeof *g);
    MG_CHECK(n > 0, dir, NULL, "a sample grid needs at least one sample, not %d", n);
    MG_CHECK(strlen(dir) < sizeof g->dir, dir, "choose a shorter run_dir", "path too long");
    g->n = n;
    snprintf(g->dir, sizeof g->dir, "%s", dir);
    g->z = mg_alloc_floats((size_t)n * mg_shape_size(G->in), "sample grid noise");
    g->images = mg_alloc_floats((size_t)n * mg_shape_size(G->out), "sample grid images");
    mg_sample_noise(g->z, n, mg_shape_size(G->in), seed);
    if (G->conditional) { /* one class per row, as `mpigan sample` draws them */
        g->labels = mg_alloc(sizeof(int) * (size_t)n, "sample grid labels");
        mg_sample_labels(g->labels, n, G->n_classes, -1);
    }
}

void mg_sample_grid_write(mg_sample_grid *g, mg_net *G, long step)
{
    mg_sample_eval(G, g->z, g->labels, g->n, g->images);
    mg_mkdir_p(g->dir);
    char path[1100];
    snprintf(path, sizeof path, "%s/step_%ld.png", g->dir, step);
    mg_png_grid_write(path, g->images, g->n, G->out.c, G->out.h, G->out.w);
}

void mg_sample_grid_free(mg_sample_grid *g)
{
    mg_free(g->z);
    mg_free(g->images);
    mg_free(g->labels);
    memset(g, 0, sizeof *g);
}

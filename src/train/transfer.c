/* Transfer learning: loading layers by name from another run's checkpoint, and keeping
 * frozen layers fixed (see mg_transfer.h). The checkpoint's own networks are rebuilt from
 * the config it stores, so the file's flat buffers can be cut into named layers without
 * a second description of the layout. */
#include "mg_transfer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_checkpoint.h"
#include "mg_dist.h"
#include "mg_error.h"

/* ---- config ---- */

mg_transfer_cfg mg_transfer_cfg_from(mg_cfg_node spec)
{
    mg_transfer_cfg c;
    memset(&c, 0, sizeof c);
    c.generator = c.discriminator = true;
    if (!mg_cfg_present(spec))
        return c;
    mg_cfg_expect_mapping(spec);
    mg_cfg_node from = mg_cfg_get(spec, "from");
    if (mg_cfg_present(from)) {
        const char *s = mg_cfg_as_string(from);
        if (!s[0] || strlen(s) >= sizeof c.from)
            mg_cfg_fail(from, "give the path of a checkpoint (ckpt_<step>.h5)", "bad path '%s'", s);
        snprintf(c.from, sizeof c.from, "%s", s);
    }
    mg_cfg_node networks = mg_cfg_get(spec, "networks");
    if (mg_cfg_present(networks)) {
        if (!c.from[0])
            mg_cfg_fail(networks, "add init.from: CKPT.h5", "init.networks without init.from");
        static const char *const names[] = {"generator", "discriminator"};
        int n = mg_cfg_seq_len(networks);
        if (n == 0)
            mg_cfg_fail(networks, "list generator and/or discriminator, or drop init.from", "empty list");
        c.generator = c.discriminator = false;
        for (int i = 0; i < n; i++) {
            mg_cfg_node item = mg_cfg_seq_at(networks, i);
            bool *slot = mg_cfg_as_choice(item, names, 2) == 0 ? &c.generator : &c.discriminator;
            if (*slot)
                mg_cfg_fail(item, NULL, "'%s' listed twice", mg_cfg_as_string(item));
            *slot = true;
        }
    }
    mg_cfg_node freeze = mg_cfg_get(spec, "freeze");
    if (mg_cfg_present(freeze)) {
        int n = mg_cfg_seq_len(freeze);
        if (n > MG_FREEZE_MAX)
            mg_cfg_fail(freeze, NULL, "%d layers listed, at most %d", n, MG_FREEZE_MAX);
        for (int i = 0; i < n; i++) {
            mg_cfg_node item = mg_cfg_seq_at(freeze, i);
            const char *s = mg_cfg_as_string(item);
            if (!s[0] || strlen(s) >= sizeof c.freeze[0])
                mg_cfg_fail(item, "`mpigan nets CONFIG` prints the layer names", "bad layer name '%s'", s);
            snprintf(c.freeze[i], sizeof c.freeze[i], "%s", s);
            mg_cfg_where(item, c.freeze_where[i], sizeof c.freeze_where[i]);
        }
        c.n_freeze = n;
    }
    return c;
}

/* ---- matching layers ---- */

static bool carries_values(const mg_layer *l) { return l->n_param + l->n_state > 0; }

static const mg_layer *find_layer(const mg_net *net, const char *name)
{
    for (int i = 0; i < net->n_layers; i++)
        if (!strcmp(net->layers[i].name, name))
            return &net->layers[i];
    return NULL;
}

static void describe(const mg_layer *l, char *buf, size_t size)
{
    snprintf(buf, size, "%s %dx%dx%d -> %dx%dx%d, %zu parameters", l->ops->kind, l->in.c, l->in.h, l->in.w, l->out.c,
             l->out.h, l->out.w, l->n_param);
}

mg_transfer_stats mg_transfer_match(mg_net *dst, const mg_net *src, FILE *report)
{
    mg_transfer_stats s = {0};
    for (int i = 0; i < dst->n_layers; i++) {
        mg_layer *l = &dst->layers[i];
        if (!carries_values(l))
            continue;
        const mg_layer *from = find_layer(src, l->name);
        bool fits = from && !strcmp(from->ops->kind, l->ops->kind) && from->n_param == l->n_param &&
                    from->n_state == l->n_state && !memcmp(&from->in, &l->in, sizeof l->in) &&
                    !memcmp(&from->out, &l->out, sizeof l->out);
        if (fits) {
            memcpy(l->param, from->param, l->n_param * sizeof(float));
            memcpy(l->state, from->state, l->n_state * sizeof(float));
            s.loaded++;
            continue;
        }
        s.skipped++;
        if (!report)
            continue;
        char here[160], there[160];
        describe(l, here, sizeof here);
        if (!from) {
            fprintf(report, "  %-24s skipped: not in the checkpoint (here: %s)\n", l->name, here);
        } else {
            describe(from, there, sizeof there);
            fprintf(report, "  %-24s skipped: shapes differ (here: %s; checkpoint: %s)\n", l->name, here, there);
        }
    }
    for (int i = 0; i < src->n_layers; i++) {
        const mg_layer *l = &src->layers[i];
        if (!carries_values(l) || find_layer(dst, l->name))
            continue;
        s.unused++;
        if (report) {
            char there[160];
            describe(l, there, sizeof there);
            fprintf(report, "  %-24s unused: only in the checkpoint (%s)\n", l->name, there);
        }
    }
    return s;
}

/* ---- loading ---- */

/* The checkpoint's G (and D when want_d), rebuilt from its stored config and filled. */
static void build_source(const char *path, mg_net *G, mg_net *D, bool want_d)
{
    long step = 0;
    char *text = mg_ckpt_read_config(path, &step);
    char name[1200];
    snprintf(name, sizeof name, "%s:/meta/config", path);
    mg_cfg *cfg = mg_cfg_parse(text, name);
    mg_cfg_node root = mg_cfg_root(cfg);
    mg_net_from_cfg(G, "G", mg_cfg_require(root, "generator"), (mg_shape){0, 0, 0}, 1);
    mg_ckpt_read_net(path, "G", G);
    if (want_d) {
        /* D's input is the data's shape, which is G's output unless D declares it */
        mg_cfg_node dspec = mg_cfg_require(root, "discriminator");
        mg_shape in = mg_cfg_present(mg_cfg_get(dspec, "input")) ? (mg_shape){0, 0, 0} : G->out;
        /* a PacGAN source's D takes pack samples stacked along channels */
        mg_cfg_node pack_node = mg_cfg_get(mg_cfg_get(root, "train"), "pack");
        const int pack = mg_cfg_present(pack_node) ? (int)mg_cfg_as_int(pack_node, 1, 1024) : 1;
        mg_net_from_cfg_packed(D, "D", dspec, in, pack, 1);
        mg_ckpt_read_net(path, "D", D);
    }
    mg_cfg_free(cfg);
    mg_free(text);
}

static void load_one(const char *path, mg_net *dst, const mg_net *src, bool print, bool verbose)
{
    char *listing = NULL;
    size_t size = 0;
    FILE *report = open_memstream(&listing, &size);
    MG_CHECK(report, "init.from", NULL, "open_memstream failed: %s", strerror(errno));
    mg_transfer_stats s = mg_transfer_match(dst, src, report);
    MG_CHECK(fclose(report) == 0, "init.from", NULL, "report stream failed");
    if (print && (s.skipped || s.unused))
        fprintf(stderr, "init: %s from %s: %d layer%s loaded, %d skipped, %d unused:\n%s", dst->name, path, s.loaded,
                s.loaded == 1 ? "" : "s", s.skipped, s.unused, listing);
    else if (print && verbose)
        printf("init: %s from %s: all %d layers loaded\n", dst->name, path, s.loaded);
    free(listing);
    MG_CHECK(s.loaded > 0, path, "layers match by name, kind and shape; `mpigan nets CONFIG` prints the names",
             "init.from: no layer of %s matched the checkpoint's %s", dst->name, src->name);
}

void mg_transfer_load(const mg_transfer_cfg *cfg, mg_net *G, mg_net *D, bool verbose)
{
    if (!cfg->from[0])
        return;
    /* collective existence check: a path one rank cannot read stops every rank alike */
    bool readable = access(cfg->from, R_OK) == 0;
    const char *why = readable ? "" : strerror(errno);
    if (mg_dist_any(!readable)) {
        if (!readable)
            MG_FAIL(cfg->from, "init.from must name a checkpoint every rank can read",
                    "init.from: cannot read the checkpoint: %s", why);
        MG_FAIL(cfg->from, "init.from must name a checkpoint every rank can read",
                "init.from: another rank cannot read the checkpoint");
    }
    const bool print = mg_dist_rank() == 0;
    mg_net src_g, src_d;
    memset(&src_d, 0, sizeof src_d);
    build_source(cfg->from, &src_g, &src_d, cfg->discriminator);
    if (cfg->generator)
        load_one(cfg->from, G, &src_g, print, verbose);
    if (cfg->discriminator)
        load_one(cfg->from, D, &src_d, print, verbose);
    mg_net_free(&src_g);
    if (cfg->discriminator)
        mg_net_free(&src_d);
    if (print)
        fflush(stdout), fflush(stderr);
}

/* ---- freezing ---- */

static void append_names(const mg_net *net, char *buf, size_t size)
{
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].n_param > 0) {
            size_t len = strlen(buf);
            bool first = buf[len - 1] == ' ';
            snprintf(buf + len, size - len, "%s%s", first ? "" : ", ", net->layers[i].name);
        }
}

void mg_transfer_freeze(const mg_transfer_cfg *cfg, mg_net *G, mg_net *D)
{
    mg_net *nets[2] = {G, D};
    for (int k = 0; k < cfg->n_freeze; k++) {
        const char *name = cfg->freeze[k];
        int found = 0, with_params = 0;
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < nets[n]->n_layers; i++) {
                mg_layer *l = &nets[n]->layers[i];
                if (strcmp(l->name, name))
                    continue;
                found++;
                if (l->n_param > 0)
                    with_params++, l->frozen = true;
            }
        if (!with_params) {
            char names[2048] = "layers with parameters: ";
            append_names(G, names, sizeof names);
            append_names(D, names, sizeof names);
            MG_FAIL(cfg->freeze_where[k], names, "init.freeze: %s '%s'",
                    found ? "no parameters to freeze in layer" : "no layer named", name);
        }
    }
}

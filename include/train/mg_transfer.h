/* Transfer learning: starting a run from another run's weights, and frozen layers.
 *
 * init: {from: CKPT.h5, networks: [generator, discriminator], freeze: [NAME, ...]}
 *
 * Loading (fresh runs only; on --resume the run's own checkpoint wins): the checkpoint's
 * stored config rebuilds its G and D, and every layer of this run's networks takes the
 * parameters and BatchNorm running statistics of the checkpoint's layer with the SAME
 * NAME (mpigan nets CONFIG prints them: "G.0.linear", or a layer's own `name`) when its
 * kind, input and output shapes and sizes agree. The others keep their fresh
 * initialisation and are listed on rank 0 (missing from the checkpoint, other shape,
 * other kind; and checkpoint layers nothing here took), so a generator can be loaded
 * into a wider or narrower net partially. A chosen network of which no layer matched is
 * an error. Every rank reads the file (the existence check is collective, so a bad path
 * stops every rank with the same message); the trainer then broadcasts rank 0's
 * replicas as usual.
 *
 * Freezing: the named layers (or per layer `frozen: true` in a network's config) get no
 * parameter gradients, and their parameters are put back bit for bit after every
 * optimizer step (mg_frozen.h), so neither weight decay, momentum nor weight clipping moves
 * them. Their BatchNorm running statistics still follow the data in training mode, as
 * with requires_grad=False in PyTorch. */
#ifndef MG_TRANSFER_H
#define MG_TRANSFER_H

#include <stdbool.h>
#include <stdio.h>

#include "mg_cfg.h"
#include "mg_frozen.h" /* what the trainer keeps the frozen layers fixed with */
#include "mg_net.h"

#define MG_FREEZE_MAX 64

typedef struct {
    char from[1024];                  /* checkpoint to load; "" = none */
    bool generator, discriminator;    /* init.networks (default both) */
    int n_freeze;
    char freeze[MG_FREEZE_MAX][64];   /* init.freeze: layer names */
    char freeze_where[MG_FREEZE_MAX][160]; /* their config places, for errors */
} mg_transfer_cfg;

/* Reads the top-level init section (absent: nothing to load or freeze). Errors name the
 * key. The path is not opened here. */
mg_transfer_cfg mg_transfer_cfg_from(mg_cfg_node spec);

/* Per-network outcome of a load. */
typedef struct {
    int loaded;     /* layers whose parameters/state came from the checkpoint */
    int skipped;    /* layers of dst with parameters or state that kept their own values */
    int unused;     /* layers of src with parameters or state that nothing took */
} mg_transfer_stats;

/* Copies into dst the param and state of every layer of src with the same name, kind
 * and shapes; writes one line per skipped or unused layer to report (may be NULL). */
mg_transfer_stats mg_transfer_match(mg_net *dst, const mg_net *src, FILE *report);

/* Loads cfg->from into the chosen networks (see above). Collective. Rank 0 lists
 * mismatches on stderr and, when verbose, a summary on stdout. */
void mg_transfer_load(const mg_transfer_cfg *cfg, mg_net *G, mg_net *D, bool verbose);

/* Marks the layers cfg->freeze names frozen. A name that is no layer of G or D, or a
 * layer without parameters, is an error naming the config place and the valid names. */
void mg_transfer_freeze(const mg_transfer_cfg *cfg, mg_net *G, mg_net *D);

#endif

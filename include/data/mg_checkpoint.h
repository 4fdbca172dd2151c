/* Training checkpoints: the ONLY module that knows their HDF5 layout.
 *
 * One file per checkpoint, dir/ckpt_<step, 9 digits>.h5:
 *   /meta            attributes format = "mpigan-checkpoint", format_version, step, n_ranks,
 *                    data_items, noise_items (the trainer's item counters)
 *   /meta/config     the resolved config text (a string dataset)
 *   /G/param /G/state /D/param /D/state         float32 (n) flat network buffers
 *   /G/opt_m /G/opt_v /D/opt_m /D/opt_v         float32 (n), those the optimizer has;
 *                                               attributes opt_kind and opt_step on /G, /D
 *   /G_ema/param /G_ema/state                   float32 (n): the generator EMA (mg_ema.h),
 *                                               only for runs with train.ema
 *   /rng/noise       uint32 (n_ranks, MG_RNG_WORDS): every rank's noise stream
 *   /loader/state    uint64 (MG_LOADER_STATE_WORDS): the HDF5 data loader's position
 *                    (mg_loader_state, rank 0's copy); attributes sampler ("global" or
 *                    "shard") and fields (the words' names). Only for HDF5 data.
 *   /augment/adaptive float64 (MG_CKPT_ADA_WORDS): the adaptive augmentation's state
 *                    (p, the sum of observed signs and the count of observations since
 *                    its last adjustment, the last r_t; attribute fields names them). Only for runs
 *                    with train.augment.adaptive.
 * and dir/latest, a one-line text file naming the newest complete checkpoint.
 *
 * Writing (rank 0 only) is atomic: a temporary file is written, flushed, fsync'ed and
 * renamed; then `latest` is replaced the same way, so a crash at any moment leaves the
 * previous checkpoint and pointer intact. Only the newest keep_last files are kept.
 * Reading validates before trusting: a truncated, foreign or mismatched file (other
 * networks, other optimizer) is refused with an error naming the file and dataset.
 * Every HDF5 call is checked (HDF5's own error printing is switched off). */
#ifndef MG_CHECKPOINT_H
#define MG_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_ema.h"
#include "mg_loader.h"
#include "mg_net.h"
#include "mg_optim.h"
#include "mg_rng.h"

#define MG_CKPT_FORMAT_VERSION 1
#define MG_RNG_WORDS 13
#define MG_CKPT_ADA_WORDS 4

/* What a checkpoint holds. Writing reads every field; reading fills the buffers of G, D
 * and the optimizers in place (their sizes must match the file) and sets the rest.
 * rng_words: n_ranks * MG_RNG_WORDS words, owned by the caller (read: allocated by
 * mg_ckpt_read when NULL, release with mg_free). config_text: read allocates (mg_free). */
typedef struct {
    long step;
    int n_ranks;
    uint64_t data_items, noise_items;
    mg_net *G, *D;
    mg_optim *opt_g, *opt_d;
    uint32_t *rng_words;
    char *config_text;
    bool has_loader_state;          /* HDF5 data: /loader/state is (to be) in the file */
    uint64_t loader_state[MG_LOADER_STATE_WORDS];
    char loader_sampler[16];        /* "global" | "shard" */
    mg_ema *ema;                    /* write: /G_ema from it when non-NULL; read: filled when
                                       non-NULL and the file has /G_ema (has_ema says so) */
    bool has_ema;
    bool has_ada;                   /* /augment/adaptive is (to be) in the file */
    double ada[MG_CKPT_ADA_WORDS];  /* p, sign sum, observations, last r_t (mg_ada.h) */
} mg_ckpt;

/* Serialises an RNG into MG_RNG_WORDS words and back (bit-exact). */
void mg_rng_to_words(const mg_rng *r, uint32_t *words);
void mg_rng_from_words(mg_rng *r, const uint32_t *words);

/* Writes dir/ckpt_<step>.h5 atomically, points dir/latest at it, removes all but the
 * newest keep_last. Creates dir (and parents). Call on one rank. Returns nothing; any
 * failure is fatal (the previous checkpoint stays intact). */
void mg_ckpt_write(const char *dir, const mg_ckpt *c, int keep_last);

/* Path of the checkpoint dir/latest names, into path; false when there is none. A
 * `latest` naming a missing file is an error. */
bool mg_ckpt_latest(const char *dir, char *path, size_t size);

/* Reads and validates path into c (see mg_ckpt). */
void mg_ckpt_read(const char *path, mg_ckpt *c);

/* Reads only the config text (allocated, mg_free) and step; for `mpigan sample`. */
char *mg_ckpt_read_config(const char *path, long *step);

/* Reads one network's param and state from a checkpoint into net ("G", "D" or "G_ema").
 * A missing group is an error naming it (for G_ema: the run had no train.ema). */
void mg_ckpt_read_net(const char *path, const char *which, mg_net *net);

/* True when the checkpoint holds the network group which ("G_ema": an EMA generator). */
bool mg_ckpt_has_net(const char *path, const char *which);

#endif

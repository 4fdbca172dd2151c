/* The GAN trainer's own state, shared by its files (not a public header):
 *   train.c         the step loop: D and G updates, the end-of-step actions
 *   train_setup.c   building a trainer from its config, and freeing it
 *   train_resume.c  writing checkpoints and resuming from them
 *   train_log.c     the log line and the metrics.jsonl record
 * See mg_train.h for what the trainer does. */
#ifndef MG_TRAINER_H
#define MG_TRAINER_H

#include <stdio.h>

#include "mg_ada.h"
#include "mg_grad_overlap.h"
#include "mg_penalty.h"
#include "mg_replica.h"
#include "mg_sample_grid.h"
#include "mg_train.h"
#include "mg_train_eval.h"
#include "mg_transfer.h"

/* What each update's reduction carries after the gradient (mg_replica_tail): the loss,
 * D's mean outputs on real and fake samples, the stop request every rank must agree
 * on, D's gradient penalty and the mean sign of D's outputs on real samples (D updates;
 * the adaptive augmentation's observation); with bn: local, the running statistics to
 * average follow. */
enum { X_LOSS, X_STAT_REAL, X_STAT_FAKE, X_STOP, X_PENALTY, X_REAL_SIGN, EXTRA };

struct mg_trainer {
    mg_cfg *cfg;
    mg_train_cfg tc;
    char *resolved;              /* resolved config text (checkpoints, run_dir/config.yaml) */
    int rank, size, local;       /* local = batch / size */
    int d_batch;                 /* D's inputs per rank: local / pack (PacGAN packs of samples) */
    int micro, d_micro;          /* train.accumulate: samples and D inputs per micro-batch (local / k,
                                    d_batch / k); G and D are built for these */
    mg_net G, D;
    mg_optim opt_g, opt_d;
    mg_rng noise_rng;            /* noise_streams: per_rank only */
    uint64_t data_items, noise_items;  /* items of the global sequences drawn so far */
    long step;                   /* steps completed */
    mg_shape data_shape;
    size_t noise_dim;
    mg_loader *loader;           /* HDF5 data; NULL for in-memory sources */
    float *real, *z, *dlogit;    /* local batch (local, ...); real: in-memory sources */
    /* class conditioning (G or D reads labels): the data's classes, this rank's real and
     * fake labels (local each; G's labels are y_fake), and with fake_labels: data the
     * file's cumulative class counts (n_classes; the last is the total) */
    int n_classes;
    bool conditional;
    int *y_real, *y_fake;
    uint64_t *label_cum;
    const float *real_batch;     /* this D update's real samples (real, or the loader's buffer) */
    mg_replica rep_d, rep_g;     /* each update's reduction: [gradient | EXTRA | averaged states] */
    size_t avg_d, avg_g;         /* bn: local: state floats averaged in D's (D) and G's (G, D) reduction */
    mg_augment aug;              /* train.augment: the last augmented batch's draws */
    float *aug_real, *aug_fake;  /* train.augment: what D judges of a micro-batch */
    float *aug_dx;               /* the G step's gradient back through the augmentation */
    mg_ada ada;                  /* the augmentation probability in use (ada.p; steered with
                                    train.augment.adaptive, else train.augment.p throughout) */
    uint64_t real_first, fake_first; /* global item index of this rank's first real / fake sample */
    float *snap_d, *snap_g;      /* BatchNorm state before an update, for nan_policy: skip */
    bool verbose, replicas_equal;
    FILE *metrics;
    /* seconds since the last log line: compute (forward, backward, optimizer; without the
     * communication inside them), gradient reduction, data, waiting for the slowest rank
     * where the ranks meet (measure_wait), sync-BatchNorm sums */
    double t_compute, t_reduce, t_data, t_wait, t_bn;
    double compute_t0, compute_comm0;   /* open compute interval (compute_begin) */
    mg_grad_overlap ov_d, ov_g;         /* train.overlap */
    double overlap_logged;              /* overlap_comm already moved to t_reduce */
    mg_loader_stats loader_logged;      /* loader totals at the last log line */
    mg_sample_grid grid;                /* rank 0, image data, sample_interval > 0 */
    bool grid_on;
    mg_train_eval *eval;                /* eval.interval > 0 */
    mg_ema ema;                         /* train.ema: the averaged G (tc.ema.on) */
    bool ema_resumed;                   /* rank 0: the EMA came from the checkpoint */
    mg_frozen frozen_g, frozen_d;       /* frozen layers' parameters, kept through the steps */
    mg_penalty pen;                     /* D's gradient penalties (tc.penalty), when any is on */
    double penalty_d;                   /* the last reduced penalty value (metrics: penalty_d) */
    float *g_state_keep;                /* accumulate > 1 with reused fakes: G's state around re-forwards */
};


/* One step's numbers, for the log. */
typedef struct {
    float loss_d, loss_g, d_real, d_fake;
    double norm_d, norm_g;
    float lr_d, lr_g;
    bool stop;
} step_stats;

/* "global" or "shard": the loader's sampler, as checkpoints and messages name it. */
const char *mg_trainer_sampler_name(const mg_train_cfg *tc);
/* Sync BatchNorm's reduce callback (ctx: the trainer): the wait, then the sum, timed. */
void mg_trainer_bn_reduce(double *buf, int n, void *ctx);
/* Collective: true when every rank holds the same G and D; else says so (rank 0). */
bool mg_trainer_check_replicas(mg_trainer *t, const char *when);

/* train_resume.c: writes a checkpoint of the step just completed (collective; rank 0
 * writes); loads the newest checkpoint on rank 0 and broadcasts it, false when there is
 * none. */
void mg_trainer_save_checkpoint(mg_trainer *t);
bool mg_trainer_resume(mg_trainer *t);

/* train_log.c: the log line (rank 0) and the metrics record of a window of steps
 * (collective: every rank logs at the same steps). */
void mg_trainer_log_step(mg_trainer *t, const step_stats *s, long steps_in_window, double window_seconds);

#endif

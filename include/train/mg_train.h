/* Data-parallel GAN training: the trainer's configuration and its step loop.
 *
 * Every rank holds replicas of G and D. Each step runs n_critic D steps and one G step;
 * each of those is forward/backward over this rank's slice of the global batch, then ONE
 * allreduce (average) of the network's flat gradient with a few statistics appended
 * (losses, D outputs, the stop flag), then the optimizer step. Gradients are checked for
 * NaN/Inf after the reduction, so every rank reaches the same verdict without another
 * message. docs/training.md describes the schedule, the noise schemes and the files a
 * run writes.
 *
 * Equivalence across rank counts: with noise_streams: global (the default), sample i of
 * global batch t gets the same data and the same noise whatever the number of ranks
 * (each item draws from its own counter-based stream, see mg_batch_streams.h), so with
 * bn: sync a run on N ranks follows the one-rank run up to float rounding. Real samples
 * come from the HDF5 loader (mg_loader.h; with its global sampler, global batch t holds
 * the same samples on any number of ranks, and its position is checkpointed) or from an
 * in-memory source (mg_mem_data.h). Rank 0 writes a PNG grid of G's samples on a fixed
 * noise batch every sample_interval steps (mg_sample_grid.h). */
#ifndef MG_TRAIN_H
#define MG_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "mg_cfg.h"
#include "mg_ema.h"
#include "mg_loader.h"
#include "mg_augment.h"
#include "mg_loss.h"
#include "mg_mem_data.h"
#include "mg_net.h"
#include "mg_optim.h"
#include "mg_penalty.h"
#include "mg_replica.h"
#include "mg_sched.h"
#include "mg_train_eval.h"
#include "mg_transfer.h"

typedef enum { MG_NOISE_GLOBAL, MG_NOISE_PER_RANK } mg_noise_streams;
/* Where class-conditional runs draw G's labels from: uniform over the classes, or the data's
 * class frequencies. */
typedef enum { MG_FAKE_LABELS_UNIFORM, MG_FAKE_LABELS_DATA } mg_fake_labels;

/* Everything the trainer reads from the config, with defaults filled in. Owned strings
 * live in fixed buffers; the struct holds no pointers. */
typedef struct {
    /* train: */
    mg_gan_loss loss;
    int n_critic;            /* D steps per G step, >= 1 (default 1) */
    int batch;               /* global batch, divisible by the rank count */
    long steps;              /* G steps of the whole run */
    uint64_t seed;
    bool g_reuse_fakes;      /* g_step_noise: reuse (default) | fresh */
    float clip;              /* WGAN weight clipping bound; 0 = none */
    bool bn_sync;            /* bn: sync (default) | local */
    long log_interval;
    bool nan_stop;           /* nan_policy: stop (default) | skip */
    mg_noise_streams noise;  /* noise_streams: global (default) | per_rank */
    long sample_interval;    /* PNG sample grid every K steps (image data); 0 = off (default 500) */
    int threads;             /* OpenBLAS and oneDNN threads per rank; 0 = automatic (mg_blas_threads.h) */
    mg_backend backend;      /* backend: onednn (default) | blas: how G's and D's layers with weights compute */
    mg_precision precision;  /* precision: fp32 (default) | bf16 (the products' inputs; oneDNN only) */
    mg_reduce_path reduce;   /* reduce: node (default) | mpi: how gradients are averaged (mg_replica.h) */
    bool overlap;            /* overlap.enabled: bucketed non-blocking gradient sums during backward (false) */
    float bucket_mb;         /* overlap.bucket_mb: bucket size in MiB (4) */
    bool measure_wait;       /* measure_wait: timed barrier before each gradient reduction (true) */
    int pack;                /* PacGAN: D judges pack samples at once (default 1); divides batch / ranks */
    mg_fake_labels fake_labels; /* fake_labels: uniform (default) | data; conditional networks only */
    mg_augment_cfg augment;     /* augment: DiffAugment of D's inputs (mg_augment.h); off by default */
    int accumulate;          /* micro-batches per optimizer step (default 1); divides batch / ranks */
    mg_penalty_cfg penalty;  /* r1_gamma, r1_every, r2_gamma, gp_lambda (mg_penalty.h) */
    /* optimizer_g, optimizer_d, schedule_g, schedule_d */
    mg_opt_cfg opt_g, opt_d;
    mg_sched sched_g, sched_d;
    /* data: */
    mg_data_source source;
    mg_loader_cfg loader;    /* source MG_DATA_HDF5: the data section (mg_loader_cfg_from) */
    /* checkpoint: */
    char ckpt_dir[512];      /* default run_dir/checkpoints */
    long ckpt_interval;      /* steps between checkpoints; 0 = only at the end and on a signal */
    int keep_last;
    char run_dir[512];
    /* debug: */
    long check_replicas;       /* compare replica checksums every K steps (0: only at the start, before
                                  each checkpoint and at the end) */
    long inject_nan_at_step;   /* -1: never; else NaN into D's gradient on the last rank */
    long stop_at_step;         /* -1: never; else behave as if SIGTERM came during that step */
    long diverge_at_step;      /* -1: never; else the last rank's G moves by 1e-3 after that step */
    /* eval: (mg_train_eval.h) */
    mg_train_eval_cfg eval;
    /* train.ema: generator EMA (mg_ema.h); init: transfer learning (mg_transfer.h) */
    mg_ema_cfg ema;
    mg_transfer_cfg init;
} mg_train_cfg;

/* Reads every trainer section of cfg (not the networks) with types and ranges checked;
 * errors name file:line:col and the key. n_ranks is needed for the batch split check. */
void mg_train_cfg_read(mg_train_cfg *tc, mg_cfg *cfg, int n_ranks);

/* The resolved config as YAML text: the generator and discriminator sections as given
 * (after --set overrides), every trainer setting with its default filled in. Returns an
 * allocated string (mg_free). Parsing it back gives the same run. */
char *mg_train_cfg_resolved(const mg_train_cfg *tc, mg_cfg *cfg);

/* How a run ended. */
typedef enum {
    MG_TRAIN_DONE = 0,       /* all steps taken */
    MG_TRAIN_STOPPED = 1,    /* SIGTERM/SIGUSR1 (or debug.stop_at_step): checkpoint written */
    MG_TRAIN_NAN = 2,        /* NaN/Inf with nan_policy: stop; no checkpoint of the bad step */
    MG_TRAIN_DIVERGED = 3,   /* replicas differ at a check: stopped there, no checkpoint of them */
} mg_train_status;

typedef struct {
    mg_train_status status;
    long step;                  /* steps completed */
    long skipped_d, skipped_g;  /* updates skipped for NaN/Inf (nan_policy: skip) */
    float loss_d, loss_g;       /* of the last step */
    bool losses_finite;         /* every logged loss was finite */
    bool replicas_equal;        /* checksums agreed at every check */
} mg_train_result;

typedef struct mg_trainer mg_trainer;

/* Builds the trainer from a loaded config (overrides already applied): reads and checks
 * the config (mg_cfg_check_unused included), sets OpenBLAS threads (mg_blas_threads.h),
 * builds G and D, opens the HDF5 loader for D's input shape (collective validation),
 * initialises G and D on rank 0 and broadcasts, or with resume loads the newest complete
 * checkpoint (a fresh start when there is none), loader position included. Collective.
 * verbose: rank 0 prints progress. */
mg_trainer *mg_trainer_create(mg_cfg *cfg, bool resume, bool verbose);
/* Runs the remaining steps. Collective. */
mg_train_result mg_trainer_run(mg_trainer *t);
/* The replicas (read-only use: tests compare parameters). */
const mg_net *mg_trainer_G(const mg_trainer *t);
const mg_net *mg_trainer_D(const mg_trainer *t);
/* The last update's gradient of net (G or D of this trainer), reduced over the ranks: the
 * mean over the global batch, n_param floats, the same on every rank. */
const float *mg_trainer_last_gradient(const mg_trainer *t, const mg_net *net);
/* Sets fn to observe every forward pass of G and D (mg_forward_observer); NULL: none. */
void mg_trainer_observe(mg_trainer *t, mg_forward_observer fn, void *ctx);
/* The generator EMA (train.ema), NULL when off. */
const mg_ema *mg_trainer_ema(const mg_trainer *t);
/* The augmentation probability in use (train.augment.p, or its adaptive value). */
double mg_trainer_augment_p(const mg_trainer *t);
void mg_trainer_free(mg_trainer *t);

/* Installs SIGTERM and SIGUSR1 handlers that ask the run to stop after the current
 * step (the request is agreed over ranks in the step's gradient reduction). */
void mg_train_install_signal_handlers(void);

/* `mpigan train CONFIG.yaml`: the trainer from the command line (src/train/train_cmd.c).
 * A command as mg_cmd.h defines it. */
int mg_cmd_train(int argc, char **argv);

#endif

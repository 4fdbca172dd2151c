/* Checkpoints of the GAN trainer: what a step leaves behind (G, D, their optimizers, every
 * rank's noise stream, the item counters, the loader's position, the EMA), and resuming
 * from the newest one, on the same or (global streams and sampler) another number of
 * ranks. The file format is mg_checkpoint.h's; this file decides what goes in it. */
#include <stdio.h>
#include <string.h>

#include "mg_checkpoint.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "trainer.h"

void mg_trainer_save_checkpoint(mg_trainer *t)
{
    /* every rank's noise stream, gathered through a sum of exact small integers */
    const size_t words = (size_t)t->size * MG_RNG_WORDS;
    double *gather = mg_alloc(sizeof(double) * words, "RNG gather");
    uint32_t mine[MG_RNG_WORDS], *all = mg_alloc(sizeof(uint32_t) * words, "RNG states");
    mg_rng_to_words(&t->noise_rng, mine);
    for (int w = 0; w < MG_RNG_WORDS; w++)
        gather[(size_t)t->rank * MG_RNG_WORDS + w] = (double)mine[w];
    mg_dist_allreduce_sum_f64(gather, words);
    for (size_t i = 0; i < words; i++)
        all[i] = (uint32_t)gather[i];
    if (t->rank == 0) {
        mg_ckpt c = {.step = t->step, .n_ranks = t->size, .data_items = t->data_items, .noise_items = t->noise_items,
                     .G = &t->G, .D = &t->D, .opt_g = &t->opt_g, .opt_d = &t->opt_d, .rng_words = all,
                     .config_text = t->resolved, .ema = t->tc.ema.on ? &t->ema : NULL,
                     .has_ada = t->tc.augment.adaptive.on,
                     .ada = {t->ada.p, t->ada.sign_sum, (double)t->ada.seen, t->ada.last_rt}};
        if (t->loader) {
            /* the same on every rank (but for informational epoch fields): rank 0's is enough */
            mg_loader_state st;
            mg_loader_get_state(t->loader, &st);
            memcpy(c.loader_state, &st, sizeof st);
            snprintf(c.loader_sampler, sizeof c.loader_sampler, "%s",
                     mg_trainer_sampler_name(&t->tc));
            c.has_loader_state = true;
        }
        mg_ckpt_write(t->tc.ckpt_dir, &c, t->tc.keep_last);
        if (t->verbose)
            printf("checkpoint: step %ld -> %s/ckpt_%09ld.h5\n", t->step, t->tc.ckpt_dir, t->step);
    }
    mg_free(gather);
    mg_free(all);
}

static void bcast_optim(mg_optim *o)
{
    if (o->m)
        mg_dist_bcast(o->m, o->n * sizeof(float));
    if (o->v)
        mg_dist_bcast(o->v, o->n * sizeof(float));
    mg_dist_bcast(&o->step, sizeof o->step);
}

/* Rank 0: the checkpoint's data position fits this run (HDF5 data: the loader state is
 * there and agrees with the trainer's item counter; in-memory data: there is none). */
static void check_loader_state(const mg_trainer *t, const char *path, const mg_ckpt *c)
{
    if (!t->loader) {
        MG_CHECK(!c->has_loader_state, path, "resume with the data section the run started with",
                 "/loader/state: the checkpoint was trained on HDF5 data (sampler %s), "
                 "this config's data are in memory", c->loader_sampler);
        return;
    }
    MG_CHECK(c->has_loader_state, path, "resume with the data section the run started with",
             "no /loader/state: the checkpoint was trained on in-memory data, this config reads %s",
             t->tc.loader.path);
    const char *sampler = mg_trainer_sampler_name(&t->tc);
    MG_CHECK(!strcmp(c->loader_sampler, sampler), path, "resume with the data section the run started with",
             "/loader/state: the checkpoint's sampler is %s, this config's data.sampler is %s", c->loader_sampler,
             sampler);
    mg_loader_state st;
    memcpy(&st, c->loader_state, sizeof st);
    MG_CHECK(st.step * (uint64_t)t->tc.batch == c->data_items, path, "the checkpoint is inconsistent; use an older one",
             "/loader/state is at batch %llu but /meta data_items says %llu samples of batch %d",
             (unsigned long long)st.step, (unsigned long long)c->data_items, t->tc.batch);
}

bool mg_trainer_resume(mg_trainer *t)
{
    char path[1200] = "";
    int found = t->rank == 0 ? mg_ckpt_latest(t->tc.ckpt_dir, path, sizeof path) : 0;
    mg_dist_bcast(&found, sizeof found);
    if (!found)
        return false;
    uint32_t *words = NULL;
    int64_t header[4] = {0};
    double ada[MG_CKPT_ADA_WORDS + 1] = {0}; /* the checkpoint's adaptive augmentation, then whether it had one */
    mg_loader_state loader_state = {0};
    if (t->rank == 0) {
        mg_ckpt c = {.G = &t->G, .D = &t->D, .opt_g = &t->opt_g, .opt_d = &t->opt_d,
                     .ema = t->tc.ema.on ? &t->ema : NULL};
        mg_ckpt_read(path, &c);
        t->ema_resumed = c.has_ema;
        MG_CHECK(c.n_ranks == t->size || t->tc.noise == MG_NOISE_GLOBAL, path,
                 "resume on the same number of ranks, or use noise_streams: global",
                 "written by %d ranks with per-rank noise streams; this run has %d", c.n_ranks, t->size);
        header[0] = c.step, header[1] = c.n_ranks, header[2] = (int64_t)c.data_items,
        header[3] = (int64_t)c.noise_items;
        check_loader_state(t, path, &c);
        memcpy(&loader_state, c.loader_state, sizeof loader_state);
        words = c.rng_words;
        memcpy(ada, c.ada, sizeof c.ada);
        ada[MG_CKPT_ADA_WORDS] = c.has_ada;
        if (t->tc.augment.adaptive.on && !c.has_ada)
            fprintf(stderr, "mpigan: %s has no adaptive augmentation state: p starts again at train.augment.p = %g\n",
                    path, (double)t->tc.augment.p);
        mg_free(c.config_text);
        if (t->verbose)
            printf("resuming from %s (step %ld)\n", path, c.step);
    }
    mg_dist_bcast(header, sizeof header);
    mg_dist_bcast(ada, sizeof ada);
    if (t->tc.augment.adaptive.on && ada[MG_CKPT_ADA_WORDS] != 0)
        t->ada = (mg_ada){.p = ada[0], .sign_sum = ada[1], .seen = (int)ada[2], .last_rt = ada[3]};
    t->step = (long)header[0];
    t->data_items = (uint64_t)header[2];
    t->noise_items = (uint64_t)header[3];
    const size_t n_words = (size_t)header[1] * MG_RNG_WORDS;
    if (!words)
        words = mg_alloc(sizeof(uint32_t) * n_words, "checkpoint RNG states");
    mg_dist_bcast(words, sizeof(uint32_t) * n_words);
    if (t->rank < header[1])
        mg_rng_from_words(&t->noise_rng, words + (size_t)t->rank * MG_RNG_WORDS);
    mg_free(words);
    if (t->loader) {
        mg_dist_bcast(&loader_state, sizeof loader_state);
        mg_loader_set_state(t->loader, &loader_state);
    }
    bcast_optim(&t->opt_g);
    bcast_optim(&t->opt_d);
    MG_CHECK(t->step <= t->tc.steps, path, "raise train.steps to continue training",
             "checkpoint is at step %ld, past the run's %ld steps", t->step, t->tc.steps);
    return true;
}

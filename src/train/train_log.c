/* The GAN trainer's log: a progress line on rank 0 and one metrics.jsonl record per
 * window of steps (losses, gradient norms, learning rates, throughput, the time split into
 * compute, reduction, data, waiting and sync-BN sums, stragglers, memory, the loader's
 * counters). Field names are documented in docs/training.md. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "mg_dist.h"
#include "mg_error.h"
#include "mg_text.h"
#include "trainer.h"

void mg_trainer_log_step(mg_trainer *t, const step_stats *s, long steps_in_window, double window_seconds)
{
    /* The window's time split, averaged over ranks (each rank's parts add up to about the
     * window's wall time, so the means do too), the fastest and the slowest rank's compute
     * and which rank that is (a straggler on a bad node shows as the same rank, window
     * after window), and the peak RSS (KiB on Linux) over ranks. Collective: every rank
     * logs at the same steps. */
    struct rusage ru;
    MG_CHECK(getrusage(RUSAGE_SELF, &ru) == 0, "getrusage", NULL, "failed: %s", strerror(errno));
    double mean[6] = {t->t_compute, t->t_reduce, t->t_data, t->t_wait, t->t_bn, (double)ru.ru_maxrss};
    double max[2] = {(double)ru.ru_maxrss, -t->t_compute}; /* min compute = -max(-compute) */
    int slowest_rank = 0;
    const double compute_max = mg_dist_maxloc(t->t_compute, &slowest_rank);
    mg_dist_allreduce_sum_f64(mean, 6);
    mg_dist_allreduce_max_f64(max, 2);
    const double compute_min = -max[1];
    for (int i = 0; i < 6; i++)
        mean[i] /= t->size;
    t->t_compute = t->t_reduce = t->t_data = t->t_wait = t->t_bn = 0;
    /* the loader's thread: slowest rank's read and decode seconds, all ranks' bytes */
    double read = 0, decode = 0, bytes = 0;
    if (t->loader) {
        mg_loader_stats st;
        mg_loader_get_stats(t->loader, &st);
        read = mg_dist_max(st.read_s - t->loader_logged.read_s);
        decode = mg_dist_max(st.decode_s - t->loader_logged.decode_s);
        bytes = (double)(st.bytes_read - t->loader_logged.bytes_read);
        mg_dist_allreduce_sum_f64(&bytes, 1);
        t->loader_logged = st;
    }
    if (t->rank != 0)
        return;
    const double images = (double)steps_in_window * t->tc.batch * t->tc.n_critic;
    const double ips = window_seconds > 0 ? images / window_seconds : 0;
    const double eta = steps_in_window > 0 ? window_seconds / steps_in_window * (double)(t->tc.steps - t->step) : 0;
    if (t->verbose) {
        long e = (long)eta;
        printf("step %7ld/%ld  %8.0f img/s  ETA %ld:%02ld:%02ld  loss D %.4f G %.4f  D(x) %.3f D(G(z)) %.3f", t->step,
               t->tc.steps, ips, e / 3600, e / 60 % 60, e % 60, s->loss_d, s->loss_g, s->d_real, s->d_fake);
        if (t->tc.augment.adaptive.on)
            printf("  augment p %.4f (r_t %.3f)", t->ada.p, t->ada.last_rt);
        printf("\n");
        fflush(stdout);
    }
    mg_text line = {0};
    mg_json j;
    mg_json_begin(&j, &line, 7);
    mg_json_int(&j, "step", t->step);
    mg_json_num(&j, "loss_d", s->loss_d);
    mg_json_num(&j, "loss_g", s->loss_g);
    mg_json_num(&j, "d_real", s->d_real);
    mg_json_num(&j, "d_fake", s->d_fake);
    mg_json_num(&j, "grad_norm_d", s->norm_d);
    mg_json_num(&j, "grad_norm_g", s->norm_g);
    if (mg_penalty_any(&t->tc.penalty))
        mg_json_num(&j, "penalty_d", t->penalty_d);
    if (t->tc.augment.adaptive.on) {
        mg_json_num(&j, "augment_p", t->ada.p);
        mg_json_num(&j, "augment_rt", t->ada.last_rt);
    }
    mg_json_num(&j, "lr_d", s->lr_d);
    mg_json_num(&j, "lr_g", s->lr_g);
    mg_json_num(&j, "images_per_s", ips);
    mg_json_num(&j, "time_compute_s", mean[0]);
    mg_json_num(&j, "time_allreduce_s", mean[1]);
    mg_json_num(&j, "time_data_s", mean[2]);
    if (t->tc.measure_wait)
        mg_json_num(&j, "time_wait_s", mean[3]);
    mg_json_num(&j, "time_bn_sync_s", mean[4]);
    mg_json_num(&j, "time_compute_max_s", compute_max);
    mg_json_num(&j, "time_compute_min_s", compute_min);
    mg_json_int(&j, "slowest_rank", slowest_rank);
    mg_json_num(&j, "time_window_s", window_seconds);
    mg_json_num(&j, "peak_rss_mb", max[0] / 1024.0);
    mg_json_num(&j, "peak_rss_mb_mean", mean[5] / 1024.0);
    if (t->loader) {
        mg_json_uint(&j, "epoch", (unsigned long long)mg_loader_epoch(t->loader));
        mg_json_num(&j, "data_read_s", read);
        mg_json_num(&j, "data_decode_s", decode);
        mg_json_num(&j, "data_bytes", bytes);
    }
    mg_json_end(&j);
    fprintf(t->metrics, "%s\n", mg_text_str(&line));
    mg_text_free(&line);
    fflush(t->metrics);
}

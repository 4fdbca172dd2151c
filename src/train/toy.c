/* The toy data-parallel classifier (see mg_toy.h). Each rank draws its own points from
 * its own RNG stream, so the ranks together see one global batch per step. */
#include "mg_toy.h"

#include <math.h>
#include <stdio.h>

#include "mg_dist.h"
#include "mg_error.h"
#include "mg_loss.h"
#include "mg_net.h"
#include "mg_optim.h"
#include "mg_replica.h"
#include "mg_sched.h"

#define TOY_CLASSES 3

static int toy_label(float x, float y)
{
    if (x * x + y * y < 0.36f)
        return 0;
    return x * y > 0 ? 1 : 2;
}

static void toy_batch(mg_rng *rng, float *x, int *labels, int n)
{
    for (int i = 0; i < n; i++) {
        x[2 * i] = 2.0f * mg_rng_uniform(rng) - 1.0f;
        x[2 * i + 1] = 2.0f * mg_rng_uniform(rng) - 1.0f;
        labels[i] = toy_label(x[2 * i], x[2 * i + 1]);
    }
}

mg_toy_result mg_toy_train(mg_cfg *cfg, bool verbose)
{
    const int rank = mg_dist_rank(), size = mg_dist_size();
    mg_cfg_node root = mg_cfg_root(cfg);
    mg_cfg_node toy = mg_cfg_require(root, "toy");
    const long steps = mg_cfg_int(toy, "steps", 300, 1, 1L << 30);
    mg_cfg_node batch_node = mg_cfg_get(toy, "batch");
    const int batch = (int)mg_cfg_int(toy, "batch", 64, 1, 1 << 20);
    const uint64_t seed = (uint64_t)mg_cfg_int(toy, "seed", 1, 0, 1L << 62);
    const long log_every = mg_cfg_int(toy, "log_every", 50, 1, 1L << 30);
    const mg_opt_cfg opt_cfg = mg_opt_cfg_from(mg_cfg_require(toy, "optimizer"));
    const mg_sched sched = mg_sched_from(mg_cfg_get(toy, "schedule"));
    if (batch % size)
        mg_cfg_fail(batch_node, "choose a global batch divisible by the number of ranks",
                    "global batch %d does not split over %d ranks", batch, size);
    const int local = batch / size;

    mg_net net;
    mg_net_from_cfg(&net, "M", mg_cfg_require(root, "model"), (mg_shape){2, 1, 1}, local);
    mg_cfg_check_unused(cfg);
    MG_CHECK(net.out.c == TOY_CLASSES && net.out.h == 1 && net.out.w == 1, net.name,
             "the model's last layer must be linear with out: 3", "output shape %dx%dx%d, expected 3 logits",
             net.out.c, net.out.h, net.out.w);
    /* sync BatchNorm: the replicas normalise over the global batch */
    mg_net_set_reduce(&net, mg_dist_reduce_sum_cb, NULL);

    mg_rng init_rng, data_rng;
    mg_rng_init(&init_rng, seed, mg_rng_stream_id(MG_STREAM_INIT, 0));
    mg_rng_init(&data_rng, seed, mg_rng_stream_id(MG_STREAM_DATA, (uint32_t)rank));
    mg_net_init_params(&net, &init_rng);
    mg_optim opt;
    mg_optim_init(&opt, &opt_cfg, net.n_param);
    mg_replica rep; /* the tail carries the loss */
    mg_replica_init(&rep, &net, &opt, 1, MG_REDUCE_NODE);
    mg_replica_sync(&rep);
    float *x = mg_alloc_floats(2 * (size_t)local, "toy batch");
    int *labels = mg_alloc(sizeof(int) * (size_t)local, "toy labels");
    float *dlogits = mg_alloc_floats((size_t)local * TOY_CLASSES, "toy loss gradient");

    mg_toy_result result = {0};
    double window = 0;
    int window_n = 0;
    for (long step = 0; step < steps; step++) {
        toy_batch(&data_rng, x, labels, local);
        mg_net_zero_grad(&net);
        const float *logits = mg_net_forward(&net, x, local, MG_TRAIN);
        float loss = mg_softmax_xent(logits, labels, local, TOY_CLASSES, dlogits, NULL);
        mg_net_backward(&net, dlogits, true, false);
        mg_replica_tail(&rep)[0] = loss;
        mg_replica_reduce(&rep);
        loss = mg_replica_tail(&rep)[0];
        double norm;
        MG_CHECK(mg_replica_check(&rep, &norm), net.name, "lower the learning rate",
                 "loss %g, gradient norm %g at step %ld", loss, norm, step);
        mg_replica_update(&rep, mg_sched_lr(&sched, opt_cfg.lr, step, steps));
        window += loss;
        window_n++;
        if ((step + 1) % log_every == 0 || step + 1 == steps) {
            float mean = (float)(window / window_n);
            if (result.first_loss == 0)
                result.first_loss = mean;
            result.final_loss = mean;
            if (verbose && rank == 0)
                printf("toy: step %6ld/%ld  loss %.4f  lr %.2e\n", step + 1, steps, mean,
                       mg_sched_lr(&sched, opt_cfg.lr, step, steps));
            window = 0;
            window_n = 0;
        }
    }

    /* accuracy on fresh points, evaluation mode (running statistics) */
    mg_rng test_rng;
    mg_rng_init(&test_rng, seed, mg_rng_stream_id(MG_STREAM_EVAL, 0));
    int correct = 0, total = 0;
    while (total < 2000) {
        toy_batch(&test_rng, x, labels, local);
        const float *logits = mg_net_forward(&net, x, local, MG_EVAL);
        for (int i = 0; i < local; i++) {
            int best = 0;
            for (int k = 1; k < TOY_CLASSES; k++)
                if (logits[i * TOY_CLASSES + k] > logits[i * TOY_CLASSES + best])
                    best = k;
            correct += best == labels[i];
        }
        total += local;
    }
    result.accuracy = (float)correct / (float)total;
    result.param_checksum = mg_checksum(net.param, net.n_param * sizeof(float));
    result.replicas_equal = mg_dist_all_equal_u64(result.param_checksum);
    if (verbose && rank == 0)
        printf("toy: accuracy %.3f on %d test points; replicas %s (checksum %016llx)\n", result.accuracy, total,
               result.replicas_equal ? "identical" : "DIFFER", (unsigned long long)result.param_checksum);

    mg_free(x);
    mg_free(labels);
    mg_free(dlogits);
    mg_replica_free(&rep);
    mg_optim_free(&opt);
    mg_net_free(&net);
    return result;
}

/* One data-parallel update of a network (see mg_replica.h). All communication goes
 * through mg_dist.h. */
#include "mg_replica.h"

#include <math.h>
#include <string.h>

#include "mg_dist.h"
#include "mg_error.h"
#include "mg_util.h"

const char *const mg_reduce_path_names[MG_REDUCE_COUNT] = {"node", "mpi"};

void mg_replica_init(mg_replica *r, mg_net *net, mg_optim *opt, size_t n_tail, mg_reduce_path path)
{
    MG_CHECK(opt->n == net->n_param, net->name, "a bug: build the optimizer for this network",
             "optimizer for %zu parameters, network has %zu", opt->n, net->n_param);
    r->net = net;
    r->opt = opt;
    r->n_tail = n_tail;
    r->shared = mg_dist_shared_new(net->n_param + n_tail, path == MG_REDUCE_NODE, "reduction buffer");
    r->red = mg_dist_shared_buf(r->shared);
}

void mg_replica_free(mg_replica *r)
{
    mg_dist_shared_free(r->shared);
    memset(r, 0, sizeof *r);
}

void mg_replica_sync(mg_replica *r)
{
    mg_dist_bcast(r->net->param, r->net->n_param * sizeof(float));
    mg_dist_bcast(r->net->state, r->net->n_state * sizeof(float));
}

float *mg_replica_tail(const mg_replica *r) { return r->red + r->net->n_param; }

void mg_replica_reduce(mg_replica *r)
{
    memcpy(r->red, r->net->grad, r->net->n_param * sizeof(float));
    mg_dist_shared_mean(r->shared);
}

/* Sum of x[i]^2 in double (a float square could overflow where the gradient does not), in
 * 4 + 4 vector lanes: one double accumulator would be a serial chain of dependent adds. */
typedef float f4 __attribute__((vector_size(16)));
typedef double d4 __attribute__((vector_size(32)));

static double sum_squares(const float *x, size_t n)
{
    d4 a = {0}, b = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        f4 u, v;
        memcpy(&u, x + i, sizeof u);
        memcpy(&v, x + i + 4, sizeof v);
        const d4 du = __builtin_convertvector(u, d4), dv = __builtin_convertvector(v, d4);
        a += du * du;
        b += dv * dv;
    }
    double sq = (a[0] + a[1]) + (a[2] + a[3]) + (b[0] + b[1]) + (b[2] + b[3]);
    for (; i < n; i++)
        sq += (double)x[i] * x[i];
    return sq;
}

bool mg_replica_check(const mg_replica *r, double *norm)
{
    const double sq = sum_squares(r->red, r->net->n_param);
    *norm = sqrt(sq);
    bool finite = isfinite(sq);
    const float *tail = mg_replica_tail(r);
    for (size_t i = 0; i < r->n_tail; i++)
        finite &= isfinite(tail[i]) != 0;
    return finite;
}

void mg_replica_update(mg_replica *r, float lr) { mg_optim_step(r->opt, r->net->param, r->red, lr); }

uint64_t mg_replica_checksum(const mg_net *net)
{
    const uint64_t parts[2] = {mg_checksum(net->param, net->n_param * sizeof(float)),
                               mg_checksum(net->state, net->n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

/* The training-data loader (see mg_loader.h): samplers, raw reads, decoding, prefetch.
 *
 * Shape of the code: a "producer" fills batch slots in stream order (batch t is a pure
 * function of t, so the same code serves the prefetch thread, the synchronous mode and
 * restoring a checkpoint); the caller's mg_loader_next takes the slots in order. Every
 * random choice comes from a Philox stream keyed by (seed, epoch, window) and the rank
 * (shard) or a shared id (global), so nothing needs replaying to resume: the state is the
 * step count. The producer touches only the file descriptor and its own buffers (no MPI,
 * no HDF5), and reports errors through a message the consumer raises. When the shard
 * sampler streams, a second thread reads the next window while the producer decodes the
 * current one, so disk and CPU work overlap; the two hand windows over under io_mu and
 * never touch the same window at once. */
#include "mg_loader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mg_dist.h"
#include "mg_error.h"
#include "mg_rng.h"
#include "mg_util.h"

#define NSLOTS 3                        /* one with the caller, two being prepared */
#define MAX_BLOCK_BYTES ((int64_t)8 << 20)
#define RESIDENT_BLOCK_BYTES ((int64_t)8 << 20)
#define READ_AHEAD_BLOCKS 2             /* shard: blocks announced to the kernel ahead of reading */
#define WINDOW_BLOCKS 8                 /* blocks mixed in one shuffle window (target) */
#define GLOBAL_STREAM 0xFFFFFFFFu       /* Philox stream of the shared global permutation */
#define BLOCK_ORDER_WINDOW UINT64_MAX   /* window id keying an epoch's block order */

typedef struct {
    float *x;
    int32_t *labels;
    int64_t *idx;
    int filled;
} slot_t;

/* What one reading thread accounts for: its error message, reading time and bytes. */
typedef struct {
    char err[1024];
    double read_s;
    uint64_t bytes;
} io_acct;

/* A shard window: consecutive blocks of one epoch's block order, read into one buffer and
 * handed out in a shuffled order. */
typedef struct {
    int64_t epoch, w;       /* which window; epoch -1: none */
    int64_t n_blocks;
    uint64_t *block;        /* block ids (n_blocks) */
    int64_t *buf_start;     /* first buffer sample of each block (n_blocks + 1) */
    int64_t n_samples;
    int64_t loaded;         /* blocks read so far */
    int64_t order_epoch;    /* resident mode: epoch whose order is in order[] */
    unsigned char *data;    /* samples, raw */
    int32_t *labels;
    uint32_t *order;        /* buffer positions in hand-out order */
} window_t;

/* One epoch's block order and the first stream position of each window. */
typedef struct {
    int64_t epoch;
    uint64_t *perm;         /* n_blocks */
    int64_t *win_start;     /* n_windows + 1 */
} plan_t;

struct mg_loader {
    mg_loader_cfg cfg;
    mg_data_info info;
    mg_h5_raw raw_x, raw_y; /* samples; label rows (the labels dataset, or the factors dataset) */
    int fd;
    /* Labels: the file's labels dataset, or one column of its factors (cfg.label_factor).
     * raw_y's rows hold y_stride int32 (1, or the factor count); y_col is the one handed
     * out; a factor's values are checked against y_values (0: labels, not checked). */
    bool has_y;
    int y_stride, y_col;
    int32_t y_values;
    int rank, size, B, b;
    int64_t n, sample_bytes;
    size_t sample_floats;

    /* global sampler */
    uint64_t *perm;
    int64_t perm_epoch;
    int64_t *sorted;        /* b pairs (index, slot) packed as 2 int64 */
    unsigned char *scratch;
    int32_t *scratch_labels;

    /* shard sampler */
    int64_t shard_lo, shard_n;
    bool resident;
    int64_t block_samples, n_blocks, window_blocks, n_windows, window_cap;
    window_t win[2];
    int cur;
    plan_t plan[2];

    /* batches and the producer */
    slot_t slot[NSLOTS];
    uint64_t produced, consumed;
    int in_use;
    pthread_t thread;
    bool thread_on, stop, failed;
    pthread_mutex_t mu;
    pthread_cond_t ready, freed;
    char err[1024];         /* validation */

    /* shard streaming with prefetch: an I/O thread reads the next window while the
     * producer decodes the current one (io_job: the window to read; NULL when idle) */
    pthread_t io_thread;
    bool io_on, io_stop, io_failed;
    pthread_mutex_t io_mu;
    pthread_cond_t io_cv;
    window_t *io_job;
    io_acct ia;             /* the I/O thread's totals and error, under io_mu */

    mg_loader_stats stats;  /* wait_s and batches by the consumer; the rest under mu */
    io_acct pa;             /* the producer's reads */
    double p_decode_s;
};

/* ------------------------------------------------------------------ config */

void mg_loader_cfg_default(mg_loader_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sampler = MG_SAMPLER_GLOBAL;
    cfg->memory_bytes = (size_t)1024 << 20;
    cfg->prefetch = true;
}

void mg_loader_cfg_from(mg_loader_cfg *cfg, mg_cfg_node data, uint64_t default_seed)
{
    mg_loader_cfg_default(cfg);
    mg_cfg_expect_mapping(data);
    mg_cfg_node p = mg_cfg_require(data, "path");
    const char *path = mg_cfg_as_string(p);
    if (!path[0] || strlen(path) >= sizeof cfg->path)
        mg_cfg_fail(p, "give the HDF5 file written by `mpigan data ...`", "path is empty or too long");
    memcpy(cfg->path, path, strlen(path) + 1);
    static const char *const samplers[] = {"global", "shard"};
    cfg->sampler = (mg_sampler)mg_cfg_choice(data, "sampler", samplers, 2, MG_SAMPLER_GLOBAL);
    cfg->memory_bytes = (size_t)mg_cfg_int(data, "memory_mb", 1024, 1, 1L << 24) << 20;
    cfg->prefetch = mg_cfg_bool(data, "prefetch", true);
    mg_cfg_node s = mg_cfg_get(data, "seed");
    cfg->seed = mg_cfg_present(s) ? (uint64_t)mg_cfg_as_int(s, 0, LONG_MAX) : default_seed;
    cfg->limit = mg_cfg_int(data, "limit", 0, 1, LONG_MAX);
}

/* ------------------------------------------------------------------ randomness */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The generator of one (epoch, window) of stream `who` (a rank, or GLOBAL_STREAM). */
static void data_rng(mg_rng *r, uint64_t seed, uint64_t epoch, uint64_t window, uint32_t who)
{
    uint64_t key = splitmix(splitmix(splitmix(seed) ^ epoch) ^ window);
    mg_rng_init(r, key, mg_rng_stream_id(MG_STREAM_DATA, who));
}

static void shuffle_u32(mg_rng *r, uint32_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)mg_rng_below(r, (uint64_t)i + 1);
        uint32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* ------------------------------------------------------------------ raw reads (producer) */

static bool pread_full(const mg_loader *L, io_acct *acct, void *dst, size_t bytes, uint64_t at)
{
    char *p = dst;
    size_t done = 0;
    while (done < bytes) {
        ssize_t got = pread(L->fd, p + done, bytes - done, (off_t)(at + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            snprintf(acct->err, sizeof acct->err, "%s: read of %zu bytes at offset %llu failed: %s", L->cfg.path, bytes,
                     (unsigned long long)at, got < 0 ? strerror(errno) : "unexpected end of file (truncated?)");
            return false;
        }
        done += (size_t)got;
    }
    acct->bytes += bytes;
    return true;
}

/* Rows [row, row + count) of a dataset into dst, merging chunks that lie back to back. */
static bool read_rows(const mg_loader *L, io_acct *acct, const mg_h5_raw *m, int64_t row, int64_t count, void *dst)
{
    char *out = dst;
    while (count > 0) {
        int64_t c = row / m->chunk_rows, within = row % m->chunk_rows;
        uint64_t addr = m->chunk_addr[c] + (uint64_t)(within * m->row_bytes);
        int64_t rows = m->chunk_rows - within < count ? m->chunk_rows - within : count;
        while (rows < count && c + 1 < m->n_chunks &&
               m->chunk_addr[c + 1] == m->chunk_addr[c] + (uint64_t)(m->chunk_rows * m->row_bytes)) {
            c++;
            rows += count - rows < m->chunk_rows ? count - rows : m->chunk_rows;
        }
        if (!pread_full(L, acct, out, (size_t)(rows * m->row_bytes), addr))
            return false;
        out += rows * m->row_bytes;
        row += rows;
        count -= rows;
    }
    return true;
}

/* uint8 v -> v / 127.5 - 1 in float: exact at 0 and 255 (127.5 is exact), and a loop the
 * compiler vectorises (several times faster than a 256-entry table). */
/* Asks the kernel to start reading rows [row, row + count) into the page cache, so that
 * the disk works while the producer decodes (POSIX_FADV_WILLNEED returns at once). */
static void advise_rows(const mg_loader *L, const mg_h5_raw *m, int64_t row, int64_t count)
{
    while (count > 0) {
        int64_t c = row / m->chunk_rows, within = row % m->chunk_rows;
        int64_t rows = m->chunk_rows - within < count ? m->chunk_rows - within : count;
        posix_fadvise(L->fd, (off_t)(m->chunk_addr[c] + (uint64_t)(within * m->row_bytes)),
                      (off_t)(rows * m->row_bytes), POSIX_FADV_WILLNEED);
        row += rows;
        count -= rows;
    }
}

/* The label of sample `index` from its label row: -1 without labels; a factor's value is
 * checked against the factor's size (the loader reads the factors raw, past the checks of
 * mg_h5_read_factors), false with the producer's message when it does not fit. */
static bool pick_label(mg_loader *L, const int32_t *row, int64_t index, int32_t *out)
{
    if (!L->has_y) {
        *out = -1;
        return true;
    }
    const int32_t v = row[L->y_col];
    if (L->y_values > 0 && (v < 0 || v >= L->y_values)) {
        snprintf(L->pa.err, sizeof L->pa.err, "%s: sample %lld: factor '%s' is %d, outside 0..%d (the file is damaged "
                 "or was written wrongly)", L->cfg.path, (long long)index, L->cfg.label_factor, v, L->y_values - 1);
        return false;
    }
    *out = v;
    return true;
}

static void decode(const mg_loader *L, const unsigned char *src, float *dst)
{
    if (L->info.kind == MG_DATA_IMAGES)
        for (size_t j = 0; j < L->sample_floats; j++)
            dst[j] = (float)src[j] / 127.5f - 1.0f;
    else
        memcpy(dst, src, L->sample_floats * sizeof(float));
}

/* ------------------------------------------------------------------ global sampler */

static int cmp_pair(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

static bool global_batch(mg_loader *L, slot_t *s, uint64_t step)
{
    uint64_t g0 = step * (uint64_t)L->B + (uint64_t)L->rank * (uint64_t)L->b;
    for (int i = 0; i < L->b; i++) {
        uint64_t g = g0 + (uint64_t)i;
        int64_t e = (int64_t)(g / (uint64_t)L->n), p = (int64_t)(g % (uint64_t)L->n);
        if (L->perm_epoch != e) {
            mg_rng r;
            data_rng(&r, L->cfg.seed, (uint64_t)e, 0, GLOBAL_STREAM);
            for (int64_t k = 0; k < L->n; k++)
                L->perm[k] = (uint64_t)k;
            mg_rng_shuffle(&r, L->perm, (size_t)L->n);
            L->perm_epoch = e;
        }
        L->sorted[2 * i] = (int64_t)L->perm[p];
        L->sorted[2 * i + 1] = i;
    }
    qsort(L->sorted, (size_t)L->b, 2 * sizeof(int64_t), cmp_pair);
    for (int i = 0; i < L->b;) {
        int j = i;
        while (j + 1 < L->b && L->sorted[2 * (j + 1)] == L->sorted[2 * j] + 1)
            j++;
        int64_t first = L->sorted[2 * i], count = j - i + 1;
        double t0 = mg_now();
        if (!read_rows(L, &L->pa, &L->raw_x, first, count, L->scratch))
            return false;
        if (L->has_y && !read_rows(L, &L->pa, &L->raw_y, first, count, L->scratch_labels))
            return false;
        double t1 = mg_now();
        for (int k = i; k <= j; k++) {
            int64_t at = L->sorted[2 * k + 1];
            decode(L, L->scratch + (k - i) * L->sample_bytes, s->x + (size_t)at * L->sample_floats);
            if (!pick_label(L, L->scratch_labels + (size_t)(k - i) * L->y_stride, L->sorted[2 * k], &s->labels[at]))
                return false;
            s->idx[at] = L->sorted[2 * k];
        }
        L->pa.read_s += t1 - t0;
        L->p_decode_s += mg_now() - t1;
        i = j + 1;
    }
    return true;
}

/* ------------------------------------------------------------------ shard sampler */

static int64_t block_len(const mg_loader *L, uint64_t k)
{
    int64_t left = L->shard_n - (int64_t)k * L->block_samples;
    return left < L->block_samples ? left : L->block_samples;
}

static plan_t *plan_for(mg_loader *L, int64_t e)
{
    plan_t *p = &L->plan[e & 1];
    if (p->epoch == e)
        return p;
    for (int64_t k = 0; k < L->n_blocks; k++)
        p->perm[k] = (uint64_t)k;
    if (!L->resident) {
        mg_rng r;
        data_rng(&r, L->cfg.seed, (uint64_t)e, BLOCK_ORDER_WINDOW, (uint32_t)L->rank);
        mg_rng_shuffle(&r, p->perm, (size_t)L->n_blocks);
    }
    p->win_start[0] = 0;
    for (int64_t w = 0; w < L->n_windows; w++) {
        int64_t sum = 0;
        for (int64_t k = w * L->window_blocks; k < (w + 1) * L->window_blocks && k < L->n_blocks; k++)
            sum += block_len(L, p->perm[k]);
        p->win_start[w + 1] = p->win_start[w] + sum;
    }
    p->epoch = e;
    return p;
}

/* The last i < n with starts[i] <= v, for ascending starts with starts[0] <= v: the
 * piece (window, block) that holds position v. */
static int64_t piece_of(const int64_t *starts, int64_t n, int64_t v)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (starts[mid] <= v)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Window of epoch position pos. */
static int64_t window_of(const mg_loader *L, const plan_t *p, int64_t pos)
{
    return piece_of(p->win_start, L->n_windows, pos);
}

static void window_assign(mg_loader *L, window_t *win, int64_t e, int64_t w)
{
    plan_t *p = plan_for(L, e);
    int64_t first = w * L->window_blocks;
    win->n_blocks = L->n_blocks - first < L->window_blocks ? L->n_blocks - first : L->window_blocks;
    win->buf_start[0] = 0;
    for (int64_t k = 0; k < win->n_blocks; k++) {
        win->block[k] = p->perm[first + k];
        win->buf_start[k + 1] = win->buf_start[k] + block_len(L, win->block[k]);
    }
    win->n_samples = win->buf_start[win->n_blocks];
    win->loaded = 0;
    win->epoch = e;
    win->w = w;
    for (int64_t i = 0; i < win->n_samples; i++)
        win->order[i] = (uint32_t)i;
    if (!L->resident) {
        mg_rng r;
        data_rng(&r, L->cfg.seed, (uint64_t)e, (uint64_t)w, (uint32_t)L->rank);
        shuffle_u32(&r, win->order, win->n_samples);
    }
}

/* Reads blocks [win->loaded, upto) of a window; on the producer's or the I/O thread's
 * account, whichever owns the window at the time. */
static bool window_load(const mg_loader *L, io_acct *acct, window_t *win, int64_t upto)
{
    if (upto > win->n_blocks)
        upto = win->n_blocks;
    double t0 = mg_now();
    for (; win->loaded < upto; win->loaded++) {
        int64_t k = win->loaded;
        /* Keep the disk READ_AHEAD_BLOCKS blocks ahead of the reads. */
        for (int64_t a = k == 0 ? 1 : k + READ_AHEAD_BLOCKS; a <= k + READ_AHEAD_BLOCKS && a < win->n_blocks; a++) {
            int64_t first = L->shard_lo + (int64_t)win->block[a] * L->block_samples, len = block_len(L, win->block[a]);
            advise_rows(L, &L->raw_x, first, len);
            if (L->has_y) /* else their small read waits behind the samples' */
                advise_rows(L, &L->raw_y, first, len);
        }
        int64_t row = L->shard_lo + (int64_t)win->block[k] * L->block_samples, len = block_len(L, win->block[k]);
        bool ok = read_rows(L, acct, &L->raw_x, row, len, win->data + win->buf_start[k] * L->sample_bytes) &&
                  (!L->has_y ||
                   read_rows(L, acct, &L->raw_y, row, len, win->labels + win->buf_start[k] * L->y_stride));
        if (!ok) {
            acct->read_s += mg_now() - t0;
            return false;
        }
    }
    acct->read_s += mg_now() - t0;
    return true;
}

/* ------------------------------------------------------------------ the I/O thread */

static void *io_main(void *arg)
{
    mg_loader *L = arg;
    io_acct acct;
    pthread_mutex_lock(&L->io_mu);
    for (;;) {
        while (!L->io_stop && !L->io_job)
            pthread_cond_wait(&L->io_cv, &L->io_mu);
        if (L->io_stop)
            break;
        window_t *win = L->io_job;
        pthread_mutex_unlock(&L->io_mu);
        memset(&acct, 0, sizeof acct);
        bool ok = window_load(L, &acct, win, win->n_blocks);
        pthread_mutex_lock(&L->io_mu);
        L->ia.read_s += acct.read_s;
        L->ia.bytes += acct.bytes;
        if (!ok) {
            L->io_failed = true;
            memcpy(L->ia.err, acct.err, sizeof acct.err);
        }
        L->io_job = NULL;
        pthread_cond_broadcast(&L->io_cv);
    }
    pthread_mutex_unlock(&L->io_mu);
    return NULL;
}

static void io_submit(mg_loader *L, window_t *win)
{
    pthread_mutex_lock(&L->io_mu);
    L->io_job = win;
    pthread_cond_broadcast(&L->io_cv);
    pthread_mutex_unlock(&L->io_mu);
}

/* Waits until the I/O thread is idle, so that its window may be used or reassigned;
 * false (message in the producer's account) if its last read failed. */
static bool io_idle(mg_loader *L)
{
    if (!L->io_on)
        return true;
    pthread_mutex_lock(&L->io_mu);
    while (L->io_job)
        pthread_cond_wait(&L->io_cv, &L->io_mu);
    bool ok = !L->io_failed;
    if (!ok)
        snprintf(L->pa.err, sizeof L->pa.err, "%s", L->ia.err);
    pthread_mutex_unlock(&L->io_mu);
    return ok;
}

/* The window holding epoch e's position pos, fully loaded, made current. */
static window_t *window_get(mg_loader *L, int64_t e, int64_t pos, int64_t *q)
{
    if (L->resident) {
        window_t *win = &L->win[0];
        if (win->epoch < 0)
            window_assign(L, win, 0, 0);
        if (!window_load(L, &L->pa, win, win->n_blocks))
            return NULL;
        if (win->order_epoch != e) {
            mg_rng r;
            data_rng(&r, L->cfg.seed, (uint64_t)e, 0, (uint32_t)L->rank);
            for (int64_t i = 0; i < win->n_samples; i++)
                win->order[i] = (uint32_t)i;
            shuffle_u32(&r, win->order, win->n_samples);
            win->order_epoch = e;
        }
        *q = pos;
        return win;
    }
    plan_t *p = plan_for(L, e);
    int64_t w = window_of(L, p, pos);
    *q = pos - p->win_start[w];
    window_t *a = &L->win[L->cur], *nb = &L->win[1 - L->cur];
    if (a->epoch == e && a->w == w)
        return a;
    if (!io_idle(L))
        return NULL;
    if (!(nb->epoch == e && nb->w == w))
        window_assign(L, nb, e, w);
    if (!window_load(L, &L->pa, nb, nb->n_blocks)) /* nothing left to do if the I/O thread read it */
        return NULL;
    L->cur = 1 - L->cur;
    return nb;
}

/* Reads ahead into the other window: all of it by the I/O thread, or (without prefetch)
 * here, in step with how far the current one is used up. */
static bool shard_read_ahead(mg_loader *L, uint64_t s_next)
{
    if (L->resident)
        return true;
    int64_t e = (int64_t)(s_next / (uint64_t)L->shard_n), pos = (int64_t)(s_next % (uint64_t)L->shard_n);
    plan_t *p = plan_for(L, e);
    int64_t w = window_of(L, p, pos);
    window_t *a = &L->win[L->cur], *nb = &L->win[1 - L->cur];
    if (!(a->epoch == e && a->w == w)) {
        /* The next batch starts a new window: it must be complete. */
        if (!io_idle(L))
            return false;
        if (!(nb->epoch == e && nb->w == w))
            window_assign(L, nb, e, w);
        return window_load(L, &L->pa, nb, nb->n_blocks);
    }
    int64_t e2 = e, w2 = w + 1;
    if (w2 == L->n_windows) {
        e2 = e + 1;
        w2 = 0;
    }
    if (L->io_on) {
        if (nb->epoch == e2 && nb->w == w2)
            return true; /* being read, or read */
        if (!io_idle(L))
            return false;
        window_assign(L, nb, e2, w2);
        io_submit(L, nb);
        return true;
    }
    if (!(nb->epoch == e2 && nb->w == w2))
        window_assign(L, nb, e2, w2);
    double used = (double)(pos - p->win_start[w]) / (double)(p->win_start[w + 1] - p->win_start[w]);
    int64_t need = (int64_t)(used * (double)nb->n_blocks) + 1;
    return window_load(L, &L->pa, nb, need);
}

static bool shard_batch(mg_loader *L, slot_t *s, uint64_t step)
{
    uint64_t s0 = step * (uint64_t)L->b;
    for (int i = 0; i < L->b; i++) {
        uint64_t sp = s0 + (uint64_t)i;
        int64_t e = (int64_t)(sp / (uint64_t)L->shard_n), pos = (int64_t)(sp % (uint64_t)L->shard_n), q = 0;
        window_t *win = window_get(L, e, pos, &q);
        if (!win)
            return false;
        double t0 = mg_now();
        int64_t j = win->order[q];
        decode(L, win->data + j * L->sample_bytes, s->x + (size_t)i * L->sample_floats);
        /* file index: the block of buffer position j */
        const int64_t k = piece_of(win->buf_start, win->n_blocks, j);
        s->idx[i] = L->shard_lo + (int64_t)win->block[k] * L->block_samples + (j - win->buf_start[k]);
        if (!pick_label(L, L->has_y ? win->labels + j * L->y_stride : NULL, s->idx[i], &s->labels[i]))
            return false;
        L->p_decode_s += mg_now() - t0;
    }
    return shard_read_ahead(L, s0 + (uint64_t)L->b);
}

static bool produce(mg_loader *L, slot_t *s, uint64_t step)
{
    return L->cfg.sampler == MG_SAMPLER_GLOBAL ? global_batch(L, s, step) : shard_batch(L, s, step);
}

/* ------------------------------------------------------------------ prefetch thread */

static void *producer_main(void *arg)
{
    mg_loader *L = arg;
    for (;;) {
        pthread_mutex_lock(&L->mu);
        slot_t *s = &L->slot[L->produced % NSLOTS];
        while (!L->stop && s->filled)
            pthread_cond_wait(&L->freed, &L->mu);
        if (L->stop) {
            pthread_mutex_unlock(&L->mu);
            return NULL;
        }
        uint64_t step = L->produced;
        pthread_mutex_unlock(&L->mu);

        bool ok = produce(L, s, step);

        pthread_mutex_lock(&L->mu);
        if (!ok) {
            L->failed = true;
            pthread_cond_broadcast(&L->ready);
            pthread_mutex_unlock(&L->mu);
            return NULL;
        }
        s->filled = 1;
        L->produced++;
        L->stats.read_s = L->pa.read_s;
        L->stats.decode_s = L->p_decode_s;
        L->stats.bytes_read = L->pa.bytes;
        pthread_cond_broadcast(&L->ready);
        pthread_mutex_unlock(&L->mu);
    }
}

static void start_thread(mg_loader *L)
{
    if (!L->cfg.prefetch)
        return;
    L->stop = false;
    L->failed = false;
    int rc = pthread_create(&L->thread, NULL, producer_main, L);
    if (rc != 0)
        MG_FAIL(L->cfg.path, "set data.prefetch: false to load without a thread", "cannot start the prefetch thread: %s",
                strerror(rc));
    L->thread_on = true;
}

static void stop_thread(mg_loader *L)
{
    if (!L->thread_on)
        return;
    pthread_mutex_lock(&L->mu);
    L->stop = true;
    pthread_cond_broadcast(&L->freed);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->thread, NULL);
    L->thread_on = false;
}

/* Forgets prepared batches; the next one produced is batch `step`. */
static void reset_stream(mg_loader *L, uint64_t step)
{
    stop_thread(L);
    for (int k = 0; k < NSLOTS; k++)
        L->slot[k].filled = 0;
    L->in_use = -1;
    L->produced = L->consumed = step;
    L->failed = false;
    L->pa.err[0] = 0;
    if (L->io_on) {
        io_idle(L);
        pthread_mutex_lock(&L->io_mu);
        L->io_failed = false;
        L->ia.err[0] = 0;
        pthread_mutex_unlock(&L->io_mu);
    }
    /* Each slot of the ring must again line up with produced % NSLOTS. */
    start_thread(L);
}

const float *mg_loader_next(mg_loader *L, int *labels_out)
{
    slot_t *s;
    if (!L->cfg.prefetch) {
        s = &L->slot[0];
        double t0 = mg_now();
        if (!produce(L, s, L->consumed))
            MG_FAIL(NULL, "the data file changed or the disk failed while training", "%s", L->pa.err);
        L->stats.wait_s += mg_now() - t0;
        L->stats.read_s = L->pa.read_s;
        L->stats.decode_s = L->p_decode_s;
        L->stats.bytes_read = L->pa.bytes;
        L->in_use = 0;
        L->consumed++;
        L->produced = L->consumed;
    } else {
        pthread_mutex_lock(&L->mu);
        if (L->in_use >= 0) {
            L->slot[L->in_use].filled = 0;
            L->in_use = -1;
            pthread_cond_broadcast(&L->freed);
        }
        int k = (int)(L->consumed % NSLOTS);
        s = &L->slot[k];
        double t0 = mg_now();
        while (!s->filled && !L->failed)
            pthread_cond_wait(&L->ready, &L->mu);
        L->stats.wait_s += mg_now() - t0;
        if (!s->filled) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", L->pa.err);
            pthread_mutex_unlock(&L->mu);
            MG_FAIL(NULL, "the data file changed or the disk failed while training", "%s", msg);
        }
        L->in_use = k;
        L->consumed++;
        pthread_mutex_unlock(&L->mu);
    }
    L->stats.batches++;
    if (labels_out)
        for (int i = 0; i < L->b; i++)
            labels_out[i] = s->labels[i];
    return s->x;
}

const int64_t *mg_loader_last_indices(const mg_loader *L)
{
    MG_CHECK(L->in_use >= 0, L->cfg.path, NULL, "no batch has been handed out yet");
    return L->slot[L->in_use].idx;
}

/* ------------------------------------------------------------------ open and close */

static void free_buffers(mg_loader *L)
{
    for (int k = 0; k < NSLOTS; k++) {
        mg_free(L->slot[k].x);
        mg_free(L->slot[k].labels);
        mg_free(L->slot[k].idx);
    }
    for (int k = 0; k < 2; k++) {
        window_t *w = &L->win[k];
        mg_free(w->block);
        mg_free(w->buf_start);
        mg_free(w->data);
        mg_free(w->labels);
        mg_free(w->order);
        mg_free(L->plan[k].perm);
        mg_free(L->plan[k].win_start);
    }
    mg_free(L->perm);
    mg_free(L->sorted);
    mg_free(L->scratch);
    mg_free(L->scratch_labels);
    mg_h5_raw_free(&L->raw_x);
    mg_h5_raw_free(&L->raw_y);
    mg_data_info_free(&L->info);
}

/* Checks everything that can be checked before reading a sample; false with L->err. */
static bool validate(mg_loader *L, const mg_loader_cfg *cfg, mg_shape in, int B)
{
    if (B < 1 || B % L->size != 0)
        return snprintf(L->err, sizeof L->err, "global batch %d must be a positive multiple of the number of ranks %d",
                        B, L->size), false;
    mg_h5_file *f = mg_h5_open(cfg->path, &L->info, L->err, sizeof L->err);
    if (!f)
        return false;
    mg_data_info *fi = &L->info;
    char what[128];
    bool ok = true;
    if (cfg->limit > fi->n) {
        snprintf(L->err, sizeof L->err, "%s: data.limit %lld is more than the %lld samples the file holds", cfg->path,
                 (long long)cfg->limit, (long long)fi->n);
        mg_h5_close(f);
        return false;
    }
    if (cfg->limit > 0) /* from here on the file is its first `limit` samples */
        fi->n = cfg->limit;
    if (fi->kind == MG_DATA_IMAGES && (fi->c != in.c || fi->h != in.h || fi->w != in.w))
        ok = (snprintf(L->err, sizeof L->err,
                       "%s: samples are (%d, %d, %d) (%s) but the model's input is (%d, %d, %d)", cfg->path, fi->c,
                       fi->h, fi->w, mg_data_describe(fi, what, sizeof what), in.c, in.h, in.w),
              false);
    else if (fi->kind == MG_DATA_VECTORS && (fi->c != in.c || in.h != 1 || in.w != 1))
        ok = (snprintf(L->err, sizeof L->err,
                       "%s: samples are vectors of %d (%s) but the model's input is (%d, %d, %d)", cfg->path, fi->c,
                       mg_data_describe(fi, what, sizeof what), in.c, in.h, in.w),
              false);
    else if (fi->n < B)
        ok = (snprintf(L->err, sizeof L->err, "%s: holds %lld samples, fewer than the global batch %d", cfg->path,
                       (long long)fi->n, B), false);
    else if (cfg->sampler == MG_SAMPLER_SHARD &&
             cfg->memory_bytes / 2 < (size_t)mg_data_sample_bytes(fi) + 8)
        ok = (snprintf(L->err, sizeof L->err, "%s: data.memory_mb (%zu bytes) cannot hold two samples of %lld bytes",
                       cfg->path, cfg->memory_bytes, (long long)mg_data_sample_bytes(fi)), false);
    else
        ok = mg_h5_raw_layout(f, &L->raw_x, &L->raw_y, L->err, sizeof L->err);
    L->has_y = fi->has_labels;
    L->y_stride = 1;
    if (ok && cfg->label_factor[0]) { /* one factor column instead of the labels dataset */
        char names[512];
        const int col = mg_data_factor_index(fi, cfg->label_factor);
        if (fi->n_factors == 0)
            ok = (snprintf(L->err, sizeof L->err, "%s: has no factors dataset, so no factor '%s' to train on (only "
                           "synthetic sets such as `mpigan data shapes` store factors)", cfg->path, cfg->label_factor),
                  false);
        else if (col < 0)
            ok = (snprintf(L->err, sizeof L->err, "%s: has no factor '%s' (its factors: %s)", cfg->path,
                           cfg->label_factor, mg_data_factor_list(fi, names, sizeof names)),
                  false);
        if (ok) {
            mg_h5_raw_free(&L->raw_y);
            ok = mg_h5_raw_factors(f, &L->raw_y, L->err, sizeof L->err);
            L->has_y = true;
            L->y_stride = fi->n_factors;
            L->y_col = col;
            L->y_values = fi->factor_sizes[col];
        }
    }
    mg_h5_close(f);
    return ok;
}

static void setup_shard(mg_loader *L)
{
    int64_t sb = L->sample_bytes, per = sb + (L->has_y ? 4 * L->y_stride : 0) + 4; /* data, label row, order */
    L->shard_lo = (int64_t)((__int128)L->rank * L->n / L->size);
    int64_t hi = (int64_t)((__int128)(L->rank + 1) * L->n / L->size);
    L->shard_n = hi - L->shard_lo;
    int64_t budget = (int64_t)(L->cfg.memory_bytes > (size_t)INT64_MAX / 2 ? INT64_MAX / 2 : L->cfg.memory_bytes);
    /* Decided on the largest shard, so that every rank makes the same choice (and a saved
     * state, which records it, fits every rank). */
    int64_t largest = (L->n + L->size - 1) / L->size;
    L->resident = largest * per <= budget && largest < ((int64_t)1 << 31);
    if (L->resident) {
        L->block_samples = RESIDENT_BLOCK_BYTES / sb > 0 ? RESIDENT_BLOCK_BYTES / sb : 1;
        L->n_blocks = (L->shard_n + L->block_samples - 1) / L->block_samples;
        L->window_blocks = L->n_blocks;
        L->window_cap = L->shard_n;
        L->n_windows = 1;
    } else {
        int64_t cap = budget / 2 / per;
        if (cap > ((int64_t)1 << 31) - 1)
            cap = ((int64_t)1 << 31) - 1;
        L->window_cap = cap;
        L->block_samples = cap / WINDOW_BLOCKS > 0 ? cap / WINDOW_BLOCKS : 1;
        if (L->block_samples * sb > MAX_BLOCK_BYTES)
            L->block_samples = MAX_BLOCK_BYTES / sb > 0 ? MAX_BLOCK_BYTES / sb : 1;
        L->window_blocks = cap / L->block_samples;
        L->n_blocks = (L->shard_n + L->block_samples - 1) / L->block_samples;
        L->n_windows = (L->n_blocks + L->window_blocks - 1) / L->window_blocks;
    }
    int nwin = L->resident ? 1 : 2;
    for (int k = 0; k < nwin; k++) {
        window_t *w = &L->win[k];
        w->epoch = -1;
        w->order_epoch = -1;
        w->block = mg_alloc((size_t)L->window_blocks * sizeof(uint64_t), "shard window");
        w->buf_start = mg_alloc((size_t)(L->window_blocks + 1) * sizeof(int64_t), "shard window");
        w->data = mg_alloc((size_t)(L->window_cap * sb), "shard window samples");
        if (L->has_y)
            w->labels = mg_alloc((size_t)L->window_cap * (size_t)L->y_stride * sizeof(int32_t), "shard window labels");
        w->order = mg_alloc((size_t)L->window_cap * sizeof(uint32_t), "shard window order");
    }
    L->win[1].epoch = -1;
    for (int k = 0; k < 2; k++) {
        L->plan[k].epoch = -1;
        L->plan[k].perm = mg_alloc((size_t)L->n_blocks * sizeof(uint64_t), "block order");
        L->plan[k].win_start = mg_alloc((size_t)(L->n_windows + 1) * sizeof(int64_t), "window starts");
    }
}

static mg_loader *open_impl(const mg_loader_cfg *cfg, mg_shape in, int B, int rank, int size, bool collective)
{
    mg_loader *L = mg_alloc(sizeof *L, "loader");
    L->cfg = *cfg;
    L->rank = rank;
    L->size = size;
    L->fd = -1;
    bool ok = validate(L, cfg, in, B);
    bool any_bad = collective ? mg_dist_any(!ok) : !ok;
    if (any_bad) {
        char mine[1024], first[1024];
        snprintf(mine, sizeof mine, "%s", ok ? "" : L->err);
        memcpy(first, mine, sizeof first);
        if (collective)
            mg_dist_bcast(first, sizeof first); /* rank 0's verdict, for ranks that saw no problem */
        free_buffers(L);
        mg_free(L);
        if (!ok)
            MG_FAIL(NULL, "docs/data.md describes the data format and the converters", "%s", mine);
        if (first[0])
            MG_FAIL(NULL, "docs/data.md describes the data format and the converters", "%s", first);
        MG_FAIL(cfg->path, "see the other ranks' messages", "the data file failed validation on another rank");
    }
    L->fd = open(cfg->path, O_RDONLY | O_CLOEXEC);
    if (L->fd < 0)
        MG_FAIL(cfg->path, NULL, "cannot open: %s", strerror(errno));
    L->B = B;
    L->b = B / size;
    L->n = L->info.n;
    L->sample_bytes = mg_data_sample_bytes(&L->info);
    L->sample_floats = (size_t)L->info.c * L->info.h * L->info.w;
    for (int k = 0; k < NSLOTS; k++) {
        L->slot[k].x = mg_alloc_floats((size_t)L->b * L->sample_floats, "batch");
        L->slot[k].labels = mg_alloc((size_t)L->b * sizeof(int32_t), "batch labels");
        L->slot[k].idx = mg_alloc((size_t)L->b * sizeof(int64_t), "batch indices");
    }
    if (cfg->sampler == MG_SAMPLER_GLOBAL) {
        L->perm = mg_alloc((size_t)L->n * sizeof(uint64_t), "global permutation");
        L->perm_epoch = -1;
        L->sorted = mg_alloc((size_t)L->b * 2 * sizeof(int64_t), "batch order");
        L->scratch = mg_alloc((size_t)(L->b * L->sample_bytes), "read buffer");
        L->scratch_labels = mg_alloc((size_t)L->b * (size_t)L->y_stride * sizeof(int32_t), "read buffer");
    } else {
        setup_shard(L);
    }
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->ready, NULL);
    pthread_cond_init(&L->freed, NULL);
    pthread_mutex_init(&L->io_mu, NULL);
    pthread_cond_init(&L->io_cv, NULL);
    if (cfg->sampler == MG_SAMPLER_SHARD && !L->resident && cfg->prefetch) {
        int rc = pthread_create(&L->io_thread, NULL, io_main, L);
        if (rc != 0)
            MG_FAIL(cfg->path, "set data.prefetch: false to load without threads", "cannot start the I/O thread: %s",
                    strerror(rc));
        L->io_on = true;
    }
    L->in_use = -1;
    start_thread(L);
    return L;
}

mg_loader *mg_loader_open(const mg_loader_cfg *cfg, mg_shape model_input, int global_batch)
{
    return open_impl(cfg, model_input, global_batch, mg_dist_rank(), mg_dist_size(), true);
}

mg_loader *mg_loader_open_as(const mg_loader_cfg *cfg, mg_shape model_input, int global_batch, int rank, int size)
{
    MG_CHECK(size >= 1 && rank >= 0 && rank < size, cfg->path, NULL, "rank %d of %d", rank, size);
    return open_impl(cfg, model_input, global_batch, rank, size, false);
}

void mg_loader_close(mg_loader *L)
{
    if (!L)
        return;
    stop_thread(L);
    if (L->io_on) {
        pthread_mutex_lock(&L->io_mu);
        L->io_stop = true;
        pthread_cond_broadcast(&L->io_cv);
        pthread_mutex_unlock(&L->io_mu);
        pthread_join(L->io_thread, NULL);
    }
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->ready);
    pthread_cond_destroy(&L->freed);
    pthread_mutex_destroy(&L->io_mu);
    pthread_cond_destroy(&L->io_cv);
    if (L->fd >= 0)
        close(L->fd);
    free_buffers(L);
    mg_free(L);
}

/* ------------------------------------------------------------------ queries and state */

int mg_loader_local_batch(const mg_loader *L) { return L->b; }

bool mg_loader_labels(const mg_loader *L, int *values)
{
    if (values)
        *values = !L->has_y ? 0 : L->cfg.label_factor[0] ? (int)L->y_values : L->info.n_classes;
    return L->has_y;
}
const mg_data_info *mg_loader_info(const mg_loader *L) { return &L->info; }

static void position(const mg_loader *L, uint64_t step, uint64_t *epoch, uint64_t *pos)
{
    uint64_t s = L->cfg.sampler == MG_SAMPLER_GLOBAL ? step * (uint64_t)L->B : step * (uint64_t)L->b;
    uint64_t n = L->cfg.sampler == MG_SAMPLER_GLOBAL ? (uint64_t)L->n : (uint64_t)L->shard_n;
    *epoch = s / n;
    *pos = s % n;
}

uint64_t mg_loader_epoch(const mg_loader *L)
{
    uint64_t e, p;
    position(L, L->consumed, &e, &p);
    return e;
}

void mg_loader_get_state(const mg_loader *L, mg_loader_state *st)
{
    memset(st, 0, sizeof *st);
    st->version = MG_LOADER_STATE_VERSION;
    st->sampler = (uint64_t)L->cfg.sampler;
    st->seed = L->cfg.seed;
    st->n_samples = (uint64_t)L->n;
    st->global_batch = (uint64_t)L->B;
    st->ranks = (uint64_t)L->size;
    if (L->cfg.sampler == MG_SAMPLER_SHARD) {
        st->window_samples = L->resident ? 0 : (uint64_t)L->window_cap;
        st->block_samples = L->resident ? 0 : (uint64_t)L->block_samples;
    }
    st->step = L->consumed;
    position(L, L->consumed, &st->epoch, &st->epoch_pos);
}

void mg_loader_set_state(mg_loader *L, const mg_loader_state *st)
{
    mg_loader_state mine;
    mg_loader_get_state(L, &mine);
    const char *hint = "resume with the data section and batch size of the run that saved the checkpoint";
    MG_CHECK(st->version == MG_LOADER_STATE_VERSION, L->cfg.path, hint, "loader state version %llu, expected %d",
             (unsigned long long)st->version, MG_LOADER_STATE_VERSION);
#define SAME(field, what)                                                                                    \
    MG_CHECK(st->field == mine.field, L->cfg.path, hint, "the saved loader state has %s %llu, this run %llu", \
             what, (unsigned long long)st->field, (unsigned long long)mine.field)
    SAME(sampler, "sampler");
    SAME(seed, "seed");
    SAME(n_samples, "samples in the file");
    SAME(global_batch, "global batch");
    if (L->cfg.sampler == MG_SAMPLER_SHARD) {
        SAME(ranks, "ranks (the shard sampler resumes on the same number of ranks)");
        SAME(window_samples, "shard window (from data.memory_mb)");
        SAME(block_samples, "shard block (from data.memory_mb)");
    }
#undef SAME
    reset_stream(L, st->step);
}

void mg_loader_get_stats(const mg_loader *L, mg_loader_stats *out)
{
    mg_loader *M = (mg_loader *)L;
    if (L->thread_on)
        pthread_mutex_lock(&M->mu);
    *out = L->stats;
    if (L->thread_on)
        pthread_mutex_unlock(&M->mu);
    if (L->io_on) {
        pthread_mutex_lock(&M->io_mu);
        out->read_s += L->ia.read_s;
        out->bytes_read += L->ia.bytes;
        pthread_mutex_unlock(&M->io_mu);
    }
}

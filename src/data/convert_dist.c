/* The distributed writer (mg_convert_dist.h): all ranks make samples, rank 0 writes them.
 *
 * Round r covers items [r*P*b, (r+1)*P*b) for P ranks and b items per rank; rank q makes
 * the b consecutive items from r*P*b + q*b, drops its bad ones (skip_bad), and rank 0
 * gathers the kept rows in rank order, so they arrive in item order and the file does not
 * depend on P. Without skip_bad, the ranks agree after every round on the lowest bad item
 * (one allreduce), its owner broadcasts the reason, rank 0 removes the temporary file and
 * then every rank fails with the same message, so no rank waits for a peer that has left.
 *
 * The file is created for n_items samples and cut to the kept count at the end
 * (mg_h5_writer_shrink). While the job runs, rank 0 stacks a fatal handler that abandons
 * the writer and removes the temporary file before passing any error on.
 *
 * Before HDF5 creates the file, rank 0 claims its size on disk once (fallocate), so that a
 * disk or a file-size limit too small for the output is a clean error up front. This
 * matters because HDF5 1.10 cannot recover from a file whose flush fails: the close fails,
 * the handle stays, and the library crashes when it shuts down. A disk that fills later
 * (another writer) still fails the next H5Dwrite, which names the dataset. */
#define _GNU_SOURCE /* fallocate(2) */
#include "mg_convert_dist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mg_dist.h"
#include "mg_error.h"
#include "mg_util.h"

#define PATH_CAP 4096
#define DEFAULT_ROUND_BYTES ((int64_t)4 << 20)
/* What rank 0 receives per round stays below MPI's int counts. */
#define MAX_GATHER_BYTES ((int64_t)1 << 30)

static struct {
    int active;
    char tmp[PATH_CAP];
    mg_h5_writer *w;
    void *bufs[8];
    mg_fatal_handler prev;
} job;

static void job_free_buffers(void)
{
    for (size_t i = 0; i < sizeof job.bufs / sizeof job.bufs[0]; i++) {
        mg_free(job.bufs[i]);
        job.bufs[i] = NULL;
    }
}

/* Removes what the job made and restores the previous fatal handler. */
static void job_clean(void)
{
    mg_h5_writer_abandon(job.w);
    job.w = NULL;
    if (job.tmp[0])
        unlink(job.tmp);
    job.tmp[0] = 0;
    job_free_buffers();
    job.active = 0;
    mg_set_fatal_handler(job.prev);
}

static void job_handler(const char *message)
{
    mg_fatal_handler prev = job.prev;
    job_clean();
    prev(message);
}

static void *job_alloc(int slot, size_t bytes, const char *what)
{
    job.bufs[slot] = mg_alloc(bytes ? bytes : 1, what);
    return job.bufs[slot];
}

/* Claims bytes for tmp (then released again: HDF5 creates the file afresh). File systems
 * without fallocate skip the check. */
static void reserve_space(const char *tmp, int64_t bytes)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0)
        MG_FAIL(tmp, "check that the output directory exists and is writable", "cannot create: %s",
                strerror(errno));
    int rc = fallocate(fd, 0, 0, (off_t)bytes) == 0 ? 0 : errno;
    close(fd);
    if (rc != 0 && rc != EOPNOTSUPP && rc != ENOSYS)
        MG_FAIL(tmp, "free space on the disk (or raise the file size limit), or write elsewhere",
                "cannot claim the %lld bytes the output needs: %s", (long long)bytes, strerror(rc));
}

/* Every rank fails alike with message: rank 0 first removes the temporary file, and the
 * barrier keeps the others from aborting the job before it has. */
static void fail_together(const char *hint, const char *message)
{
    job_clean();
    mg_dist_barrier();
    MG_FAIL(NULL, hint, "%s", message);
}

/* The lowest bad item over all ranks (-1 when none) and its reason, on every rank. */
static int64_t agree_first_bad(int64_t mine, const char *my_why, char *why, size_t why_size, int64_t per,
                               int64_t round)
{
    int64_t first = mg_dist_min_i64(mine >= 0 ? mine : INT64_MAX);
    if (first == INT64_MAX)
        return -1;
    int owner = (int)((first % round) / per);
    if (mg_dist_rank() == owner)
        snprintf(why, why_size, "%s", my_why);
    mg_dist_bcast_from(why, why_size, owner);
    why[why_size - 1] = 0;
    return first;
}

void mg_convert_dist_write(const char *out_path, const mg_dist_write_spec *spec, mg_dist_write_result *res)
{
    const int rank = mg_dist_rank(), size = mg_dist_size();
    const int64_t n = spec->n_items;
    const int nf = spec->n_factors;
    const bool has_labels = spec->info.has_labels;
    memset(res, 0, sizeof *res);
    MG_CHECK(n >= 1, out_path, "give at least one item", "cannot write %lld items", (long long)n);
    MG_CHECK(spec->info.kind == MG_DATA_IMAGES, out_path, NULL, "the distributed writer writes images only");
    MG_CHECK(nf >= 0 && nf <= 4096, out_path, NULL, "%d factor columns (0 to 4096 allowed)", nf);
    MG_CHECK(strlen(out_path) + 32 < PATH_CAP, out_path, NULL, "output path too long");
    MG_CHECK(!job.active, out_path, NULL, "a conversion is already running");

    mg_data_info info = spec->info;
    info.n = n;
    const int64_t sb = mg_data_sample_bytes(&info);
    const int64_t row_bytes = sb + (has_labels ? 4 : 0) + 4 * (int64_t)nf;
    int64_t per = (spec->round_bytes > 0 ? spec->round_bytes : DEFAULT_ROUND_BYTES) / sb;
    if (per * size * row_bytes > MAX_GATHER_BYTES)
        per = MAX_GATHER_BYTES / ((int64_t)size * row_bytes);
    if (per < 1)
        per = 1;
    MG_CHECK(per * size * row_bytes <= MAX_GATHER_BYTES, out_path, "make the samples smaller",
             "one sample per rank (%lld bytes on %d ranks) exceeds a round's limit", (long long)row_bytes, size);

    const int64_t round = per * size;
    memset(&job, 0, sizeof job);
    job.active = 1;
    job.prev = mg_set_fatal_handler(job_handler);
    if (rank == 0) {
        mg_tmp_path(job.tmp, sizeof job.tmp, out_path);
        reserve_space(job.tmp, n * row_bytes + n * row_bytes / 64 + ((int64_t)1 << 20));
        job.w = mg_h5_create(job.tmp, &info, NULL);
        if (nf > 0)
            mg_h5_add_factors(job.w, nf, spec->factor_names, spec->factor_sizes);
    }
    /* This rank's block of a round, compacted to its kept items. */
    uint8_t *pix = job_alloc(0, (size_t)(per * sb), "conversion samples");
    int32_t *lab = has_labels ? job_alloc(1, (size_t)per * 4, "conversion labels") : NULL;
    int32_t *fac = nf > 0 ? job_alloc(2, (size_t)(per * nf) * 4, "conversion factors") : NULL;
    /* Rank 0: the round of every rank, in item order. */
    uint8_t *all_pix = rank == 0 ? job_alloc(3, (size_t)(round * sb), "conversion round") : NULL;
    int32_t *all_lab = rank == 0 && has_labels ? job_alloc(4, (size_t)round * 4, "conversion round") : NULL;
    int32_t *all_fac = rank == 0 && nf > 0 ? job_alloc(5, (size_t)(round * nf) * 4, "conversion round") : NULL;

    char why[512], my_why[512] = "";
    int64_t written = 0, bad_here = 0, first_bad_here = -1;
    for (int64_t base = 0; base < n; base += round) {
        int64_t lo = base + rank * per, hi = lo + per < n ? lo + per : n;
        if (lo > n)
            lo = n;
        int64_t kept = 0, round_bad = -1;
        for (int64_t i = lo; i < hi; i++) {
            uint8_t *s = pix + kept * sb;
            memset(s, 0, (size_t)sb);
            if (lab)
                lab[kept] = 0;
            if (fac)
                memset(fac + kept * nf, 0, (size_t)nf * 4);
            why[0] = 0;
            if (spec->make(spec->ctx, i, s, lab ? lab + kept : NULL, fac ? fac + kept * nf : NULL, why, sizeof why)) {
                kept++;
                continue;
            }
            if (!why[0])
                snprintf(why, sizeof why, "item %lld could not be made", (long long)i);
            if (round_bad < 0) {
                round_bad = i;
                snprintf(my_why, sizeof my_why, "%s", why);
            }
            if (first_bad_here < 0) {
                first_bad_here = i;
                snprintf(res->first_bad, sizeof res->first_bad, "%s", why);
            }
            bad_here++;
            if (spec->skip_bad && !spec->quiet)
                fprintf(stderr, "mpigan: skipped: %s\n", why);
            if (!spec->skip_bad)
                break;
        }
        if (!spec->skip_bad) {
            char msg[512];
            if (agree_first_bad(round_bad, my_why, msg, sizeof msg, per, round) >= 0)
                fail_together("fix or remove the file, or skip bad files (--skip-bad)", msg);
        }
        mg_dist_gather_bytes(pix, kept * sb, all_pix);
        if (has_labels)
            mg_dist_gather_bytes(lab, kept * 4, all_lab);
        if (nf > 0)
            mg_dist_gather_bytes(fac, kept * nf * 4, all_fac);
        double round_kept = (double)kept;
        mg_dist_allreduce_sum_f64(&round_kept, 1);
        int64_t k = (int64_t)round_kept;
        if (rank == 0 && k > 0) {
            mg_h5_write_rows(job.w, written, k, all_pix, all_lab);
            if (nf > 0)
                mg_h5_write_factors(job.w, written, k, all_fac);
        }
        written += k;
    }

    double bad = (double)bad_here;
    mg_dist_allreduce_sum_f64(&bad, 1);
    res->n_bad = (int64_t)bad;
    res->n_written = written;
    char first[512] = "";
    if (res->n_bad > 0)
        agree_first_bad(first_bad_here, res->first_bad, first, sizeof first, per, round);
    snprintf(res->first_bad, sizeof res->first_bad, "%s", first);
    if (written == 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: none of the %lld items could be converted; the first: %s", out_path,
                 (long long)n, first);
        fail_together("check the input files", msg);
    }
    if (rank == 0) {
        mg_h5_writer_shrink(job.w, written);
        mg_h5_writer_close(job.w);
        job.w = NULL;
        mg_file_commit(job.tmp, out_path);
        job.tmp[0] = 0;
    }
    job_clean();
    /* Nobody returns before the file is in place. */
    mg_dist_barrier();
}

void mg_convert_agree(const char *root_error, const char *hint)
{
    char msg[1024] = "";
    if (mg_dist_rank() == 0)
        snprintf(msg, sizeof msg, "%s", root_error ? root_error : "");
    mg_dist_bcast(msg, sizeof msg);
    msg[sizeof msg - 1] = 0;
    if (msg[0])
        MG_FAIL(NULL, hint, "%s", msg);
}

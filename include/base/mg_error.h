/* One error path for every fallible call in mpigan.
 *
 * A failure names where it happened (source file and line), the object concerned
 * (a path, a config key, a layer, a dataset) and a hint, then hands the message to the
 * fatal handler. The default handler prints it and exits 1; the distributed layer
 * (dist.c) installs one that ends every rank with MPI_Abort, so that no rank is left
 * waiting in a collective. Tests install one that longjmps back to the test. */
#ifndef MG_ERROR_H
#define MG_ERROR_H

#include <stddef.h>

/* Receives the formatted message; must not return. */
typedef void (*mg_fatal_handler)(const char *message);

/* Installs h (NULL restores the default) and returns the previous handler. */
mg_fatal_handler mg_set_fatal_handler(mg_fatal_handler h);

/* Formats "mpigan: error: <object>: <message> (hint: <hint>) [at file:line]" and calls
 * the fatal handler. object and hint may be NULL. */
void mg_fatal_at(const char *file, int line, const char *object, const char *hint,
                 const char *fmt, ...) __attribute__((noreturn, format(printf, 5, 6)));

/* Where in the input the program is (e.g. "g.yaml:12:5 (generator.layers[3])"); added to
 * every message until cleared with NULL. Lets C-level checks (shapes) name config places. */
void mg_error_set_context(const char *context);
/* The context in force ("" when none), e.g. to restore it after a nested one. */
const char *mg_error_context(void);

/* The last message passed to the fatal handler (for tests and for final reports). */
const char *mg_last_error(void);

#define MG_FAIL(object, hint, ...) mg_fatal_at(__FILE__, __LINE__, (object), (hint), __VA_ARGS__)
#define MG_CHECK(cond, object, hint, ...) \
    do { if (!(cond)) MG_FAIL((object), (hint), __VA_ARGS__); } while (0)

/* Zeroed, 64-byte aligned allocation; never returns NULL. Free with mg_free. */
void *mg_alloc_at(size_t bytes, const char *what, const char *file, int line);
#define mg_alloc(bytes, what) mg_alloc_at((bytes), (what), __FILE__, __LINE__)
#define mg_alloc_floats(n, what) ((float *)mg_alloc_at((size_t)(n) * sizeof(float), (what), __FILE__, __LINE__))
void mg_free(void *p);

/* As mg_alloc but not zeroed: for scratch space its user writes before reading. A large
 * one then takes memory only as far as it is used (the kernel maps its pages on first
 * touch), so a workspace sized for the worst case costs what the layers really use. */
void *mg_alloc_scratch_at(size_t bytes, const char *what, const char *file, int line);
#define mg_alloc_scratch_floats(n, what) \
    ((float *)mg_alloc_scratch_at((size_t)(n) * sizeof(float), (what), __FILE__, __LINE__))

/* As mg_alloc, for a buffer that MPI reads from another process (the gradient reduction
 * buffers): 2 MiB-aligned, rounded up to 2 MiB and marked for transparent huge pages, so
 * that Open MPI's single-copy path pins a few huge pages instead of one page per 4 kB,
 * which shortens a large allreduce that follows compute (docs/training.md; measured in
 * docs/results/2026-12-03-scaling-after-gap). Without THP support it is an ordinary
 * allocation. Free with mg_free. */
void *mg_alloc_huge_at(size_t bytes, const char *what, const char *file, int line);
#define mg_alloc_floats_huge(n, what) \
    ((float *)mg_alloc_huge_at((size_t)(n) * sizeof(float), (what), __FILE__, __LINE__))

/* strdup that goes through the error path. */
char *mg_strdup_at(const char *s, const char *file, int line);
#define mg_strdup(s) mg_strdup_at((s), __FILE__, __LINE__)

#endif

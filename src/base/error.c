/* The single error path (see mg_error.h). Kept free of MPI so that it links into
 * every tool; dist.c swaps in a handler that aborts all ranks. */
#include "mg_error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static char last_message[2048];
static char context[400];

void mg_error_set_context(const char *where)
{
    snprintf(context, sizeof context, "%s", where ? where : "");
}

const char *mg_error_context(void) { return context; }

static void default_handler(const char *message)
{
    fprintf(stderr, "%s\n", message);
    fflush(stderr);
    exit(1);
}

static mg_fatal_handler current_handler = default_handler;

mg_fatal_handler mg_set_fatal_handler(mg_fatal_handler h)
{
    mg_fatal_handler previous = current_handler;
    current_handler = h ? h : default_handler;
    return previous;
}

const char *mg_last_error(void) { return last_message; }

void mg_fatal_at(const char *file, int line, const char *object, const char *hint, const char *fmt, ...)
{
    char body[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(last_message, sizeof last_message, "mpigan: error: %s%s%s%s%s%s%s%s%s [at %s:%d]",
             object ? object : "", object ? ": " : "", body,
             hint ? " (hint: " : "", hint ? hint : "", hint ? ")" : "",
             context[0] ? " [in " : "", context, context[0] ? "]" : "", file, line);
    current_handler(last_message);
    abort(); /* a handler that returns breaks the contract */
}

/* Bytes rounded up to a multiple of align (at least one), aligned to it, zeroed unless
 * scratch. */
static void *alloc_rounded(size_t bytes, size_t align, bool huge_pages, bool scratch, const char *what,
                           const char *file, int line)
{
    const size_t rounded = bytes == 0 ? align : (bytes + align - 1) / align * align;
    void *p = aligned_alloc(align, rounded);
    if (!p)
        mg_fatal_at(file, line, what, "lower the batch size or the model size",
                    "out of memory allocating %zu bytes", bytes);
#ifdef MADV_HUGEPAGE
    if (huge_pages)
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* advice only: without THP the pages stay small */
#else
    (void)huge_pages;
#endif
    if (!scratch)
        memset(p, 0, rounded);
    return p;
}

void *mg_alloc_at(size_t bytes, const char *what, const char *file, int line)
{
    return alloc_rounded(bytes, 64, false, false, what, file, line);
}

void *mg_alloc_scratch_at(size_t bytes, const char *what, const char *file, int line)
{
    return alloc_rounded(bytes, 64, false, true, what, file, line);
}

void *mg_alloc_huge_at(size_t bytes, const char *what, const char *file, int line)
{
    return alloc_rounded(bytes, (size_t)2 << 20, true, false, what, file, line);
}

void mg_free(void *p) { free(p); }

char *mg_strdup_at(const char *s, const char *file, int line)
{
    size_t n = strlen(s) + 1;
    char *copy = mg_alloc_at(n, "string", file, line);
    memcpy(copy, s, n);
    return copy;
}

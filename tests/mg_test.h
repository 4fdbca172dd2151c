/* Shared helpers for mpigan's cmocka tests. */
#ifndef MG_TEST_H
#define MG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mg_error.h"
#include "mg_dist.h"
#include "mg_layers.h"
#include "mg_net.h"
#include <stdio.h>
#include <stdlib.h>

/* A network of one BatchNorm layer (momentum 0.1, eps 1e-5) over shape, for batches up to n. */
static inline void mg_test_bn_net(mg_net *net, const char *name, mg_shape shape, int n)
{
    mg_net_begin(net, name, shape);
    mg_batchnorm_make(mg_net_push(net), shape, 0.1f, 1e-5f);
    mg_net_finish(net, n);
}

/* Rank 0 removes dir (a test's run directory); every rank waits until it is gone. */
static inline void mg_test_clean_dir(const char *dir)
{
    if (mg_dist_rank() == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
    mg_dist_barrier();
}

/* Skips the running test: prints "SKIP: <test>: <reason>" (printf-style), which tests/run.sh
 * lists in its summary, and calls cmocka's skip(), so the test counts as skipped, not passed.
 * Under several ranks, every rank must skip alike. */
#define MG_SKIP(...)                                                                        \
    do {                                                                                    \
        printf("SKIP: %s: ", __func__);                                                     \
        printf(__VA_ARGS__);                                                                \
        printf("\n");                                                                       \
        fflush(stdout);                                                                     \
        skip();                                                                             \
    } while (0)

/* Catching the fatal error path: the handler jumps back into the test. */
__attribute__((unused)) static jmp_buf mg_test_jump;
__attribute__((unused)) static int mg_test_expecting_fatal;

__attribute__((unused)) static void mg_test_fatal_handler(const char *message)
{
    if (mg_test_expecting_fatal)
        longjmp(mg_test_jump, 1);
    fail_msg("unexpected fatal error: %s", message);
}

/* Runs stmt; passes when the fatal path is hit with a message containing substring. */
#define MG_EXPECT_FATAL(stmt, substring)                                                    \
    do {                                                                                    \
        mg_fatal_handler previous_ = mg_set_fatal_handler(mg_test_fatal_handler);           \
        mg_test_expecting_fatal = 1;                                                        \
        if (setjmp(mg_test_jump) == 0) {                                                    \
            stmt;                                                                           \
            mg_test_expecting_fatal = 0;                                                    \
            mg_set_fatal_handler(previous_);                                                \
            fail_msg("expected a fatal error containing '%s', got none", (substring));      \
        }                                                                                   \
        mg_test_expecting_fatal = 0;                                                        \
        mg_set_fatal_handler(previous_);                                                    \
        if (!strstr(mg_last_error(), (substring)))                                          \
            fail_msg("error message '%s' lacks '%s'", mg_last_error(), (substring));        \
    } while (0)

/* |a - b| <= atol + rtol * |b|, with a message naming what is compared. */
#define MG_ASSERT_CLOSE(a, b, atol, rtol, what)                                             \
    do {                                                                                    \
        double a_ = (a), b_ = (b);                                                          \
        double lim_ = (atol) + (rtol) * (b_ < 0 ? -b_ : b_);                                \
        double d_ = a_ - b_;                                                                \
        if (!(d_ <= lim_ && -d_ <= lim_))                                                   \
            fail_msg("%s: %.9g vs %.9g (diff %.3g > %.3g)", (what), a_, b_, d_, lim_);      \
    } while (0)

#endif

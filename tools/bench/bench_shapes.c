/* Speed of the shapes renderer (mg_shapes.h) on one core: images per second of wall-clock
 * and of thread CPU time (the CPU rate holds up when other work shares the machine), per
 * shape and over the whole mix, in batches of 1000 as a writer's round would make them.
 * Usage: bench_shapes [N]  (default 100000 images) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_error.h"
#include "mg_shapes.h"
#include "mg_util.h"

#define BATCH 1000

int main(int argc, char **argv)
{
    const long n = argc > 1 ? atol(argv[1]) : 100000;
    MG_CHECK(n >= BATCH, argv[1], "give at least 1000 images", "bad count");
    uint8_t *img = mg_alloc((size_t)BATCH * MG_SHAPES_IMAGE_BYTES, "images");
    int32_t f[MG_SHAPES_N_FACTORS];
    uint64_t checksum = 0; /* printed, so that no rendering can be left out */
    printf("%-10s %12s %12s\n", "shape", "images/s", "images/cpu-s");
    for (int shape = -1; shape < MG_SHAPES_N_SHAPES; shape++) {
        const double w0 = mg_clock_seconds(CLOCK_MONOTONIC), c0 = mg_clock_seconds(CLOCK_THREAD_CPUTIME_ID);
        for (long done = 0; done < n; done += BATCH) {
            if (shape < 0) {
                mg_shapes_make(img, NULL, NULL, 1, MG_SHAPES_TRAIN, done, BATCH);
            } else {
                for (int i = 0; i < BATCH; i++) {
                    mg_shapes_draw(f, 1, MG_SHAPES_TRAIN, done + i);
                    f[MG_SHAPES_F_SHAPE] = shape;
                    mg_shapes_render(img + (size_t)i * MG_SHAPES_IMAGE_BYTES, f);
                }
            }
            checksum += img[done % MG_SHAPES_IMAGE_BYTES];
        }
        const double w = mg_clock_seconds(CLOCK_MONOTONIC) - w0, c = mg_clock_seconds(CLOCK_THREAD_CPUTIME_ID) - c0;
        printf("%-10s %12.0f %12.0f\n", shape < 0 ? "all" : mg_shapes_shape_names[shape], (double)n / w,
               (double)n / c);
    }
    printf("(checksum %llu)\n", (unsigned long long)checksum);
    mg_free(img);
    return 0;
}

/* Collective converters of real image data (docs/data.md): a folder of JPEG/PNG files
 * resized to S x S, and CIFAR-10's binary batches. Every rank calls them with the same
 * arguments; rank 0 lists and checks the input, each rank decodes its share of the items,
 * and the distributed writer (mg_convert_dist.h) writes one file in item order, the same
 * for any rank count. Bad input ends every rank with one message naming the file. */
#ifndef MG_CONVERT_IMAGES_H
#define MG_CONVERT_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_resize.h"

#define MG_CIFAR10_TRAIN_FILE "cifar10-train.h5"
#define MG_CIFAR10_TEST_FILE "cifar10-test.h5"

typedef struct {
    int size;                /* S: samples are C x S x S */
    bool crop_center;        /* true: the centred square first; false: the whole image */
    mg_resize_kind resize;
    bool grey;               /* true: C = 1 (colour images are converted to luma) */
    bool skip_bad;           /* true: bad files are skipped and counted; false: the first ends the run */
    bool quiet;              /* true: skipped files are not listed on stderr */
} mg_images_opts;

/* The same on every rank. */
typedef struct {
    char out_path[4096];
    int64_t n_written, n_bad, n_ignored; /* ignored: files without a .jpg/.jpeg/.png name */
    int channels, n_classes;
    char first_bad[512];
} mg_images_result;

/* The output file's name for a folder: OUT_DIR/<last component of dir>.h5 ("images.h5"
 * when dir has no usable name, such as "/"). */
void mg_images_out_path(char *out, size_t size, const char *dir, const char *out_dir);

/* Converts the images of dir (JPEG and PNG, told by content; names ending in .jpg, .jpeg or
 * .png, in byte order of the names) into mg_images_out_path(dir, out_dir); out_dir is made
 * if missing (one level). If dir holds no image files but subfolders of them, each
 * subfolder (sorted) is a class: the file gets labels and class_names. C is 3 when any
 * image is colour (grey ones are promoted), else 1; opts->grey forces 1. An image whose
 * region (the centred square, or the whole image) is smaller than S in either direction is
 * a bad file: no image is enlarged. */
void mg_convert_images(const char *dir, const char *out_dir, const mg_images_opts *opts, mg_images_result *res);

/* CIFAR-10's binary version: dir/data_batch_1..5.bin -> out_dir/cifar10-train.h5 (50000
 * samples with the standard files) and dir/test_batch.bin -> out_dir/cifar10-test.h5;
 * images (N, 3, 32, 32), labels 0..9, class names from dir/batches.meta.txt when present,
 * else CIFAR-10's ten. Records are 1 label byte and 3072 pixel bytes (R, G, B planes of
 * 32 x 32); a file whose length is not a multiple of 3073, a missing file or a label above
 * 9 is an error naming the file. n_train and n_test (may be NULL) get the sample counts. */
void mg_convert_cifar10(const char *dir, const char *out_dir, int64_t *n_train, int64_t *n_test);

#endif

/* Decoding JPEG (libjpeg) and PNG (libpng) files into 8-bit pixels, for the image
 * converters. The format is told by the file's first bytes, not its name.
 *
 * Nothing here fails through the error path: a damaged, truncated or unsupported file makes
 * the call return false with a one-line reason naming the file, because the distributed
 * converters must report a bad file as a bad item (mg_convert_dist.h) and not end one rank.
 * libjpeg's error_exit is replaced by a longjmp, and its warnings (such as "premature end
 * of JPEG file") count as damage; libpng's errors longjmp too.
 *
 * Channels: grey JPEGs and grey PNGs (with or without alpha, any bit depth) give 1 channel,
 * everything else 3 (palettes expanded, 16-bit reduced to 8 bits, alpha dropped). */
#ifndef MG_IMAGE_H
#define MG_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Pixels row by row, channels interleaved: px[(y * w + x) * c + ch]. */
typedef struct {
    int w, h, c;
    uint8_t *px; /* owned: mg_image_free */
} mg_image;

/* Reads only the header: width, height and channels (as mg_image_load would give). */
bool mg_image_probe(const char *path, int *w, int *h, int *c, char *why, size_t why_size);
/* Decodes the whole file into img (released with mg_image_free, also after a failure). */
bool mg_image_load(const char *path, mg_image *img, char *why, size_t why_size);
void mg_image_free(mg_image *img);

/* True for names ending in .jpg, .jpeg or .png (any case): what the folder converter reads. */
bool mg_image_name_ok(const char *name);

#endif

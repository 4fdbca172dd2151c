/* A growable text buffer and the one JSON writer (metrics lines, evaluation reports).
 *
 * mg_text starts empty ({0}) and grows as text is appended; it never fails except through
 * the error path (allocation). mg_json writes one JSON object into an mg_text, putting
 * ", " between members and ": " after keys, so every JSON mpigan writes looks alike:
 *   {"step": 10, "loss_d": 0.6931472, "eval": {"fid": null}}
 * Numbers print with %.<digits>g; NaN and Inf print as null (JSON has no such numbers). */
#ifndef MG_TEXT_H
#define MG_TEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *buf;      /* NUL-terminated once anything was put; owned */
    size_t len, cap;
} mg_text;

/* Appends printf-formatted text. */
void mg_text_put(mg_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text so far ("" when empty); stays owned by t. */
const char *mg_text_str(const mg_text *t);
/* Hands the text over (allocated, release with mg_free) and leaves t empty. */
char *mg_text_take(mg_text *t);
void mg_text_free(mg_text *t);

#define MG_JSON_MAX_DEPTH 8

typedef struct {
    mg_text *out;
    int digits;                          /* significant digits of mg_json_num */
    int depth;                           /* open objects and arrays */
    char closing[MG_JSON_MAX_DEPTH];     /* '}' or ']' per level */
    bool empty[MG_JSON_MAX_DEPTH];       /* nothing written at that level yet */
} mg_json;

/* Opens the top-level object ("{") in out; numbers get digits significant digits. */
void mg_json_begin(mg_json *j, mg_text *out, int digits);
/* Opens a member object or array (key NULL inside an array). */
void mg_json_object(mg_json *j, const char *key);
void mg_json_array(mg_json *j, const char *key);
/* Closes the innermost open object or array (the top-level one last). */
void mg_json_end(mg_json *j);

/* Members (or, with key NULL, array elements). */
void mg_json_num(mg_json *j, const char *key, double v);
void mg_json_int(mg_json *j, const char *key, long long v);
void mg_json_uint(mg_json *j, const char *key, unsigned long long v);
void mg_json_bool(mg_json *j, const char *key, bool v);
void mg_json_str(mg_json *j, const char *key, const char *s);
/* A value already written as JSON (a nested report), or formatted by the caller. */
void mg_json_raw(mg_json *j, const char *key, const char *json);
void mg_json_fmt(mg_json *j, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

/* Growable text and the JSON writer (see mg_text.h). */
#include "mg_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mg_error.h"

static void text_vput(mg_text *t, const char *fmt, va_list ap)
{
    for (;;) {
        va_list copy;
        va_copy(copy, ap);
        const size_t room = t->cap - t->len;
        int n = vsnprintf(t->cap ? t->buf + t->len : NULL, room, fmt, copy);
        va_end(copy);
        MG_CHECK(n >= 0, "text", NULL, "formatting failed");
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        const size_t cap = 2 * t->cap + (size_t)n + 64;
        char *grown = mg_alloc(cap, "text");
        if (t->len)
            memcpy(grown, t->buf, t->len + 1);
        mg_free(t->buf);
        t->buf = grown;
        t->cap = cap;
    }
}

void mg_text_put(mg_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    text_vput(t, fmt, ap);
    va_end(ap);
}

const char *mg_text_str(const mg_text *t) { return t->buf ? t->buf : ""; }

char *mg_text_take(mg_text *t)
{
    char *s = t->buf ? t->buf : mg_strdup("");
    *t = (mg_text){0};
    return s;
}

void mg_text_free(mg_text *t)
{
    mg_free(t->buf);
    *t = (mg_text){0};
}

/* ---- JSON ---- */

static void put_string(mg_text *t, const char *s)
{
    mg_text_put(t, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            mg_text_put(t, "\\%c", *p);
        else if (*p < 0x20)
            mg_text_put(t, "\\u%04x", *p);
        else
            mg_text_put(t, "%c", *p);
    }
    mg_text_put(t, "\"");
}

/* The separator and the key of the next member or element. */
static void next(mg_json *j, const char *key)
{
    MG_CHECK(j->depth > 0, key ? key : "JSON", NULL, "internal: JSON value outside an object");
    if (!j->empty[j->depth - 1])
        mg_text_put(j->out, ", ");
    j->empty[j->depth - 1] = false;
    if (key) {
        put_string(j->out, key);
        mg_text_put(j->out, ": ");
    }
}

static void open_level(mg_json *j, char opening, char closing)
{
    MG_CHECK(j->depth < MG_JSON_MAX_DEPTH, "JSON", NULL, "internal: nested deeper than %d", MG_JSON_MAX_DEPTH);
    mg_text_put(j->out, "%c", opening);
    j->closing[j->depth] = closing;
    j->empty[j->depth] = true;
    j->depth++;
}

void mg_json_begin(mg_json *j, mg_text *out, int digits)
{
    *j = (mg_json){.out = out, .digits = digits};
    open_level(j, '{', '}');
}

void mg_json_object(mg_json *j, const char *key)
{
    next(j, key);
    open_level(j, '{', '}');
}

void mg_json_array(mg_json *j, const char *key)
{
    next(j, key);
    open_level(j, '[', ']');
}

void mg_json_end(mg_json *j)
{
    MG_CHECK(j->depth > 0, "JSON", NULL, "internal: more ends than openings");
    j->depth--;
    mg_text_put(j->out, "%c", j->closing[j->depth]);
}

void mg_json_num(mg_json *j, const char *key, double v)
{
    next(j, key);
    if (isfinite(v))
        mg_text_put(j->out, "%.*g", j->digits, v);
    else
        mg_text_put(j->out, "null");
}

void mg_json_int(mg_json *j, const char *key, long long v)
{
    next(j, key);
    mg_text_put(j->out, "%lld", v);
}

void mg_json_uint(mg_json *j, const char *key, unsigned long long v)
{
    next(j, key);
    mg_text_put(j->out, "%llu", v);
}

void mg_json_bool(mg_json *j, const char *key, bool v)
{
    next(j, key);
    mg_text_put(j->out, "%s", v ? "true" : "false");
}

void mg_json_str(mg_json *j, const char *key, const char *s)
{
    next(j, key);
    put_string(j->out, s);
}

void mg_json_raw(mg_json *j, const char *key, const char *json)
{
    next(j, key);
    mg_text_put(j->out, "%s", json);
}

void mg_json_fmt(mg_json *j, const char *key, const char *fmt, ...)
{
    next(j, key);
    va_list ap;
    va_start(ap, fmt);
    text_vput(j->out, fmt, ap);
    va_end(ap);
}

/*
 * jsonw.c - the streaming JSON writer (see jsonw.h).
 *
 * The layout follows jansson's dump.c exactly (JSON_INDENT(n): a newline
 * and n spaces per level before each member, "key": value, empty
 * containers as {} and []; JSON_COMPACT: no spaces at all), and so does
 * string escaping (\" \\ \b \f \n \r \t, other control characters as
 * \u00XX with upper-case hex, everything else as it is).
 */
#include "jsonw.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daggerpool/daggerpool.h"
#include "text.h"

/* Large enough that a 100 000-job result is a few hundred writes. */
#define JSONW_CHUNK (64u * 1024u)

void dp__jsonw_fail(dp__jsonw_t *w, int err)
{
    if (!w->err)
        w->err = err;
}

static bool flush(dp__jsonw_t *w)
{
    if (w->out && w->len) {
        if (fwrite(w->buf, 1, w->len, w->out) != w->len) {
            dp__jsonw_fail(w, DP_ESYS);
            return false;
        }
        w->len = 0;
    }
    return true;
}

/* Room for n more bytes in buf. */
static bool reserve(dp__jsonw_t *w, size_t n)
{
    if (w->err)
        return false;
    if (w->len + n <= w->cap)
        return true;
    if (w->out && n <= JSONW_CHUNK && w->cap >= JSONW_CHUNK) {
        if (!flush(w))
            return false;
        if (w->len + n <= w->cap)
            return true;
    }
    size_t cap = w->cap ? w->cap : JSONW_CHUNK;
    while (cap < w->len + n) {
        if (cap > SIZE_MAX / 2) {
            dp__jsonw_fail(w, DP_ENOMEM);
            return false;
        }
        cap *= 2;
    }
    char *b = realloc(w->buf, cap);
    if (!b) {
        dp__jsonw_fail(w, DP_ENOMEM);
        return false;
    }
    w->buf = b;
    w->cap = cap;
    return true;
}

static inline void put(dp__jsonw_t *w, const char *s, size_t n)
{
    if (w->len + n > w->cap && !reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* The separator before a member or element (none before the first), and
 * with an indent the newline and spaces of its level. */
static inline void put_separator(dp__jsonw_t *w)
{
    bool first = w->empty[w->depth];
    w->empty[w->depth] = false;
    size_t n = (first ? 0 : 1) + (w->indent ? 1 + (size_t)w->indent * w->depth : 0);
    if (w->len + n > w->cap && !reserve(w, n))
        return;
    char *p = w->buf + w->len;
    if (!first)
        *p++ = ',';
    if (w->indent) {
        *p++ = '\n';
        memset(p, ' ', (size_t)w->indent * w->depth);
    }
    w->len += n;
}

static void put_indent(dp__jsonw_t *w, unsigned depth)
{
    size_t n = 1 + (size_t)w->indent * depth;
    if (w->len + n > w->cap && !reserve(w, n))
        return;
    w->buf[w->len] = '\n';
    memset(w->buf + w->len + 1, ' ', n - 1);
    w->len += n;
}

void dp__jsonw_init(dp__jsonw_t *w, FILE *out, int indent)
{
    memset(w, 0, sizeof *w);
    w->out = out;
    w->indent = indent > 0 ? indent : 0;
    w->empty[0] = true;
}

/* What goes before any value: the separator from the previous member or
 * element, and the newline and indent of this one. */
static void before_value(dp__jsonw_t *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth == 0)
        return;
    if (w->object[w->depth]) { /* a member without its key */
        dp__jsonw_fail(w, DP_EINVAL);
        return;
    }
    put_separator(w);
}

static void container_open(dp__jsonw_t *w, char c)
{
    before_value(w);
    if (w->depth + 1 >= DP__JSONW_MAX_DEPTH) {
        dp__jsonw_fail(w, DP_EINVAL);
        return;
    }
    put(w, &c, 1);
    w->depth++;
    w->empty[w->depth] = true;
    w->object[w->depth] = c == '{';
}

static void container_close(dp__jsonw_t *w, char c)
{
    if (w->depth == 0 || w->after_key) {
        dp__jsonw_fail(w, DP_EINVAL);
        return;
    }
    bool empty = w->empty[w->depth--];
    if (!empty && w->indent)
        put_indent(w, w->depth);
    put(w, &c, 1);
}

void dp__jsonw_object_open(dp__jsonw_t *w)
{
    container_open(w, '{');
}
void dp__jsonw_object_close(dp__jsonw_t *w)
{
    container_close(w, '}');
}
void dp__jsonw_array_open(dp__jsonw_t *w)
{
    container_open(w, '[');
}
void dp__jsonw_array_close(dp__jsonw_t *w)
{
    container_close(w, ']');
}

/* s between quotes, escaped as jansson does, invalid UTF-8 as U+FFFD. */
static void put_string(dp__jsonw_t *w, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *run = p;
    put(w, "\"", 1);
    for (;;) {
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') { /* the common case */
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = dp__utf8_seq(p);
            if (n) {
                p += n;
                continue;
            }
        }
        put(w, (const char *)run, (size_t)(p - run));
        if (!c)
            break;
        char esc[8];
        const char *e = esc;
        size_t n = 2;
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04X", c);
                n = 6;
            } else { /* a byte outside any valid sequence */
                e = "\xEF\xBF\xBD";
                n = 3;
            }
            break;
        }
        put(w, e, n);
        run = ++p;
    }
    put(w, "\"", 1);
}

void dp__jsonw_key(dp__jsonw_t *w, const char *key)
{
    if (w->depth == 0 || w->after_key || !w->object[w->depth]) {
        dp__jsonw_fail(w, DP_EINVAL);
        return;
    }
    put_separator(w);
    put_string(w, key ? key : "");
    if (w->indent)
        put(w, ": ", 2);
    else
        put(w, ":", 1);
    w->after_key = true;
}

void dp__jsonw_key_plain(dp__jsonw_t *w, const char *key, size_t len)
{
    if (w->depth == 0 || w->after_key || !w->object[w->depth]) {
        dp__jsonw_fail(w, DP_EINVAL);
        return;
    }
#ifndef NDEBUG
    for (size_t i = 0; i < len; i++)
        assert(key[i] >= 0x20 && key[i] < 0x7f && key[i] != '"' && key[i] != '\\');
#endif
    /* What put_separator, put_string and the colon write, in one go. */
    bool first = w->empty[w->depth];
    w->empty[w->depth] = false;
    size_t pad = w->indent ? (size_t)w->indent * w->depth : 0;
    size_t n = (first ? 0 : 1) + (w->indent ? 1 + pad : 0) + len + (w->indent ? 4 : 3);
    if (w->len + n > w->cap && !reserve(w, n))
        return;
    char *p = w->buf + w->len;
    if (!first)
        *p++ = ',';
    if (w->indent) {
        *p++ = '\n';
        for (size_t i = 0; i < pad; i++)
            *p++ = ' ';
    }
    *p++ = '"';
    memcpy(p, key, len);
    p += len;
    *p++ = '"';
    *p++ = ':';
    if (w->indent)
        *p++ = ' ';
    w->len += n;
    w->after_key = true;
}

void dp__jsonw_member_text(dp__jsonw_t *w, const char *text, size_t len)
{
    if (w->depth == 0 || w->after_key || !w->object[w->depth]) {
        dp__jsonw_fail(w, DP_EINVAL);
        return;
    }
    put_separator(w);
    put(w, text, len);
}

void dp__jsonw_string(dp__jsonw_t *w, const char *s)
{
    if (!s) {
        dp__jsonw_null(w);
        return;
    }
    before_value(w);
    put_string(w, s);
}

void dp__jsonw_null(dp__jsonw_t *w)
{
    before_value(w);
    put(w, "null", 4);
}

void dp__jsonw_bool(dp__jsonw_t *w, bool v)
{
    before_value(w);
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void dp__jsonw_int(dp__jsonw_t *w, int64_t v)
{
    before_value(w);
    char num[24];
    char *e = num + sizeof num, *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(w, p, (size_t)(e - p));
}

void dp__jsonw_int_or_null(dp__jsonw_t *w, int64_t v)
{
    if (v < 0)
        dp__jsonw_null(w);
    else
        dp__jsonw_int(w, v);
}

int dp__jsonw_finish(dp__jsonw_t *w)
{
    if (!w->err && (w->depth != 0 || w->after_key))
        dp__jsonw_fail(w, DP_EINVAL);
    if (w->out) {
        flush(w);
        free(w->buf);
        w->buf = NULL;
        w->len = w->cap = 0;
    } else if (!w->err && reserve(w, 1)) {
        w->buf[w->len] = '\0';
    }
    return w->err;
}

char *dp__jsonw_take(dp__jsonw_t *w, size_t *len)
{
    char *b = NULL;
    if (!w->err && !w->out && w->buf) {
        b = w->buf;
        if (len)
            *len = w->len;
        w->buf = NULL;
    }
    dp__jsonw_discard(w);
    return b;
}

void dp__jsonw_discard(dp__jsonw_t *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

/* state_ends.c - a batch of job ends as the state keeps it (docs/state.md,
 * "run_ends"): one JSON array per batch, one record per job,
 *
 *   [["NAME",STATUS,REUSED,ATTEMPTS,START_MS,DURATION_MS,ERROR,PLUGIN,DEF_HASH,ID],...]
 *
 * STATUS the dp_status_t value, START_MS and DURATION_MS null for a job
 * that did not start, ERROR and PLUGIN strings or null, DEF_HASH the
 * definition hash as a signed 64-bit integer, ID the job's id in the graph
 * that ran it: a hint for a reader of the same workflow (the next run's
 * durations find the job without a lookup by name), meaningless to any
 * other; a record without it (the migration's) is read by name alone. One row of a batch instead of
 * a row per job: the run's writer appends a few dozen bytes per job with no SQL
 * statement of its own, which is what makes the state cheap on a 100 000-job
 * run (bench/README.md, "State"); SQLite's json_each still reads it as rows
 * (the run_jobs view, state_schema.c).
 *
 * Strings keep their bytes: '"', '\\' and control characters are escaped,
 * every other byte (invalid UTF-8 too) is written as it is, so that a job's
 * name reads back exactly (json_extract and state_ends_next alike). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "state_int.h"

static bool grow(state_buf_t *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->n + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void put(state_buf_t *b, const char *s, size_t len)
{
    if (grow(b, len)) {
        memcpy(b->p + b->n, s, len);
        b->n += len;
    }
}

/* Two digits a step: every end carries a 64-bit hash, of 19 or 20 digits
 * mostly. */
static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                  "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                  "8081828384858687888990919293949596979899";

/* v's digits at o (at most 20, and a sign); returns the end. */
static char *put_int_at(char *o, int64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    /* as unsigned: INT64_MIN negates to itself */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100);
        u /= 100;
        i -= 2;
        memcpy(tmp + i, digit_pairs + 2 * d, 2);
    }
    if (u >= 10) {
        i -= 2;
        memcpy(tmp + i, digit_pairs + 2 * u, 2);
    } else {
        tmp[--i] = (char)('0' + u);
    }
    if (v < 0)
        tmp[--i] = '-';
    memcpy(o, tmp + i, sizeof tmp - i);
    return o + (sizeof tmp - i);
}

/* The room put_str_at may take for s (len its length): \u00XX per byte
 * at worst, and the quotes; "null" for NULL. */
static size_t str_room(const char *s, size_t len)
{
    return s ? len * 6 + 2 : 4;
}

/* s as a JSON string at o (null for NULL); returns the end. */
static char *put_str_at(char *o, const char *s)
{
    if (!s) {
        memcpy(o, "null", 4);
        return o + 4;
    }
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            *o++ = '\\';
            *o++ = (char)*p;
        } else if (*p < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(o, "\\u00", 4);
            o[4] = hex[*p >> 4];
            o[5] = hex[*p & 15];
            o += 6;
        } else {
            *o++ = (char)*p;
        }
    }
    *o++ = '"';
    return o;
}

/* One end, with one check for room: the writer makes one for every job
 * of a run. */
void state_ends_add(state_buf_t *b, const char *name, dp_status_t status, bool reused, unsigned attempts,
                    int64_t start_ms, int64_t duration_ms, const char *error, const char *plugin, uint64_t hash,
                    uint32_t id)
{
    size_t nl = name ? strlen(name) : 0, el = error ? strlen(error) : 0, pl = plugin ? strlen(plugin) : 0;
    /* brackets and commas 12, status and reused 2, five numbers of at
     * most 21 characters each */
    if (!grow(b, 14 + 5 * 21 + str_room(name, nl) + str_room(error, el) + str_room(plugin, pl)))
        return;
    char *o = b->p + b->n;
    memcpy(o, b->n ? ",[" : "[[", 2);
    o = put_str_at(o + 2, name);
    *o++ = ',';
    *o++ = (char)('0' + (int)status);
    *o++ = ',';
    *o++ = reused ? '1' : '0';
    *o++ = ',';
    o = put_int_at(o, attempts);
    *o++ = ',';
    if (start_ms >= 0) {
        o = put_int_at(o, start_ms);
        *o++ = ',';
        o = put_int_at(o, duration_ms);
    } else {
        memcpy(o, "null,null", 9);
        o += 9;
    }
    *o++ = ',';
    o = put_str_at(o, error);
    *o++ = ',';
    o = put_str_at(o, plugin);
    *o++ = ',';
    o = put_int_at(o, (int64_t)hash);
    *o++ = ',';
    o = put_int_at(o, id);
    *o++ = ']';
    b->n = (size_t)(o - b->p);
}

const char *state_ends_finish(state_buf_t *b, size_t *len)
{
    if (!b->n)
        put(b, "[", 1);
    put(b, "]", 1);
    *len = b->n;
    return b->oom ? NULL : b->p;
}

/* ---- reading ----------------------------------------------------------- */

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static const char *read_hex4(const char *p, const char *end, unsigned *v)
{
    if (end - p < 4)
        return NULL;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return NULL;
        *v = *v << 4 | (unsigned)h;
    }
    return p + 4;
}

/* A string (p at its '"') into b (NUL-terminated), or null (*isnull). The
 * escapes of JSON, all of them (the migration's rows were written by
 * SQLite's json_array). */
static const char *read_str(const char *p, const char *end, state_buf_t *b, bool *isnull)
{
    b->n = 0;
    *isnull = false;
    if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
        *isnull = true;
        return p + 4;
    }
    if (p >= end || *p != '"')
        return NULL;
    p++;
    for (;;) {
        const char *q = p;
        while (q < end && *q != '"' && *q != '\\')
            q++;
        put(b, p, (size_t)(q - p));
        if (q >= end)
            return NULL;
        if (*q == '"') {
            p = q + 1;
            break;
        }
        if (++q >= end)
            return NULL;
        char c = *q++, out[4];
        size_t n = 1;
        switch (c) {
        case 'b': out[0] = '\b'; break;
        case 'f': out[0] = '\f'; break;
        case 'n': out[0] = '\n'; break;
        case 'r': out[0] = '\r'; break;
        case 't': out[0] = '\t'; break;
        case 'u': {
            unsigned u;
            if (!(q = read_hex4(q, end, &u)))
                return NULL;
            if (u >= 0xd800 && u < 0xdc00 && end - q >= 6 && q[0] == '\\' && q[1] == 'u') {
                unsigned lo;
                if (read_hex4(q + 2, end, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                    q += 6;
                }
            }
            if (u < 0x80) {
                out[0] = (char)u;
            } else if (u < 0x800) {
                out[0] = (char)(0xc0 | u >> 6);
                out[1] = (char)(0x80 | (u & 0x3f));
                n = 2;
            } else if (u < 0x10000) {
                out[0] = (char)(0xe0 | u >> 12);
                out[1] = (char)(0x80 | (u >> 6 & 0x3f));
                out[2] = (char)(0x80 | (u & 0x3f));
                n = 3;
            } else {
                out[0] = (char)(0xf0 | u >> 18);
                out[1] = (char)(0x80 | (u >> 12 & 0x3f));
                out[2] = (char)(0x80 | (u >> 6 & 0x3f));
                out[3] = (char)(0x80 | (u & 0x3f));
                n = 4;
            }
            break;
        }
        default: out[0] = c; break; /* " \ / */
        }
        put(b, out, n);
        p = q;
    }
    put(b, "", 1);
    b->n--;
    return b->oom ? NULL : p;
}

/* Past a string (p at its '"') or null, nothing copied. */
static const char *skip_str(const char *p, const char *end)
{
    if (end - p >= 4 && memcmp(p, "null", 4) == 0)
        return p + 4;
    if (p >= end || *p != '"')
        return NULL;
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\' && ++p >= end)
            return NULL;
    }
    return NULL;
}

/* An integer, or null (*isnull). */
static const char *read_int(const char *p, const char *end, int64_t *v, bool *isnull)
{
    *isnull = false;
    *v = 0;
    if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
        *isnull = true;
        return p + 4;
    }
    bool neg = p < end && *p == '-';
    if (neg)
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    uint64_t u = 0;
    while (p < end && *p >= '0' && *p <= '9')
        u = u * 10 + (uint64_t)(*p++ - '0');
    *v = neg ? (int64_t)((uint64_t)0 - u) : (int64_t)u;
    return p;
}

const char *state_ends_next(const char *p, const char *end, state_rec_t *r)
{
    p = ws(p, end);
    if (p < end && (*p == '[' || *p == ','))
        p = ws(p + 1, end);
    if (p >= end || *p != '[')
        return NULL; /* the batch's end (']'), or not a record */
    bool isnull;
    int64_t v[6];
    p = ws(p + 1, end);
    if (!(p = read_str(p, end, &r->name, &isnull)) || isnull)
        return NULL;
    for (int i = 0; i < 5; i++) {
        p = ws(p, end);
        if (p >= end || *p != ',')
            return NULL;
        if (!(p = read_int(ws(p + 1, end), end, &v[i], &isnull)))
            return NULL;
        if (isnull)
            v[i] = -1;
    }
    r->status = (dp_status_t)v[0];
    r->reused = v[1] != 0;
    r->attempts = (unsigned)v[2];
    r->start_ms = v[3];
    r->duration_ms = v[4];
    /* error, plugin: skipped over, not copied (the readers here need neither) */
    for (int i = 0; i < 2; i++) {
        p = ws(p, end);
        if (p >= end || *p != ',')
            return NULL;
        if (!(p = skip_str(ws(p + 1, end), end)))
            return NULL;
    }
    p = ws(p, end);
    if (p >= end || *p != ',' || !(p = read_int(ws(p + 1, end), end, &v[5], &isnull)))
        return NULL;
    r->hash = (uint64_t)v[5];
    r->id = SIZE_MAX;
    p = ws(p, end);
    if (p < end && *p == ',') {
        int64_t id;
        if (!(p = read_int(ws(p + 1, end), end, &id, &isnull)))
            return NULL;
        if (!isnull && id >= 0)
            r->id = (size_t)id;
        p = ws(p, end);
    }
    if (p >= end || *p != ']')
        return NULL;
    return p + 1;
}

/* ---- the result's JSON, compressed ------------------------------------- */

unsigned char *state_compress(const char *text, size_t len, size_t *zlen)
{
    size_t cap = ZSTD_compressBound(len);
    unsigned char *z = malloc(cap ? cap : 1); /* pages untouched past what is written */
    if (!z)
        return NULL;
    /* Level 1: the JSON of a run is so repetitive that more effort gains
     * little. */
    size_t n = ZSTD_compress(z, cap, text, len, 1);
    if (ZSTD_isError(n)) {
        free(z);
        return NULL;
    }
    *zlen = n;
    return z;
}

/* ---- a stream compressed as it is written ----------------------------- */

struct state_zout {
    ZSTD_CCtx *cx;
    state_buf_t z; /* the frame so far */
    size_t len;    /* text bytes written */
    bool failed;
};

/* Compresses in (all of it, or to the frame's end) onto zo->z. */
static bool zout_feed(state_zout_t *zo, const char *p, size_t n, ZSTD_EndDirective how)
{
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        if (!grow(&zo->z, ZSTD_CStreamOutSize()))
            return false;
        ZSTD_outBuffer out = {zo->z.p + zo->z.n, zo->z.cap - zo->z.n, 0};
        size_t left = ZSTD_compressStream2(zo->cx, &out, &in, how);
        zo->z.n += out.pos;
        if (ZSTD_isError(left))
            return false;
        if (how == ZSTD_e_continue ? in.pos == in.size : left == 0)
            return true;
    }
}

static ssize_t zout_write(void *cookie, const char *p, size_t n)
{
    state_zout_t *zo = cookie;
    if (zo->failed || !zout_feed(zo, p, n, ZSTD_e_continue)) {
        zo->failed = true;
        return 0; /* an error for stdio */
    }
    zo->len += n;
    return (ssize_t)n;
}

FILE *state_zout_open(state_zout_t **zop)
{
    state_zout_t *zo = calloc(1, sizeof *zo);
    *zop = zo;
    if (!zo || !(zo->cx = ZSTD_createCCtx()) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(zo->cx, ZSTD_c_compressionLevel, 1)))
        return NULL;
    FILE *f = fopencookie(zo, "w", (cookie_io_functions_t){.write = zout_write});
    /* The JSON writer hands over whole chunks: no copy into a buffer of
     * the stream's own. */
    if (f)
        setvbuf(f, NULL, _IONBF, 0);
    return f;
}

unsigned char *state_zout_close(FILE *f, state_zout_t *zo, size_t *zlen, size_t *len)
{
    bool ok = f && fclose(f) == 0;
    unsigned char *z = NULL;
    if (zo) {
        ok = ok && !zo->failed && zout_feed(zo, "", 0, ZSTD_e_end) && !zo->z.oom;
        ZSTD_freeCCtx(zo->cx);
        if (ok) {
            z = (unsigned char *)zo->z.p;
            *zlen = zo->z.n;
            *len = zo->len;
        } else {
            free(zo->z.p);
        }
        free(zo);
    }
    return z;
}

char *state_decompress(const void *z, size_t zlen, size_t len)
{
    char *text = malloc(len ? len : 1);
    if (!text)
        return NULL;
    size_t n = ZSTD_decompress(text, len, z, zlen);
    if (ZSTD_isError(n) || n != len) {
        free(text);
        return NULL;
    }
    return text;
}

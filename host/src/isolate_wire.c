/*
 * isolate_wire.c - the wire protocol of isolated attempts (isolate_wire.h),
 * shared by the host (isolate.c) and the job runner (host/runner/runner.c):
 * building and reading frames, params on the wire, sending and receiving
 * whole frames, and the cap on messages.
 *
 * Part of the runner's small library (daggerpool_runner_support, with
 * params.c, duration.c and util.c): it uses nothing of the engine.
 */
#include "isolate_wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "params.h"

/* ---- messages ----------------------------------------------------------- */

char *dp__isolate_cap_message_at(char *msg, size_t limit)
{
    if (!msg)
        return NULL;
    size_t len = strlen(msg);
    if (len <= limit)
        return msg;
    size_t keep = DP_ISOLATE_MAX_MESSAGE;
    /* Do not cut a UTF-8 sequence in half: back up over continuation bytes. */
    while (keep > 0 && ((unsigned char)msg[keep] & 0xC0) == 0x80)
        keep--;
    char note[DP_ISOLATE_CAP_NOTE_MAX];
    int n = snprintf(note, sizeof note, "... [truncated: %zu bytes in all]", len);
    memcpy(msg + keep, note, (size_t)n + 1); /* keep + n < len: fits */
    char *smaller = realloc(msg, keep + (size_t)n + 1);
    return smaller ? smaller : msg;
}

char *dp__isolate_cap_message(char *msg)
{
    return dp__isolate_cap_message_at(msg, DP_ISOLATE_MAX_MESSAGE);
}

/* ---- the wire ----------------------------------------------------------- */

static void put(dp_iso_buf_t *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void dp__iso_begin(dp_iso_buf_t *b, unsigned type)
{
    b->len = 0;
    b->oom = false;
    uint32_t zero = 0;
    put(b, &zero, sizeof zero);
    dp__iso_put_u8(b, (uint8_t)type);
}

void dp__iso_put_u8(dp_iso_buf_t *b, uint8_t v)
{
    put(b, &v, sizeof v);
}

void dp__iso_put_u32(dp_iso_buf_t *b, uint32_t v)
{
    put(b, &v, sizeof v);
}

void dp__iso_put_u64(dp_iso_buf_t *b, uint64_t v)
{
    put(b, &v, sizeof v);
}

void dp__iso_put_bytes(dp_iso_buf_t *b, const void *data, size_t len)
{
    if (len > DP_ISOLATE_MAX_FRAME) {
        b->oom = true;
        return;
    }
    dp__iso_put_u32(b, (uint32_t)len);
    if (len)
        put(b, data, len);
}

void dp__iso_put_str(dp_iso_buf_t *b, const char *s)
{
    if (!s)
        s = "";
    size_t len = strlen(s);
    dp__iso_put_u32(b, (uint32_t)len);
    put(b, s, len + 1);
}

static void put_f64(dp_iso_buf_t *b, double v)
{
    put(b, &v, sizeof v);
}

void dp__iso_put_params(dp_iso_buf_t *b, const dp_params_t *p)
{
    char origin[1024];
    dp__iso_put_str(b, p ? dp__params_origin(p, origin, sizeof origin) : "");
    size_t n = dp__params_count(p);
    dp__iso_put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const char *key = dp__params_key_at(p, i);
        dp_param_kind_t kind = dp__params_kind(p, key);
        dp__iso_put_str(b, key);
        dp__iso_put_u8(b, (uint8_t)kind);
        switch (kind) {
        case DP_PARAM_KIND_STRING: {
            const char *s = "";
            dp__params_get_string(p, key, &s);
            dp__iso_put_str(b, s);
            break;
        }
        case DP_PARAM_KIND_INT: {
            int64_t v = 0;
            dp__params_get_int(p, key, &v);
            dp__iso_put_u64(b, (uint64_t)v);
            break;
        }
        case DP_PARAM_KIND_FLOAT: {
            double v = 0;
            dp__params_get_float(p, key, &v);
            put_f64(b, v);
            break;
        }
        case DP_PARAM_KIND_BOOL: {
            int v = 0;
            dp__params_get_bool(p, key, &v);
            dp__iso_put_u8(b, (uint8_t)(v != 0));
            break;
        }
        case DP_PARAM_KIND_LIST: {
            size_t count = 0;
            dp__params_list_count(p, key, &count);
            dp__iso_put_u32(b, (uint32_t)count);
            for (size_t j = 0; j < count; j++) {
                const char *s = "";
                dp__params_list_item(p, key, j, &s);
                dp__iso_put_str(b, s);
            }
            break;
        }
        case DP_PARAM_KIND_GROUP: {
            const dp_params_t *g = NULL;
            dp__params_get_group(p, key, &g);
            dp__iso_put_params(b, g);
            break;
        }
        default:
            b->oom = true; /* a kind the wire does not know: refuse to send */
            break;
        }
    }
    /* The getters above never fail for the kinds asked, but keep the
     * plugin-visible diagnostic as it was. */
    dp__params_clear_error(p);
}

bool dp__iso_end(dp_iso_buf_t *b)
{
    if (b->oom || b->len < 5 || b->len - 4 > DP_ISOLATE_MAX_FRAME)
        return false;
    uint32_t n = (uint32_t)(b->len - 4);
    memcpy(b->data, &n, sizeof n);
    return true;
}

void dp__iso_buf_free(dp_iso_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static const void *get(dp_iso_reader_t *r, size_t n)
{
    if (r->bad || r->n < n) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->p;
    r->p += n;
    r->n -= n;
    return p;
}

uint8_t dp__iso_get_u8(dp_iso_reader_t *r)
{
    const void *p = get(r, 1);
    return p ? *(const uint8_t *)p : 0;
}

uint32_t dp__iso_get_u32(dp_iso_reader_t *r)
{
    uint32_t v = 0;
    const void *p = get(r, sizeof v);
    if (p)
        memcpy(&v, p, sizeof v);
    return v;
}

uint64_t dp__iso_get_u64(dp_iso_reader_t *r)
{
    uint64_t v = 0;
    const void *p = get(r, sizeof v);
    if (p)
        memcpy(&v, p, sizeof v);
    return v;
}

static double get_f64(dp_iso_reader_t *r)
{
    double v = 0;
    const void *p = get(r, sizeof v);
    if (p)
        memcpy(&v, p, sizeof v);
    return v;
}

const void *dp__iso_get_bytes(dp_iso_reader_t *r, size_t *len)
{
    uint32_t n = dp__iso_get_u32(r);
    const void *p = get(r, n);
    *len = p ? n : 0;
    return p ? p : (r->bad ? NULL : "");
}

const char *dp__iso_get_str(dp_iso_reader_t *r)
{
    uint32_t n = dp__iso_get_u32(r);
    if (r->bad || n == UINT32_MAX)
        return NULL;
    const char *s = get(r, (size_t)n + 1);
    if (!s || s[n] != '\0' || memchr(s, '\0', n)) {
        r->bad = true;
        return NULL;
    }
    return s;
}

static bool get_params_into(dp_iso_reader_t *r, dp_params_t *p, int depth)
{
    const char *origin = dp__iso_get_str(r);
    if (!origin || depth > 64)
        return false;
    if (*origin)
        dp_params_set_origin(p, origin, 0);
    uint32_t n = dp__iso_get_u32(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        const char *key = dp__iso_get_str(r);
        uint8_t kind = dp__iso_get_u8(r);
        if (!key)
            return false;
        int rc = DP_OK;
        switch (kind) {
        case DP_PARAM_KIND_STRING: {
            const char *s = dp__iso_get_str(r);
            rc = s ? dp_params_set_string(p, key, s) : DP_EINVAL;
            break;
        }
        case DP_PARAM_KIND_INT: rc = dp_params_set_int(p, key, (int64_t)dp__iso_get_u64(r)); break;
        case DP_PARAM_KIND_FLOAT: rc = dp_params_set_float(p, key, get_f64(r)); break;
        case DP_PARAM_KIND_BOOL: rc = dp_params_set_bool(p, key, dp__iso_get_u8(r) != 0); break;
        case DP_PARAM_KIND_LIST: {
            uint32_t count = dp__iso_get_u32(r);
            if (count > r->n) /* each item takes at least 5 bytes */
                return false;
            const char **items = calloc(count ? count : 1, sizeof(*items));
            if (!items)
                return false;
            for (uint32_t j = 0; j < count && !r->bad; j++)
                items[j] = dp__iso_get_str(r);
            rc = r->bad ? DP_EINVAL : dp_params_set_list(p, key, items, count);
            free(items);
            break;
        }
        case DP_PARAM_KIND_GROUP: {
            dp_params_t *g = dp_params_add_group(p, key);
            if (!g || !get_params_into(r, g, depth + 1))
                return false;
            break;
        }
        default: return false;
        }
        if (rc != DP_OK || r->bad)
            return false;
    }
    return !r->bad;
}

dp_params_t *dp__iso_get_params(dp_iso_reader_t *r)
{
    dp_params_t *p = dp_params_new();
    if (p && !get_params_into(r, p, 0)) {
        dp_params_free(p);
        r->bad = true;
        return NULL;
    }
    return p;
}

int dp__iso_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                poll(&pfd, 1, 1000);
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_full(int fd, void *buf, size_t len, bool *eof_at_start)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            if (eof_at_start)
                *eof_at_start = got == 0;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

int dp__iso_recv_frame(int fd, dp_iso_buf_t *frame, unsigned *type)
{
    uint32_t n;
    bool eof = false;
    if (read_full(fd, &n, sizeof n, &eof) != 0)
        return eof ? 1 : -1;
    if (n < 1 || n > DP_ISOLATE_MAX_FRAME)
        return -1;
    if (frame->cap < n) {
        unsigned char *d = realloc(frame->data, n);
        if (!d)
            return -1;
        frame->data = d;
        frame->cap = n;
    }
    if (read_full(fd, frame->data, n, NULL) != 0)
        return -1;
    frame->len = n;
    *type = frame->data[0];
    return 0;
}

/*
 * text.c - bytes as text (see text.h).
 */
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if it is not one. */
size_t dp__utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

bool dp__utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = dp__utf8_seq(p);
        if (!n)
            return false;
        p += n;
    }
    return true;
}

char *dp__utf8_sanitize(const char *s)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    /* Each bad byte becomes 3 bytes at most. */
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p) {
        size_t n = dp__utf8_seq(p);
        if (n) {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
        }
    }
    out[o] = '\0';
    return out;
}

char *dp__text_escape(const char *s)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    char *out = malloc(len * 4 + 1); /* a byte becomes \xNN at most */
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p) {
        size_t n = dp__utf8_seq(p);
        if (n > 1 || (n == 1 && *p >= 0x20 && *p != 0x7f)) {
            memcpy(out + o, p, n);
            o += n;
            p += n;
            continue;
        }
        switch (*p) {
        case '\n':
            memcpy(out + o, "\\n", 2);
            o += 2;
            break;
        case '\r':
            memcpy(out + o, "\\r", 2);
            o += 2;
            break;
        case '\t':
            memcpy(out + o, "\\t", 2);
            o += 2;
            break;
        default: o += (size_t)snprintf(out + o, 5, "\\x%02X", *p); break;
        }
        p++;
    }
    out[o] = '\0';
    return out;
}

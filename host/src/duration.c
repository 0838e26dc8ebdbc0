/*
 * duration.c - durations as people write them in workflow files and on the
 * command line ("250ms", "30s", "5m", "1h30m", "1.5s"), and back.
 *
 * A duration is a whole number of milliseconds in a uint64_t. The text form
 * is a sequence of <number><unit> components, units from largest to smallest
 * (h, m, s, ms), each at most once; a number may have a fraction as long as
 * the total stays a whole number of milliseconds. A bare integer is
 * milliseconds, matching the workflow file's "integer = milliseconds" rule.
 *
 * The parser does integer arithmetic only (no strtod) so that "0.1s" is
 * exactly 100 ms and overflow is detected rather than rounded away.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daggerpool/daggerpool.h"
#include "util.h"

/* Units from largest to smallest; the parser enforces this order so that a
 * duration has one spelling per value ("1h30m", never "30m1h"). */
static const struct {
    const char *name;
    uint64_t ms;
} units[] = {
    {"h", 3600000u},
    {"m", 60000u},
    {"s", 1000u},
    {"ms", 1u},
};
enum { N_UNITS = sizeof units / sizeof units[0] };

#define DURATION_HINT "e.g. \"250ms\", \"30s\", \"5m\", \"1h30m\", \"1.5s\" or an integer of milliseconds"

/* a*b+c without overflow; false when it would wrap. */
static bool mul_add(uint64_t a, uint64_t b, uint64_t c, uint64_t *out)
{
    if (b && a > (UINT64_MAX - c) / b)
        return false;
    *out = a * b + c;
    return true;
}

/* Matches the unit at p: longest name first so "ms" is not read as "m". */
static int match_unit(const char *p, size_t *namelen)
{
    int best = -1;
    size_t bestlen = 0;
    for (int i = 0; i < N_UNITS; i++) {
        size_t n = strlen(units[i].name);
        if (strncmp(p, units[i].name, n) == 0 && n > bestlen) {
            best = i;
            bestlen = n;
        }
    }
    *namelen = bestlen;
    return best;
}

/* Reads the number at *pp, digits with an optional fraction, as whole +
 * frac / frac_scale, and moves *pp past it. DP_OK, or DP_EINVAL with err
 * saying what is wrong with text. */
static int parse_number(const char *text, const char **pp, uint64_t *whole_out, uint64_t *frac_out, uint64_t *scale_out,
                        char *err, size_t errlen)
{
    const char *p = *pp;
    uint64_t whole = 0, frac = 0, frac_scale = 1;
    bool digits = false;
    while (isdigit((unsigned char)*p)) {
        if (!mul_add(whole, 10, (uint64_t)(*p - '0'), &whole))
            return dp__seterr(err, errlen, DP_EINVAL, "duration \"%s\" is too large (at most %" PRIu64 " ms)", text,
                              UINT64_MAX);
        digits = true;
        p++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            /* Digits beyond 10^18 cannot change a millisecond total
             * unless non-zero, and then they make it fractional. */
            if (frac_scale < 1000000000000000000ull) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_scale *= 10;
            } else if (*p != '0') {
                return dp__seterr(err, errlen, DP_EINVAL,
                                  "duration \"%s\" is finer than a millisecond; durations are whole "
                                  "milliseconds",
                                  text);
            }
            digits = true;
            p++;
        }
    }
    if (!digits)
        return dp__seterr(err, errlen, DP_EINVAL,
                          "bad duration \"%s\": a '.' needs digits around it; expected " DURATION_HINT, text);
    *pp = p;
    *whole_out = whole;
    *frac_out = frac;
    *scale_out = frac_scale;
    return DP_OK;
}

/* Contract: on success *ms holds the value and 0 is returned; on failure
 * DP_EINVAL is returned, *ms is untouched and err says what was wrong with
 * the text and what is accepted. Pure; any thread. */
int dp_duration_parse(const char *text, uint64_t *ms, char *err, size_t errlen)
{
    if (!text || !ms)
        return dp__seterr(err, errlen, DP_EINVAL, "no duration given; expected " DURATION_HINT);
    if (!*text)
        return dp__seterr(err, errlen, DP_EINVAL, "empty duration; expected " DURATION_HINT);
    if (text[0] == '-')
        return dp__seterr(err, errlen, DP_EINVAL, "negative duration \"%s\": durations must be 0 or more", text);

    const char *p = text;
    uint64_t total = 0;
    int last_unit = -1; /* index of the previous component's unit */
    bool any_unit = false;

    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return dp__seterr(err, errlen, DP_EINVAL,
                              "bad duration \"%s\": unexpected '%c' at offset %zu; expected " DURATION_HINT, text, *p,
                              (size_t)(p - text));

        /* Integer part, then an optional fraction kept as digits/10^n. */
        uint64_t whole, frac, frac_scale;
        int rc = parse_number(text, &p, &whole, &frac, &frac_scale, err, errlen);
        if (rc != DP_OK)
            return rc;

        size_t namelen;
        int u = match_unit(p, &namelen);
        if (u < 0) {
            if (*p == '\0' && !any_unit) {
                /* A bare number: milliseconds, and therefore whole. */
                if (frac_scale > 1)
                    return dp__seterr(err, errlen, DP_EINVAL,
                                      "bad duration \"%s\": a number without a unit is milliseconds and "
                                      "must be whole; add a unit for a fraction, e.g. \"1.5s\"",
                                      text);
                *ms = whole;
                return DP_OK;
            }
            if (*p == '\0')
                return dp__seterr(err, errlen, DP_EINVAL,
                                  "bad duration \"%s\": the last number has no unit (ms, s, m or h)", text);
            return dp__seterr(err, errlen, DP_EINVAL,
                              "bad duration \"%s\": unknown unit at \"%s\"; units are ms, s, m and h; "
                              "expected " DURATION_HINT,
                              text, p);
        }
        if (u <= last_unit)
            return dp__seterr(err, errlen, DP_EINVAL,
                              "bad duration \"%s\": units must go from largest to smallest, each once "
                              "(h, m, s, ms), e.g. \"1h30m\"",
                              text);

        /* value = whole*unit + frac*unit/frac_scale, exactly. */
        uint64_t unit_ms = units[u].ms, part, frac_ms = 0;
        if (!mul_add(whole, unit_ms, 0, &part))
            return dp__seterr(err, errlen, DP_EINVAL, "duration \"%s\" is too large (at most %" PRIu64 " ms)", text,
                              UINT64_MAX);
        if (frac) {
            /* frac < frac_scale <= 10^18 and unit_ms <= 3.6e6: the product
             * needs up to 82 bits, so compute it in 128. */
            unsigned __int128 num = (unsigned __int128)frac * unit_ms;
            if (num % frac_scale != 0)
                return dp__seterr(err, errlen, DP_EINVAL,
                                  "duration \"%s\" is finer than a millisecond; durations are whole "
                                  "milliseconds",
                                  text);
            frac_ms = (uint64_t)(num / frac_scale); /* < unit_ms */
        }
        if (part > UINT64_MAX - frac_ms || part + frac_ms > UINT64_MAX - total)
            return dp__seterr(err, errlen, DP_EINVAL, "duration \"%s\" is too large (at most %" PRIu64 " ms)", text,
                              UINT64_MAX);
        total += part + frac_ms;
        last_unit = u;
        any_unit = true;
        p += namelen;
    }
    *ms = total;
    return DP_OK;
}

/* Contract: writes the shortest form that dp_duration_parse reads back as
 * the same value ("1h30m", "2s", "250ms", "1.5s", "0s") into buf (truncated
 * to len) and returns buf. Pure; any thread. */
const char *dp_duration_format(uint64_t ms, char *buf, size_t len)
{
    if (!buf || !len)
        return "";
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    if (ms < 1000) {
        snprintf(buf, len, "%" PRIu64 "ms", ms);
        return buf;
    }
    uint64_t h = ms / 3600000u, m = ms / 60000u % 60u, s = ms / 1000u % 60u, frac = ms % 1000u;
    char tmp[64];
    size_t n = 0;
    if (h)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%" PRIu64 "h", h);
    if (m)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%" PRIu64 "m", m);
    if (frac) {
        /* Seconds with the milliseconds as a fraction, trailing zeros cut. */
        char f[4];
        snprintf(f, sizeof f, "%03" PRIu64, frac);
        for (int i = 2; i > 0 && f[i] == '0'; i--)
            f[i] = '\0';
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%" PRIu64 ".%ss", s, f);
    } else if (s) {
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%" PRIu64 "s", s);
    }
    snprintf(buf, len, "%s", tmp);
    return buf;
}

/*
 * config_problems.c - the problems of a workflow file and the typed getters
 * that report into them (config_problems.h).
 *
 * Problems are collected, not just the first: a user fixing a file wants
 * the whole list. Each is one line "FILE:LINE: what; expected; fix", the
 * file and line those of the setting (through the @includes: dp__src_where).
 * A getter that refuses a setting says what it is, what it must be and
 * what was found; the caller names the setting ("'timeout' of job 'A'").
 */
#include "config_problems.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Problem list                                                              */
/* ------------------------------------------------------------------------ */

void dp__problem(dp__problems_t *pr, const char *file, int line, const char *fmt, ...)
{
    pr->count++;
    if (!pr->buf || pr->len == 0 || pr->count > DP__MAX_PROBLEMS)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One problem, one line: the names in it (jobs, keys, files) may hold
     * any bytes, and a raw newline would forge a FILE:LINE line of its own,
     * an ESC a terminal escape. Escaped as the summary escapes them. */
    char *emsg = dp__text_escape(msg), *efile = dp__text_escape(file);
    int n;
    if (line > 0)
        n = snprintf(pr->buf + pr->used, pr->len - pr->used, "%s%s:%d: %s", pr->used ? "\n" : "", efile ? efile : file,
                     line, emsg ? emsg : msg);
    else
        n = snprintf(pr->buf + pr->used, pr->len - pr->used, "%s%s: %s", pr->used ? "\n" : "", efile ? efile : file,
                     emsg ? emsg : msg);
    free(emsg);
    free(efile);
    if (n > 0)
        pr->used += (size_t)n < pr->len - pr->used ? (size_t)n : pr->len - pr->used - 1;
}

void dp__problems_finish(dp__problems_t *pr)
{
    if (pr->count > DP__MAX_PROBLEMS && pr->buf && pr->len > pr->used + 1) {
        int n = snprintf(pr->buf + pr->used, pr->len - pr->used, "\n... and %u more problems",
                         pr->count - DP__MAX_PROBLEMS);
        if (n > 0)
            pr->used += (size_t)n < pr->len - pr->used ? (size_t)n : pr->len - pr->used - 1;
    }
}

bool dp__problems_listing(const dp__problems_t *pr)
{
    return pr->buf && pr->len && pr->count < DP__MAX_PROBLEMS;
}

/* ------------------------------------------------------------------------ */
/* Settings                                                                  */
/* ------------------------------------------------------------------------ */

const char *dp__cfg_file(const dp__cfg_reader_t *rd, const config_setting_t *s)
{
    if (!s)
        return rd->path;
    const char *file;
    int line;
    dp__src_where(rd->src, config_setting_source_line(s), &file, &line);
    return file;
}

int dp__cfg_line(const dp__cfg_reader_t *rd, const config_setting_t *s)
{
    if (!s)
        return 0;
    const char *file;
    int line;
    dp__src_where(rd->src, config_setting_source_line(s), &file, &line);
    return line;
}

const char *dp__cfg_type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP: return "a group { ... }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array [ ... ]";
    case CONFIG_TYPE_LIST: return "a list ( ... )";
    default: return "nothing";
    }
}

bool dp__cfg_is_int(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

bool dp__cfg_key_in(const char *key, const char *const *list)
{
    for (size_t k = 0; list[k]; k++)
        if (strcmp(key, list[k]) == 0)
            return true;
    return false;
}

void dp__cfg_unknown_key(dp__cfg_reader_t *rd, const config_setting_t *m, const char *const *known, const char *where)
{
    const char *key = config_setting_name(m);
    char list[256] = "";
    size_t used = 0;
    for (size_t k = 0; known[k]; k++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", known[k]);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    const char *near = dp__nearest_word(key, known);
    if (near)
        DP__CFG_PROBLEM(rd, m, "unknown key '%s' %s; did you mean '%s'? (known keys: %s)", key, where, near, list);
    else
        DP__CFG_PROBLEM(rd, m, "unknown key '%s' %s; known keys: %s", key, where, list);
}

void dp__cfg_check_keys(dp__cfg_reader_t *rd, const config_setting_t *group, const char *const *known,
                        const char *where)
{
    for (int i = 0; i < config_setting_length(group); i++) {
        const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
        if (!dp__cfg_key_in(config_setting_name(m), known))
            dp__cfg_unknown_key(rd, m, known, where);
    }
}

/* The stream handed libconfig a stand-in for each integer it would have
 * misread (config_source.c): resolved here, for every getter. */
bool dp__cfg_int(dp__cfg_reader_t *rd, const config_setting_t *s, long long *v, const char **text)
{
    return dp__src_int(rd->src, config_setting_get_int64(s), v, text);
}

void dp__cfg_report_unmet_ints(dp__cfg_reader_t *rd)
{
    const char *file, *text;
    int line;
    for (size_t i = 0; (text = dp__src_unmet_int(rd->src, &i, &file, &line));)
        dp__problem(rd->pr, file, line, "integer %s is out of range: integers are 64-bit, from %lld to %lld", text,
                    LLONG_MIN, LLONG_MAX);
}

bool dp__cfg_string(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, const char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        DP__CFG_PROBLEM(rd, s, "%s must be a string in double quotes, found %s", what, dp__cfg_type_name(s));
        return false;
    }
    *out = config_setting_get_string(s);
    return true;
}

bool dp__cfg_bool(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, bool *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        DP__CFG_PROBLEM(rd, s, "%s must be a boolean (true or false), found %s", what, dp__cfg_type_name(s));
        return false;
    }
    *out = config_setting_get_bool(s);
    return true;
}

bool dp__cfg_uint(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, long long min, long long max,
                  unsigned *out)
{
    if (!dp__cfg_is_int(s)) {
        DP__CFG_PROBLEM(rd, s, "%s must be an integer, found %s", what, dp__cfg_type_name(s));
        return false;
    }
    long long v;
    const char *text;
    if (!dp__cfg_int(rd, s, &v, &text)) {
        DP__CFG_PROBLEM(rd, s, "%s must be between %lld and %lld, found %s", what, min, max, text);
        return false;
    }
    if (v < min || v > max) {
        DP__CFG_PROBLEM(rd, s, "%s must be between %lld and %lld, found %lld", what, min, max, v);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

bool dp__cfg_float(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, double min, double max,
                   double *out)
{
    double v;
    long long iv;
    const char *text;
    if (dp__cfg_is_int(s) && !dp__cfg_int(rd, s, &iv, &text)) {
        DP__CFG_PROBLEM(rd, s, "%s must be between %g and %g, found %s", what, min, max, text);
        return false;
    }
    if (dp__cfg_is_int(s))
        v = (double)iv;
    else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else {
        DP__CFG_PROBLEM(rd, s, "%s must be a number, found %s", what, dp__cfg_type_name(s));
        return false;
    }
    if (!(v >= min && v <= max)) {
        DP__CFG_PROBLEM(rd, s, "%s must be between %g and %g, found %g", what, min, max, v);
        return false;
    }
    *out = v;
    return true;
}

bool dp__cfg_duration(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, uint64_t *out)
{
    if (dp__cfg_is_int(s)) {
        long long v;
        const char *text;
        if (!dp__cfg_int(rd, s, &v, &text)) {
            DP__CFG_PROBLEM(rd, s,
                            "%s must be at most %lld milliseconds, found %s; write a smaller integer or a string "
                            "such as \"30s\" or \"1h30m\"",
                            what, LLONG_MAX, text);
            return false;
        }
        if (v < 0) {
            DP__CFG_PROBLEM(rd, s,
                            "%s must not be negative, found %lld; write 0 or more milliseconds, or a string "
                            "such as \"30s\"",
                            what, v);
            return false;
        }
        *out = (uint64_t)v;
        return true;
    }
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        char msg[512];
        uint64_t ms;
        if (dp_duration_parse(config_setting_get_string(s), &ms, msg, sizeof msg) != DP_OK) {
            DP__CFG_PROBLEM(rd, s, "%s: %s", what, msg);
            return false;
        }
        *out = ms;
        return true;
    }
    DP__CFG_PROBLEM(rd, s,
                    "%s must be a duration: an integer of milliseconds or a string such as \"30s\" or \"1h30m\", "
                    "found %s",
                    what, dp__cfg_type_name(s));
    return false;
}

bool dp__cfg_string_list(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, bool single_ok,
                         const config_setting_t ***items, size_t *n)
{
    int t = config_setting_type(s);
    if (single_ok && t == CONFIG_TYPE_STRING) {
        *items = malloc(sizeof **items);
        if (!*items) {
            rd->oom = true;
            return false;
        }
        (*items)[0] = s;
        *n = 1;
        return true;
    }
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
        DP__CFG_PROBLEM(rd, s, "%s must be a list of strings such as [ \"a\", \"b\" ], found %s", what,
                        dp__cfg_type_name(s));
        return false;
    }
    int len = config_setting_length(s);
    *items = calloc(len ? (size_t)len : 1, sizeof **items);
    if (!*items) {
        rd->oom = true;
        return false;
    }
    bool ok = true;
    for (int i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            DP__CFG_PROBLEM(rd, e, "%s must be a list of strings such as [ \"a\", \"b\" ]; item %d is %s", what, i + 1,
                            dp__cfg_type_name(e));
            ok = false;
        }
        (*items)[i] = e;
    }
    if (!ok) {
        free(*items);
        *items = NULL;
        return false;
    }
    *n = (size_t)len;
    return true;
}

bool dp__cfg_utf8_ok(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    while (*p && *p < 0x80) /* the usual name: ASCII */
        p++;
    return !*p || dp__utf8_valid((const char *)p);
}

void dp__cfg_not_utf8(dp__cfg_reader_t *rd, const config_setting_t *s, const char *lead, const char *name)
{
    char *shown = dp__text_escape(name);
    if (!shown)
        rd->oom = true;
    else
        DP__CFG_PROBLEM(rd, s, "%s \"%s\", which is not valid UTF-8; names must be UTF-8 text", lead, shown);
    free(shown);
}

bool dp__cfg_group(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, const char *example)
{
    if (config_setting_type(s) == CONFIG_TYPE_GROUP)
        return true;
    DP__CFG_PROBLEM(rd, s, "%s must be a group such as %s, found %s", what, example, dp__cfg_type_name(s));
    return false;
}

bool dp__cfg_usable_group(dp__cfg_reader_t *rd, const config_setting_t *g, const char *what, const char *example,
                          const char *const *keys, const char *where)
{
    if (!g)
        return false;
    if (!dp__cfg_group(rd, g, what, example))
        return false;
    dp__cfg_check_keys(rd, g, keys, where);
    return true;
}

bool dp__cfg_size(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"B", 1},        {"KiB", 1ull << 10}, {"MiB", 1ull << 20},   {"GiB", 1ull << 30},     {"TiB", 1ull << 40},
        {"KB", 1000ull}, {"MB", 1000000ull},  {"GB", 1000000000ull}, {"TB", 1000000000000ull}};
    if (dp__cfg_is_int(s)) {
        long long v;
        const char *text;
        if (!dp__cfg_int(rd, s, &v, &text)) {
            DP__CFG_PROBLEM(rd, s, "%s must be at most %lld bytes, found %s; write a size such as \"512MiB\"", what,
                            LLONG_MAX, text);
            return false;
        }
        if (v < 0) {
            DP__CFG_PROBLEM(rd, s, "%s must not be negative, found %lld", what, v);
            return false;
        }
        *out = (uint64_t)v;
        return true;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        DP__CFG_PROBLEM(rd, s, "%s must be a size such as \"512MiB\" or an integer of bytes, found %s", what,
                        dp__cfg_type_name(s));
        return false;
    }
    const char *text = config_setting_get_string(s), *p = text;
    uint64_t v = 0;
    bool digits = false;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p++ - '0');
        if (v > (UINT64_MAX - d) / 10) {
            DP__CFG_PROBLEM(rd, s, "%s \"%s\" is too large", what, text);
            return false;
        }
        v = v * 10 + d;
        digits = true;
    }
    while (*p == ' ')
        p++;
    for (size_t i = 0; digits && i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].name) == 0) {
            if (v > UINT64_MAX / units[i].mult) {
                DP__CFG_PROBLEM(rd, s, "%s \"%s\" is too large", what, text);
                return false;
            }
            *out = v * units[i].mult;
            return true;
        }
    }
    DP__CFG_PROBLEM(rd, s,
                    "%s: bad size \"%s\"; expected a whole number and a unit (B, KiB, MiB, GiB, TiB, KB, "
                    "MB, GB, TB), e.g. \"512MiB\", or an integer of bytes",
                    what, text);
    return false;
}

/* config_problems.h - the problems of a workflow file, listed all at once
 * (one line each: "FILE:LINE: what; expected; found; fix"), and the typed
 * getters that read libconfig settings into C values, reporting into that
 * list. See config_problems.c. Private to the config_*.c files. */
#ifndef DP_CONFIG_PROBLEMS_H
#define DP_CONFIG_PROBLEMS_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_source.h"

/* Problems listed before the rest is summarised as "... and N more". */
#define DP__MAX_PROBLEMS 20

/* The list: lines in buf (len bytes, used so far; NULL or 0: only
 * counted), and how many problems there were. */
typedef struct dp__problems {
    char *buf;
    size_t len;
    size_t used;
    unsigned count;
} dp__problems_t;

/* Adds "FILE:LINE: message" (or "FILE: message" for line 0) on a line of
 * its own, while fewer than DP__MAX_PROBLEMS were listed; counts it always. */
void dp__problem(dp__problems_t *pr, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Ends the list: "... and N more problems" when some were only counted. */
void dp__problems_finish(dp__problems_t *pr);

/* Whether the next problem will be listed (not only counted): work that
 * only makes its message better (a suggestion) is skipped otherwise. */
bool dp__problems_listing(const dp__problems_t *pr);

/* Reading settings out of libconfig's tree: where problems go, where the
 * settings came from, and whether memory ran out (then every answer is
 * "out of memory", whatever else was found). */
typedef struct dp__cfg_reader {
    dp__problems_t *pr;
    dp__src_t *src;
    const char *path; /* the workflow file: the place of a problem without a setting */
    bool oom;
} dp__cfg_reader_t;

/* The file and line setting s came from (s NULL: the workflow file, 0). */
const char *dp__cfg_file(const dp__cfg_reader_t *rd, const config_setting_t *s);
int dp__cfg_line(const dp__cfg_reader_t *rd, const config_setting_t *s);

/* A problem at setting s. */
#define DP__CFG_PROBLEM(rd, s, ...) dp__problem((rd)->pr, dp__cfg_file(rd, s), dp__cfg_line(rd, s), __VA_ARGS__)

/* "a group { ... }", "an integer", ...: what s is, for "found %s". */
const char *dp__cfg_type_name(const config_setting_t *s);
bool dp__cfg_is_int(const config_setting_t *s);

/* Whether key is one of the NULL-terminated list. */
bool dp__cfg_key_in(const char *key, const char *const *list);

/* Refuses member m, whose key is not in known (NULL-terminated), with the
 * nearest known key if one is near, and the known keys. where: "in job 'B'"
 * and the like. */
void dp__cfg_unknown_key(dp__cfg_reader_t *rd, const config_setting_t *m, const char *const *known, const char *where);

/* dp__cfg_unknown_key for each member of group not in known. */
void dp__cfg_check_keys(dp__cfg_reader_t *rd, const config_setting_t *group, const char *const *known,
                        const char *where);

/* An integer setting's value as written: true with *v, or false with
 * *text, the value as written, for one beyond 64 bits (dp__src_int). */
bool dp__cfg_int(dp__cfg_reader_t *rd, const config_setting_t *s, long long *v, const char **text);

/* Refuses the integers beyond 64 bits that no getter met (in a list, under
 * an unknown key). */
void dp__cfg_report_unmet_ints(dp__cfg_reader_t *rd);

/* The getters: true with *out, or false (and a problem reported at s, which
 * names it as `what`, such as "'timeout' of job 'A'") when s has the wrong
 * type or value; *out untouched then. */
bool dp__cfg_string(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, const char **out);
bool dp__cfg_bool(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, bool *out);
bool dp__cfg_uint(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, long long min, long long max,
                  unsigned *out);
bool dp__cfg_float(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, double min, double max,
                   double *out);
/* A duration: an integer of milliseconds or a string such as "30s". */
bool dp__cfg_duration(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, uint64_t *out);
/* A size in bytes: an integer, or a string such as "512MiB", "2GiB",
 * "100MB" (KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB of 1000). */
bool dp__cfg_size(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, uint64_t *out);

/* An array or list of strings (a single string is one item when
 * single_ok): a malloc'd array of their settings (the strings are
 * libconfig's) in *items, *n of them; false with *items NULL otherwise. */
bool dp__cfg_string_list(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, bool single_ok,
                         const config_setting_t ***items, size_t *n);

/* Whether s is a group; if not, refused: "WHAT must be a group such as
 * EXAMPLE, found ...". */
bool dp__cfg_group(dp__cfg_reader_t *rd, const config_setting_t *s, const char *what, const char *example);

/* g (if any) is a group, its unknown keys (not in keys) refused: whether
 * its members can be read. */
bool dp__cfg_usable_group(dp__cfg_reader_t *rd, const config_setting_t *g, const char *what, const char *example,
                          const char *const *keys, const char *where);

/* Names are the result's JSON keys and words in messages: UTF-8 text, or
 * two of them could become one ("a\xff" and "a\xfe" are both "a\uFFFD"). */
bool dp__cfg_utf8_ok(const char *name);

/* Refuses name, which is not UTF-8; lead: "workflow.name is". */
void dp__cfg_not_utf8(dp__cfg_reader_t *rd, const config_setting_t *s, const char *lead, const char *name);

#endif /* DP_CONFIG_PROBLEMS_H */

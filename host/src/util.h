/* util.h - small helpers shared by the engine's files: clocks, error text,
 * bounded formatting. Private to libdaggerpool. */
#ifndef DP_UTIL_H
#define DP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "daggerpool/daggerpool.h"

/* CLOCK_MONOTONIC in nanoseconds (the clock of every deadline). */
static inline uint64_t dp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CLOCK_REALTIME in nanoseconds (for log records). */
static inline uint64_t dp__wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ms -> ns without overflow (saturates). */
static inline uint64_t dp__ms_to_ns(uint64_t ms)
{
    return ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u;
}

/* Adds without overflow (saturates): deadlines far away stay far away. */
static inline uint64_t dp__sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Writes a formatted message into err (if err and errlen), returns code. */
int dp__seterr(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A malloc'd formatted string, or NULL when out of memory. */
char *dp__vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
char *dp__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *dp__strdup(const char *s);

/* CLOCK_MONOTONIC in milliseconds (bounds of waits on other processes). */
static inline uint64_t dp__now_ms(void)
{
    return dp__now_ns() / 1000000u;
}

/* CLOCK_REALTIME in milliseconds (when a plugin was loaded). */
static inline uint64_t dp__wall_ms(void)
{
    return dp__wall_ns() / 1000000u;
}

/* Levenshtein distance between a and b (insertions, deletions and
 * substitutions of bytes); SIZE_MAX when either is longer than 64 bytes.
 * For "did you mean" hints: each caller decides how near is near enough. */
size_t dp__edit_distance(const char *a, const char *b);

/* The nearest of the NULL-terminated candidates to word (edit distance),
 * if near enough to be a plausible typo; else NULL. The workflow file's
 * "did you mean". */
const char *dp__nearest_word(const char *word, const char *const *candidates);

#endif /* DP_UTIL_H */

/* text.h - bytes as text. Job names, errors and log messages may hold any
 * bytes; JSON needs valid UTF-8, and lines shown to people must not hold
 * raw control characters (a newline forges a line, ESC drives a
 * terminal). These are the only helpers for that: the JSON writer
 * (jsonw.c), the renderers and the console use them. */
#ifndef DP_TEXT_H
#define DP_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF; 1 for ASCII, including NUL), or 0
 * when p does not start one. */
size_t dp__utf8_seq(const unsigned char *p);
/* Whether all of s is valid UTF-8. */
bool dp__utf8_valid(const char *s);
/* A copy of s (malloc'd, caller frees; NULL when out of memory) with every
 * byte that is not part of a valid UTF-8 sequence replaced by U+FFFD. */
char *dp__utf8_sanitize(const char *s);
/* For line-oriented text (logs, progress lines, messages): a malloc'd copy
 * of s with control characters written as \n, \r, \t or \xNN (so a record
 * stays one line and cannot send terminal escapes) and bytes that are not
 * valid UTF-8 as \xNN. NULL when out of memory. */
char *dp__text_escape(const char *s);

#endif /* DP_TEXT_H */

/* jsonw.h - the one JSON writer of libdaggerpool and the command.
 *
 * Every JSON document daggerpool writes (the result, the trace, JSON log
 * lines, watch's JSON lines) goes through this streaming writer: values
 * are written as they are produced, so memory stays flat however large
 * the document. Its output is byte for byte what jansson's json_dumps
 * writes for the same tree (JSON_INDENT(2) or JSON_COMPACT): jansson stays
 * the parser, and the tests check the two agree (tests/unit/test_jsonw.c).
 * Why not jansson's tree or yajl_gen: bench/README.md, "JSON writers".
 *
 * Strings may hold any bytes: a byte that is not part of a valid UTF-8
 * sequence is written as U+FFFD, control characters as jansson escapes
 * them, so the output is always valid JSON.
 *
 * A writer is used by one thread. Errors are sticky: a failed write or
 * allocation makes every later call a no-op and dp__jsonw_finish report it.
 */
#ifndef DP_JSONW_H
#define DP_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DP__JSONW_MAX_DEPTH 32

typedef struct dp__jsonw {
    FILE *out; /* NULL: the document is kept in buf (dp__jsonw_take) */
    char *buf; /* pending output; flushed to out when it fills */
    size_t len, cap;
    int indent; /* 0: compact, as JSON_COMPACT; n: as JSON_INDENT(n) */
    unsigned depth;
    bool empty[DP__JSONW_MAX_DEPTH];  /* nothing written yet in this container */
    bool object[DP__JSONW_MAX_DEPTH]; /* the container is an object (members need keys) */
    bool after_key;                   /* the next value is a member's */
    int err;                          /* 0, or the first dp_err_t */
} dp__jsonw_t;

/* A writer that streams to out (through its own buffer, flushed by
 * dp__jsonw_finish), or, with out NULL, keeps the document in memory. */
void dp__jsonw_init(dp__jsonw_t *w, FILE *out, int indent);

void dp__jsonw_object_open(dp__jsonw_t *w);
void dp__jsonw_object_close(dp__jsonw_t *w);
void dp__jsonw_array_open(dp__jsonw_t *w);
void dp__jsonw_array_close(dp__jsonw_t *w);
/* The key of the next member of the object being written. */
void dp__jsonw_key(dp__jsonw_t *w, const char *key);
/* The same for a key given as a string literal, which must need no
 * escaping (printable ASCII without '"' or '\\'): written in one step,
 * without the scan dp__jsonw_key makes (a result's job members are most
 * of what a large result's writing costs: bench/README.md, "State"). */
#define dp__jsonw_key_lit(w, key) dp__jsonw_key_plain((w), "" key, sizeof(key) - 1)
void dp__jsonw_key_plain(dp__jsonw_t *w, const char *key, size_t len);

/* A member the caller laid out: the separator and indent before it, as for
 * any member, then text as it is: `"key": value`, valid JSON, escaped as
 * this writer escapes and indented for its indent at depth + 1 (render.c's
 * job records, most of what a large result costs: one copy, not a call per
 * key and value). */
void dp__jsonw_member_text(dp__jsonw_t *w, const char *text, size_t len);
/* s as a JSON string; NULL writes null. */
void dp__jsonw_string(dp__jsonw_t *w, const char *s);
void dp__jsonw_null(dp__jsonw_t *w);
void dp__jsonw_bool(dp__jsonw_t *w, bool v);
void dp__jsonw_int(dp__jsonw_t *w, int64_t v);
/* v, or null when v is negative (a time that does not exist). */
void dp__jsonw_int_or_null(dp__jsonw_t *w, int64_t v);

/* Makes the writer fail with err (a dp_err_t), as a failed write would:
 * for a producer that could not make a value. */
void dp__jsonw_fail(dp__jsonw_t *w, int err);

/* Ends the document: with an out, flushes what is pending to it (not
 * fflush: the caller owns the FILE). 0, or DP_ENOMEM / DP_ESYS (a write
 * failed; errno is kept) / DP_EINVAL (unbalanced containers). Frees the
 * writer's memory unless it keeps the document (out NULL). */
int dp__jsonw_finish(dp__jsonw_t *w);

/* With out NULL, after dp__jsonw_finish returned 0: the document
 * (NUL-terminated, malloc'd, the caller frees) and its length. NULL when
 * the writer failed. The writer is empty afterwards. */
char *dp__jsonw_take(dp__jsonw_t *w, size_t *len);

/* Frees what the writer holds, for a caller abandoning it. */
void dp__jsonw_discard(dp__jsonw_t *w);

#endif /* DP_JSONW_H */

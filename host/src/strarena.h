/* strarena.h - many short strings, few mallocs (private to libdaggerpool).
 *
 * Job names are copied here by the graph and by the workflow loader: a
 * 100 000-job workflow has 100 000 names, and one malloc each (plus its
 * header) cost more than the names. Strings live until the arena is freed;
 * none is freed alone. Not thread-safe: one owner. */
#ifndef DP_STRARENA_H
#define DP_STRARENA_H

#include <stddef.h>

typedef struct dp_strarena_chunk dp_strarena_chunk_t;

typedef struct dp_strarena {
    dp_strarena_chunk_t *head; /* the chunk being filled first */
} dp_strarena_t;

/* A copy of s in the arena, or NULL when out of memory. A zeroed
 * dp_strarena_t is an empty arena. */
char *dp__strarena_copy(dp_strarena_t *a, const char *s);
/* Frees every string of the arena; it is empty (and usable) afterwards. */
void dp__strarena_free(dp_strarena_t *a);

#endif

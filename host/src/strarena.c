/* strarena.c - see strarena.h. */
#include "strarena.h"

#include <stdlib.h>
#include <string.h>

/* Strings go into chunks of this many bytes; one longer than a quarter of a
 * chunk gets a chunk of its own, so a long name wastes no half-full chunk. */
#define CHUNK 65536

struct dp_strarena_chunk {
    dp_strarena_chunk_t *next;
    size_t used, cap;
    char data[];
};

char *dp__strarena_copy(dp_strarena_t *a, const char *s)
{
    size_t len = strlen(s) + 1;
    dp_strarena_chunk_t *c = a->head;
    if (!c || c->cap - c->used < len) {
        size_t cap = len > CHUNK / 4 ? len : CHUNK - sizeof *c;
        dp_strarena_chunk_t *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (c && cap == len) { /* a long string: keep filling the current chunk */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    char *out = c->data + c->used;
    memcpy(out, s, len);
    c->used += len;
    return out;
}

void dp__strarena_free(dp_strarena_t *a)
{
    while (a->head) {
        dp_strarena_chunk_t *c = a->head;
        a->head = c->next;
        free(c);
    }
}

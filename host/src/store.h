/* store.h - the thread-safe key/value store (private parts). */
#ifndef DP_STORE_H
#define DP_STORE_H

#include <stddef.h>

#include "daggerpool/daggerpool.h"

/* Key prefix of the snapshots the pool keeps of running jobs. */
#define DP_STORE_RUNNING_PREFIX "dp.running/"

/* Entries under DP_STORE_RUNNING_PREFIX that the store does not hold but
 * asks for when it is read (a run's snapshots, snapshot.h). The store calls
 * them under its lock; they must not call back into the store. While a
 * view has a name, an entry of that key set through dp_store_set is hidden
 * from readers (the run's snapshot is what they see). */
typedef struct dp_store_view {
    struct dp_store_view *next; /* the store's list, under its lock */
    /* The value of the entry of `name` (the key without the prefix) into
     * buf (NUL-terminated): its length, or -1 when the view has no such
     * entry. */
    int (*get)(void *arg, const char *name, char *buf, size_t size);
    /* Calls fn for each of the view's entries (name, value, length); stops
     * when fn returns non-zero and returns that. */
    int (*each)(void *arg, int (*fn)(void *a, const char *name, const char *value, size_t len), void *a);
    void *arg;
} dp_store_view_t;

/* The longest value a view makes (with its NUL). */
#define DP_STORE_VIEW_VALUE_MAX 96

/* Hangs v on the store / takes it off (after which the store never calls
 * it again). */
void dp__store_view_attach(dp_store_t *st, dp_store_view_t *v);
void dp__store_view_detach(dp_store_t *st, dp_store_view_t *v);

/* The store's lock, for a view's writer that must wait for a reader (the
 * store calls views under it). */
void dp__store_lock(dp_store_t *st);
void dp__store_unlock(dp_store_t *st);

#endif

/* snapshot.h - the store's snapshots of a run's running jobs
 * ("dp.running/<job>"), made when someone reads them.
 *
 * A job in progress used to write its snapshot into the store at each
 * phase (a formatted key and value, three allocations and the store's lock)
 * and delete it when it ended: ~15 % of a worker's time on a no-op job, and
 * nobody read most of them. Now the job's own thread writes its attempt,
 * phase and the tick the phase began into its entry of an array (a seqlock:
 * a few plain stores, no lock, no allocation), and the run hangs a view on
 * the store (store.h) that formats a snapshot only when the store is read:
 * dp_store_get_copy, dp_store_with, dp_store_foreach and dp_store_count see
 * the same keys and values as before, at the moment of the read. Snapshots
 * never go through dp_store_set or dp_store_delete, so a hook on the store
 * (persistence) never sees them.
 */
#ifndef DP_SNAPSHOT_H
#define DP_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dag.h"
#include "store.h"
#include "ticks.h"

/* The phases of a job in progress (0: not in progress). */
enum { DP_SNAP_NONE = 0, DP_SNAP_RUN = 1, DP_SNAP_READINESS = 2, DP_SNAP_BACKOFF = 3 };

/* One job's entry: written only by the thread running the job, read by
 * whoever reads the store (under the store's lock). seq is odd while the
 * entry is being written. */
typedef struct dp_snapshot {
    _Atomic uint32_t seq;
    _Atomic uint32_t attempt;
    _Atomic uint64_t tick_phase; /* tick << 2 | phase */
} dp_snapshot_t;

typedef struct dp_snapshots {
    dp_store_view_t view; /* hung on the store while the run lives */
    dp_store_t *store;
    const dp_graph_t *g;
    dp_tick_anchor_t a0; /* the run's start: since_ms counts from it */
    /* Set (under the store's lock) while a reader goes through every entry
     * (dp_store_foreach, dp_store_count): a job that would change its entry
     * then waits for the store's lock, so the reader sees one moment, as
     * it did when snapshots were entries of the store. */
    _Atomic bool frozen;
    dp_snapshot_t *e; /* one per job */
} dp_snapshots_t;

/* The snapshots of a run of g whose ticks start at a0, hung on store. NULL
 * without memory. */
dp_snapshots_t *dp__snapshots_new(dp_store_t *store, const dp_graph_t *g, dp_tick_anchor_t a0);

/* Takes the view off the store (no reader sees the run's jobs after it) and
 * frees. NULL is fine. */
void dp__snapshots_free(dp_snapshots_t *s);

/* dp__snapshot_set while a reader has the entries frozen: under the
 * store's lock. */
void dp__snapshot_set_locked(dp_snapshots_t *s, uint32_t id, unsigned attempt, unsigned phase, uint64_t tick);

/* The entry's fields, between an odd and an even seq (the writer's side of
 * the seqlock). */
static inline void dp__snapshot_write(dp_snapshot_t *e, uint32_t q, unsigned attempt, unsigned phase, uint64_t tick)
{
    atomic_store_explicit(&e->attempt, attempt, memory_order_relaxed);
    atomic_store_explicit(&e->tick_phase, tick << 2 | phase, memory_order_relaxed);
    /* Release: the fields before the even seq. */
    atomic_store_explicit(&e->seq, q + 2, memory_order_release);
}

/* The job's thread: job `id` is in `phase` of attempt `attempt` since
 * tick (DP_SNAP_NONE: no longer in progress). */
static inline void dp__snapshot_set(dp_snapshots_t *s, uint32_t id, unsigned attempt, unsigned phase, uint64_t tick)
{
    dp_snapshot_t *e = &s->e[id];
    uint32_t q = atomic_load_explicit(&e->seq, memory_order_relaxed);
    /* The odd seq (writing) before the look at frozen, and a reader's
     * frozen before its look at seq (both seq_cst): either this writer
     * sees frozen, or the reader sees it writing and waits for it. A
     * reader that sees a field's new value also sees seq changed. */
    atomic_store_explicit(&e->seq, q + 1, memory_order_seq_cst);
    if (__builtin_expect(atomic_load_explicit(&s->frozen, memory_order_seq_cst), 0)) {
        atomic_store_explicit(&e->seq, q, memory_order_release); /* nothing written */
        dp__snapshot_set_locked(s, id, attempt, phase, tick);
        return;
    }
    dp__snapshot_write(e, q, attempt, phase, tick);
}

#endif /* DP_SNAPSHOT_H */

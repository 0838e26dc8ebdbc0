/* record.h - what a run leaves behind: one slot per job (status, attempts,
 * start and end), the rare per-job extras (error message, plugin version,
 * requeue hint), and the finished run's verdict (dp_run_record_t).
 *
 * The run writes the slots (a job's slot only on the thread that runs the
 * job), the run's end (run_end.c) completes them and decides the outcome,
 * and the result (result.c) takes them over whole: the record is how a run
 * hands its outcome to its result, which never sees the run itself.
 */
#ifndef DP_RECORD_H
#define DP_RECORD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dag.h"
#include "ticks.h"
#include "daggerpool/daggerpool.h"

/* What every job of a run has: 24 bytes (the slots are the largest per-job
 * cost of a run), status and attempts sharing a word. What only some jobs
 * have (an error message, a plugin version, a requeue hint) is kept in the
 * slot buffer's sparse arrays instead. */
typedef struct dp_slot {
    uint64_t start_tick, end_tick; /* ticks.h; 0 if never started / not ended */
    unsigned status : 8;           /* dp_status_t */
    unsigned attempts : 24;        /* saturates at DP_SLOT_ATTEMPTS_MAX */
} dp_slot_t;

#define DP_SLOT_ATTEMPTS_MAX ((1u << 24) - 1)

/* A run's slots. The result of the run takes them over, and gives them back
 * to the graph (dp_graph.spare_slots) when it is freed, so that a graph run
 * again and again faults in no fresh pages for them.
 *
 * Beside them, per run, three sparse arrays by job id in one fresh
 * zero-filled mapping (dp__slotbuf_cold_init): a page of them costs memory
 * only once a job on it sets something, so a run of jobs that neither fail
 * nor report a version pays nothing for them. The any_* flags say whether
 * an array was written at all, so that reading them back touches nothing
 * when not. A job's entries are written only by the thread running the job
 * (it sets the flag first); the run's end reads them after the workers are
 * joined. */
typedef struct dp_slotbuf {
    size_t n;
    char **error;         /* malloc'd message, or NULL */
    const char **version; /* dp_job_set_version; not owned */
    int32_t *requeue;     /* hint for a re-run in ms, plus 1; 0: none */
    void *cold;           /* the mapping (or allocation) of the three */
    size_t cold_size;     /* its size; 0 when it was malloc'd */
    atomic_bool any_error, any_version, any_requeue;
    dp_slot_t slot[];
} dp_slotbuf_t;

/* A slot buffer for g's next run: the one a freed result gave back when it
 * has the right size, else a new one (its slots uninitialised, no sparse
 * arrays yet). NULL: no memory. */
dp_slotbuf_t *dp__slotbuf_take(dp_graph_t *g);

/* Maps sb's sparse arrays for a run (all zero). DP_OK or DP_ENOMEM. */
int dp__slotbuf_cold_init(dp_slotbuf_t *sb);

/* Frees what a run left in sb (messages, the sparse arrays) and gives sb
 * back to g for its next run. sb may be NULL. */
void dp__slotbuf_release(dp_graph_t *g, dp_slotbuf_t *sb);

/* Marks one of the any_* flags (cheap when already set: no write). */
static inline void dp__flag_set(atomic_bool *f)
{
    if (!atomic_load_explicit(f, memory_order_relaxed))
        atomic_store_explicit(f, true, memory_order_relaxed);
}

/* A finished run, as its result is built from it: made by the run's end
 * (run_end.c) once every worker is joined, taken by dp__result_build. */
typedef struct dp_run_record {
    const dp_graph_t *g;
    dp_slotbuf_t *slotbuf;  /* every job's final slot; owned (the result takes it) */
    dp_tick_anchor_t a0;    /* the run's start (the slots' ticks count from it) */
    dp_tick_anchor_t a_end; /* its end */
    int64_t duration_ms;
    dp_run_outcome_t outcome;
    bool timed_out, cancelled;
    char *first_error;    /* malloc'd, or NULL; owned (the result takes it) */
    long first_not_ready; /* job id, or -1 */
    int64_t requeue_ms;   /* -1: no hint */
} dp_run_record_t;

#endif /* DP_RECORD_H */

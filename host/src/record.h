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

/* What every job of a run has: 16 bytes (the slots are the largest per-job
 * cost of a run, and every run writes them all), status and attempts
 * sharing a word. The end is kept as the span from the start, which fits
 * 32 bits for any job shorter than ~1.4 s of TSC ticks (~4.3 s of
 * nanoseconds); a longer one's end goes to the slot buffer's sparse `end`
 * array (dp__slot_set_end, dp__slot_end). What only some jobs have (an
 * error message, a plugin version, a requeue hint) is kept in the sparse
 * arrays too. */
typedef struct dp_slot {
    uint64_t start_tick;    /* ticks.h; 0 if never started */
    uint32_t span;          /* end - start + 1 in ticks; 0: not ended;
                                 * DP_SLOT_SPAN_LONG: the end is in the sparse array */
    unsigned status : 8;    /* dp_status_t */
    unsigned attempts : 24; /* saturates at DP_SLOT_ATTEMPTS_MAX */
} dp_slot_t;

#define DP_SLOT_SPAN_LONG UINT32_MAX
#define DP_SLOT_ATTEMPTS_MAX ((1u << 24) - 1)

/* A run's slots. The result of the run takes them over, and gives them back
 * to the graph (dp_graph.spare_slots) when it is freed, so that a graph run
 * again and again faults in no fresh pages for them. One block (bigmem.h):
 * the slots in huge pages where the kernel gives them (the first run of a
 * large graph otherwise pays a page fault per 170 jobs), and after them,
 * in small pages, three sparse arrays by job id: a page of them costs
 * memory only once a job on it sets something, so a run of jobs that
 * neither fail nor report a version pays nothing for them. They stay with
 * the slots from run to run; a run that wrote one leaves it zeroed for the
 * next (its written pages given back, dp__slotbuf_release). The any_*
 * flags say whether an array was written at all, so that reading them back
 * touches nothing when not. A job's entries are written only by the thread
 * running the job (it sets the flag first); the run's end reads them after
 * the workers are joined. */
typedef struct dp_slotbuf {
    size_t n;
    char **error;         /* malloc'd message, or NULL */
    const char **version; /* dp_job_set_version; not owned */
    int32_t *requeue;     /* hint for a re-run in ms, plus 1; 0: none */
    uint64_t *end;        /* end tick of a job whose span is DP_SLOT_SPAN_LONG (only
                               * those entries are meaningful: never cleared) */
    atomic_bool any_error, any_version, any_requeue;
    /* Appended (1.2): what decided a job's waits (dp_result_job_waits), for
     * a job with a deadline or readiness_ext, or whose suggested delay was
     * used (dp__slot_waits). */
    struct dp_slot_waits *waits;
    atomic_bool any_waits;
    dp_slot_t slot[];
} dp_slotbuf_t;

/* A slot buffer for g's next run: the one a freed result gave back when it
 * has the right size, else a new one (its slots uninitialised, its sparse
 * arrays zero). NULL: no memory. */
dp_slotbuf_t *dp__slotbuf_take(dp_graph_t *g);

/* Frees what a run left in sb (messages; the sparse arrays zeroed) and
 * gives sb back to g for its next run. sb may be NULL. */
void dp__slotbuf_release(dp_graph_t *g, dp_slotbuf_t *sb);

/* Frees a slot buffer that no run or result holds (a graph's spare). */
void dp__slotbuf_free(dp_slotbuf_t *sb);

/* Marks one of the any_* flags (cheap when already set: no write). */
static inline void dp__flag_set(atomic_bool *f)
{
    if (!atomic_load_explicit(f, memory_order_relaxed))
        atomic_store_explicit(f, true, memory_order_relaxed);
}

/* A sparse entry of dp_slotbuf.waits: set says it was written. */
typedef struct dp_slot_waits {
    dp_job_waits_t w;
    bool set;
} dp_slot_waits_t;

/* Job id's waits entry, marked written (the array's flag set first; its
 * retry_after_ms starts at -1). By the thread running the job. */
static inline dp_job_waits_t *dp__slot_waits(dp_slotbuf_t *sb, uint32_t id)
{
    dp__flag_set(&sb->any_waits);
    dp_slot_waits_t *e = &sb->waits[id];
    if (!e->set) {
        e->set = true;
        e->w.retry_after_ms = -1;
    }
    return &e->w;
}

/* Job id's end tick (its start set before). An end before the start (a
 * thread moved between CPUs whose counters differ by a hair) is the start:
 * a duration is never negative. By the thread running the job. */
static inline void dp__slot_set_end(dp_slotbuf_t *sb, uint32_t id, uint64_t end)
{
    dp_slot_t *sl = &sb->slot[id];
    uint64_t d = end > sl->start_tick ? end - sl->start_tick : 0;
    if (__builtin_expect(d < DP_SLOT_SPAN_LONG - 1, 1)) {
        sl->span = (uint32_t)d + 1;
    } else {
        sb->end[id] = end;
        sl->span = DP_SLOT_SPAN_LONG;
    }
}

/* Job id's end tick, 0 if it has not ended. */
static inline uint64_t dp__slot_end(const dp_slotbuf_t *sb, uint32_t id)
{
    const dp_slot_t *sl = &sb->slot[id];
    if (!sl->span)
        return 0;
    if (sl->span == DP_SLOT_SPAN_LONG)
        return sb->end[id];
    return sl->start_tick + sl->span - 1;
}

/* Why a trigger rule (rules.h) ran or skipped a job, one byte per job in a
 * graph that has rules (dp_run_t.why, then the record's and the result's);
 * 0 for a job the default rule ran, or that ended another way. */
enum {
    DP__WHY_NONE = 0,
    DP__WHY_RAN_DONE = 1,        /* all_done: its dependencies ended */
    DP__WHY_RAN_FAILED = 2,      /* any_failed: a dependency failed */
    DP__WHY_SKIP_NO_FAILURE = 3, /* any_failed: none did (not needed) */
    DP__WHY_SKIP_UPSTREAM = 4,   /* all_success: a dependency did not succeed */
    DP__WHY_SKIP_NOT_NEEDED = 5, /* all_success: what did not succeed above it was not needed */
    DP__WHY_CLEANUP = 6          /* ran in the cleanup phase, after the run was cut */
};

/* What cut a run before its cleanup phase (dp_run_record_t.cleanup_after). */
enum { DP__CLEANUP_NONE = 0, DP__CLEANUP_FAIL_FAST = 1, DP__CLEANUP_TIMEOUT = 2, DP__CLEANUP_CANCELLED = 3 };

/* A job a rule skipped because nothing needed it: it holds nothing back. */
static inline bool dp__why_not_needed(uint8_t why)
{
    return why == DP__WHY_SKIP_NO_FAILURE || why == DP__WHY_SKIP_NOT_NEEDED;
}

/* Job j failed, and its continue_on_failure says that does not count. */
static inline bool dp__tolerated(const dp_graph_t *g, uint32_t j, dp_status_t st)
{
    return st == DP_STATUS_FAILED && dp__def_pol(g, &g->jobs[j])->continue_on_failure;
}

/* Job j (status st) is settled: success, a tolerated failure, or skipped as
 * not needed. Its successors' all_success counts it as met, and it is no
 * frontier and makes no job above it boundary. why: the run's (NULL in a
 * graph without rules: only success is settled). */
static inline bool dp__settled(const dp_graph_t *g, const uint8_t *why, uint32_t j, dp_status_t st)
{
    if (st == DP_STATUS_SUCCESS)
        return true;
    return why && (dp__tolerated(g, j, st) || (st == DP_STATUS_SKIPPED && dp__why_not_needed(why[j])));
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
    char *first_error;     /* malloc'd, or NULL; owned (the result takes it) */
    long first_not_ready;  /* job id, or -1 */
    int64_t requeue_ms;    /* -1: no hint */
    unsigned char *reused; /* reuse.h flags per job, or NULL; owned (the result takes it) */
    /* Trigger rules (rules.h): per job, why a rule ran or skipped it
     * (DP__WHY_*), or NULL in a graph without rules; owned (the result
     * takes it). cleanup_after: DP__CLEANUP_*, 0 when no cleanup phase ran. */
    uint8_t *why;
    int cleanup_after;
} dp_run_record_t;

#endif /* DP_RECORD_H */

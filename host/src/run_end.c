/* run_end.c - the end of a run: skipped jobs and the verdict (run_end.h).
 *
 * Outcome, first match wins: timeout, cancelled (from outside), failed,
 * not_ready, success. A deadline or cancel counts only if it cut the run:
 * if it left a job unknown.
 */
#include "run_end.h"

#include <stdlib.h>

#include "rules.h"
#include "util.h"

/* Marks every transitive successor of `from` that is still unknown and never
 * started as skipped. stack has room for n ids. */
static void skip_below(dp_run_t *run, uint32_t from, uint32_t *stack)
{
    const dp_graph_t *g = run->g;
    size_t top = 0;
    stack[top++] = from;
    while (top) {
        uint32_t j = stack[--top];
        for (uint32_t k = g->succ_off[j]; k < g->succ_off[j + 1]; k++) {
            uint32_t s = g->succ_ids[k];
            dp_slot_t *sl = &run->slots[s];
            /* A final job (trigger rules) that never ran was cut, not
             * held back: it stays unknown, and so does what lies below. */
            if (run->rules && dp__def_pol(g, &g->jobs[s])->run_if != DP_RUN_IF_ALL_SUCCESS)
                continue;
            if (sl->status == DP_STATUS_UNKNOWN && sl->attempts == 0) {
                sl->status = DP_STATUS_SKIPPED;
                stack[top++] = s;
            }
        }
    }
}

/* What a not_ready job (or, keeping going, a failed one) holds back is
 * skipped. DP_OK or DP_ENOMEM (nothing marked). */
static int mark_skipped(dp_run_t *run)
{
    size_t n = run->g->njobs;
    uint32_t *stack = malloc((n ? n : 1) * sizeof *stack);
    if (!stack)
        return DP_ENOMEM;
    for (size_t j = 0; j < n; j++) {
        dp_status_t st = run->slots[j].status;
        if (st == DP_STATUS_NOT_READY ||
            (st == DP_STATUS_FAILED && !run->opts.fail_fast && !dp__rules_tolerated(run, (uint32_t)j)))
            skip_below(run, (uint32_t)j, stack);
    }
    free(stack);
    return DP_OK;
}

/* What the statuses add up to. */
typedef struct tally {
    bool any_failed, all_success, any_unknown;
    long first_fail; /* the failed job that ended first, or -1 */
} tally_t;

/* One pass over the final statuses: the tally, the first not ready job, the
 * smallest requeue hint, and an event per skipped job. */
static tally_t count_statuses(dp_run_t *run, dp_run_record_t *rec)
{
    tally_t t = {.all_success = true, .first_fail = -1};
    dp_slotbuf_t *sb = rec->slotbuf;
    uint64_t first_fail_end = UINT64_MAX;
    bool any_requeue = atomic_load(&sb->any_requeue), any_error = atomic_load(&sb->any_error);
    for (size_t j = 0; j < sb->n; j++) {
        const dp_slot_t *sl = &sb->slot[j];
        dp_status_t st = sl->status;
        if (st == DP_STATUS_SUCCESS) {
            if (!any_requeue)
                continue; /* the common case, in one branch */
        } else if (!rec->why || !dp__settled(run->g, rec->why, (uint32_t)j, st)) {
            /* A tolerated failure and a job skipped as not needed count
             * as done for the outcome (trigger rules). */
            t.all_success = false;
        }
        if (st == DP_STATUS_UNKNOWN) {
            t.any_unknown = true;
            /* Results after cancellation are not trusted (the seed's
             * rule): an unknown job has no error, whatever an attempt
             * cut short or an earlier one said; first_error says why
             * the run stopped. The one place this holds for every view
             * of the result (records, JSON, summary). */
            if (any_error && sb->error[j]) {
                free(sb->error[j]);
                sb->error[j] = NULL;
            }
        }
        if (st == DP_STATUS_FAILED && !dp__rules_tolerated(run, (uint32_t)j)) {
            t.any_failed = true;
            uint64_t end = dp__slot_end(sb, (uint32_t)j);
            /* A final job failing in the cleanup phase is not what stopped
             * the run: the cut was (trigger rules). */
            if (rec->why && rec->why[j] == DP__WHY_CLEANUP)
                end = UINT64_MAX;
            if (end < first_fail_end) {
                first_fail_end = end;
                t.first_fail = (long)j;
            }
        }
        if (st == DP_STATUS_NOT_READY && rec->first_not_ready < 0)
            rec->first_not_ready = (long)j;
        int64_t rq = any_requeue ? (int64_t)sb->requeue[j] - 1 : -1;
        if (rq >= 0 && (rec->requeue_ms < 0 || rq < rec->requeue_ms))
            rec->requeue_ms = rq;
        if (run->opts.on_event && st == DP_STATUS_SKIPPED)
            dp__run_event(run, DP_EV_JOB_SKIPPED, (uint32_t)j, 0, 0, DP_STATUS_SKIPPED, NULL);
    }
    return t;
}

/* The outcome and its first error, from the tally and the run's context. */
static void decide(dp_run_t *run, const tally_t *t, dp_run_record_t *rec)
{
    const dp_slotbuf_t *sb = rec->slotbuf;
    int ctx_err = dp_ctx_err(&run->ctx);
    bool any_unknown = t->any_unknown;
    if (rec->cleanup_after) {
        /* The cleanup phase ran under contexts of its own: what cut the
         * run is what it found, and the cut left jobs unknown (the final
         * jobs it then ran, at least). */
        ctx_err = run->cut_err;
        any_unknown = true;
    }
    /* A deadline or cancel cut the run only if it left a job unknown
     * (running, in a backoff, or never reached). One that came after every
     * job had ended - all succeeded, or some not ready or skipped while the
     * run was still winding up - cut nothing: the statuses stand and the
     * outcome follows from them. Fail-fast's own cancel is no outside
     * cancel: its failure says what happened. (failfast: relaxed, read
     * after the workers are joined.) */
    if (any_unknown) {
        rec->timed_out = ctx_err == DP_ETIMEDOUT;
        rec->cancelled = ctx_err == DP_ECANCELED && !atomic_load_explicit(&run->failfast, memory_order_relaxed);
    }
    if (rec->timed_out) {
        rec->outcome = DP_RUN_TIMEOUT;
        char d[32];
        if (run->opts.timeout_ms)
            rec->first_error = dp__asprintf("timeout after %s", dp_duration_format(run->opts.timeout_ms, d, sizeof d));
        else
            rec->first_error = dp__strdup("timeout (the caller's deadline passed)");
    } else if (rec->cancelled) {
        rec->outcome = DP_RUN_CANCELLED;
        rec->first_error = t->first_fail >= 0 ? dp__strdup(sb->error[t->first_fail]) : dp__strdup("cancelled");
    } else if (t->any_failed) {
        rec->outcome = DP_RUN_FAILED;
        rec->first_error = dp__strdup(t->first_fail >= 0 ? sb->error[t->first_fail] : "a final job failed");
    } else if (t->all_success) {
        rec->outcome = DP_RUN_SUCCESS;
    } else {
        rec->outcome = DP_RUN_NOT_READY;
    }
}

int dp__run_end(dp_run_t *run, dp_run_record_t *rec)
{
    dp_tick_anchor_t a_end = dp__tick_anchor(run->tsc);
    *rec = (dp_run_record_t){
        .g = run->g,
        .a0 = run->a0,
        .a_end = a_end,
        .duration_ms = (int64_t)((a_end.ns - run->t0) / 1000000u),
        .first_not_ready = -1,
        .requeue_ms = -1,
        .why = run->why,
        .cleanup_after = run->cleanup_after,
    };
    run->why = NULL; /* the record's */
    /* Every job succeeded (the workers counted them): nothing is skipped,
     * unknown, failed or not ready, and the two passes over the slots below
     * would find nothing (a requeue hint is only left by a job that did
     * not succeed; checked all the same). */
    dp_slotbuf_t *sb = run->slotbuf;
    if (atomic_load_explicit(&run->succeeded, memory_order_relaxed) == run->g->njobs &&
        !atomic_load(&sb->any_requeue)) {
        rec->slotbuf = sb;
        run->slotbuf = NULL;
        rec->reused = run->reused;
        run->reused = NULL;
        tally_t t = {.all_success = true, .first_fail = -1};
        decide(run, &t, rec);
        return DP_OK;
    }
    if (mark_skipped(run) != DP_OK) {
        run->why = rec->why; /* freed with the run */
        rec->why = NULL;
        return DP_ENOMEM;
    }
    /* From here on the slots are the record's. */
    rec->slotbuf = run->slotbuf;
    run->slotbuf = NULL;
    rec->reused = run->reused;
    run->reused = NULL;
    tally_t t = count_statuses(run, rec);
    decide(run, &t, rec);
    return DP_OK;
}

void dp__run_end_log(dp_run_t *run, const dp_result_t *res)
{
    if (!run->opts.log)
        return;
    dp_run_outcome_t outcome = dp_result_outcome(res);
    const char *first_error = dp_result_first_error(res);
    dp__run_log(run, outcome == DP_RUN_SUCCESS ? DP_LOG_INFO : DP_LOG_WARN, NULL, 0, "run ended: %s in %lld ms%s%s",
                dp_run_outcome_name(outcome), (long long)dp_result_duration_ms(res), first_error ? ": " : "",
                first_error ? first_error : "");
}

/* rules.c - trigger rules and final jobs (rules.h).
 *
 * In a graph with rules every job's end counts down its successors, not
 * only a success: a successor is judged once all its dependencies have
 * ended (by the thread that brings its counter to zero, which sees every
 * dependency's slot through the counter's acq_rel, as pool.c's release
 * does). all_success runs it when every dependency is settled (success, or
 * a tolerated failure); all_done always; any_failed when one failed. A job
 * its rule does not run is skipped there and then, and counts down its own
 * successors, so that an all_done job below it still runs. Judging a job
 * reads its dependencies' slots: a graph with rules pays that, one without
 * never comes here.
 *
 * A cut run (fail-fast, the global timeout, a cancellation) leaves final
 * jobs unreached or cut short. The cleanup phase runs them afterwards, on
 * the calling thread: one at a time, in dependency order, each under a
 * context of its own bounded by its cleanup_timeout (the run's is done),
 * through job.c's state machine as in the run (dp__job_run_final: the lot
 * is closed, so a polling job waits on this thread). One at a time keeps the phase simple
 * and its bound plain: the sum of the grace of the jobs it runs.
 */
#include "rules.h"

#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "record.h"
#include "util.h"

const char *dp_run_if_name(dp_run_if_t rule)
{
    switch (rule) {
    case DP_RUN_IF_ALL_SUCCESS: return "all_success";
    case DP_RUN_IF_ALL_DONE: return "all_done";
    case DP_RUN_IF_ANY_FAILED: return "any_failed";
    default: return "?";
    }
}

dp_run_if_t dp_graph_job_run_if(const dp_graph_t *g, size_t id)
{
    return g && id < g->njobs ? (dp_run_if_t)dp__def_pol(g, &g->jobs[id])->run_if : DP_RUN_IF_ALL_SUCCESS;
}

bool dp_graph_job_continue_on_failure(const dp_graph_t *g, size_t id)
{
    return g && id < g->njobs && dp__def_pol(g, &g->jobs[id])->continue_on_failure;
}

/* Successors made ready at once are published in batches of this many. */
#define BATCH 64

/* The verdict on job s, whose dependencies have all ended: DP__WHY_* for
 * one that runs (DP__WHY_NONE for all_success) in *why; false when it is
 * skipped (*why says why). */
static bool judge(const dp_run_t *run, uint32_t s, uint8_t *why)
{
    const dp_graph_t *g = run->g;
    uint32_t rule = dp__def_pol(g, &g->jobs[s])->run_if;
    if (rule == DP_RUN_IF_ALL_DONE) {
        *why = DP__WHY_RAN_DONE;
        return true;
    }
    bool all_settled = true, any_failed = false, skipped_dep = false;
    for (uint32_t k = g->dep_off[s]; k < g->dep_off[s + 1]; k++) {
        uint32_t d = g->dep_ids[k];
        dp_status_t st = run->slots[d].status;
        any_failed = any_failed || st == DP_STATUS_FAILED;
        if (!dp__settled(g, run->why, d, st))
            all_settled = false;
        else if (st == DP_STATUS_SKIPPED)
            skipped_dep = true;
    }
    if (rule == DP_RUN_IF_ANY_FAILED) {
        *why = any_failed ? DP__WHY_RAN_FAILED : DP__WHY_SKIP_NO_FAILURE;
        return any_failed;
    }
    /* all_success: success and tolerated failures run it; a dependency
     * skipped as not needed makes it not needed too; anything else that
     * did not succeed holds it back. */
    if (!all_settled) {
        *why = DP__WHY_SKIP_UPSTREAM;
        return false;
    }
    *why = skipped_dep ? DP__WHY_SKIP_NOT_NEEDED : DP__WHY_NONE;
    return !skipped_dep;
}

/* A growable stack of job ids (the jobs skipped, whose successors are
 * still to count down): on the stack up to its first BATCH. */
typedef struct idstack {
    uint32_t *v;
    size_t n, cap;
    uint32_t local[BATCH];
} idstack_t;

static bool push(idstack_t *st, uint32_t id)
{
    if (st->n == st->cap) {
        size_t ncap = st->cap * 2;
        uint32_t *nv = st->v == st->local ? malloc(ncap * sizeof *nv) : realloc(st->v, ncap * sizeof *nv);
        if (!nv)
            return false;
        if (st->v == st->local)
            memcpy(nv, st->local, st->n * sizeof *nv);
        st->v = nv;
        st->cap = ncap;
    }
    st->v[st->n++] = id;
    return true;
}

bool dp__rules_release(dp_run_t *run, uint32_t done, uint32_t *next, dp__rules_publish_fn publish)
{
    const dp_graph_t *g = run->g;
    uint32_t batch[BATCH];
    size_t nb = 0;
    bool have = false;
    idstack_t st = {.v = NULL, .n = 0, .cap = BATCH};
    st.v = st.local;
    st.v[st.n++] = done;
    while (st.n) {
        uint32_t j = st.v[--st.n];
        for (uint32_t k = g->succ_off[j]; k < g->succ_off[j + 1]; k++) {
            uint32_t s = g->succ_ids[k];
            /* As in pool.c: a job with one dependency needs no counter. */
            if (g->dep_off[s + 1] - g->dep_off[s] != 1 &&
                atomic_fetch_sub_explicit(&run->remaining[s], 1, memory_order_acq_rel) != 1)
                continue;
            uint8_t why;
            if (!judge(run, s, &why)) {
                /* Skipped now, by the only thread that judges it: it ends,
                 * and its successors hear of it. Without memory for the
                 * stack they stay unknown (the run's end skips those below
                 * a job that did not succeed). */
                run->why[s] = why;
                run->slots[s].status = DP_STATUS_SKIPPED;
                push(&st, s);
                continue;
            }
            run->why[s] = why;
            if (!have) {
                *next = s;
                have = true;
                continue;
            }
            batch[nb++] = s;
            if (nb == BATCH) {
                publish(run, batch, nb);
                nb = 0;
            }
        }
    }
    if (nb)
        publish(run, batch, nb);
    if (st.v != st.local)
        free(st.v);
    return have;
}

/* ------------------------------------------------------------------------ */
/* The cleanup phase                                                         */
/* ------------------------------------------------------------------------ */

/* The jobs in an order where each comes after its dependencies (Kahn's);
 * NULL when out of memory. */
static uint32_t *topo_order(const dp_graph_t *g)
{
    size_t n = g->njobs;
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    uint32_t *indeg = malloc((n ? n : 1) * sizeof *indeg);
    if (!order || !indeg) {
        free(order);
        free(indeg);
        return NULL;
    }
    size_t tail = 0;
    for (size_t j = 0; j < n; j++) {
        indeg[j] = g->dep_off[j + 1] - g->dep_off[j];
        if (!indeg[j])
            order[tail++] = (uint32_t)j;
    }
    for (size_t head = 0; head < tail; head++) {
        uint32_t j = order[head];
        for (uint32_t k = g->succ_off[j]; k < g->succ_off[j + 1]; k++)
            if (--indeg[g->succ_ids[k]] == 0)
                order[tail++] = g->succ_ids[k];
    }
    free(indeg);
    return order;
}

/* Whether final job j is to run in the cleanup phase: all_done always;
 * any_failed when a dependency failed (else it is skipped as not needed
 * when every dependency ended, and stays unknown when one was cut). */
static bool cleanup_wants(dp_run_t *run, uint32_t j)
{
    const dp_graph_t *g = run->g;
    uint32_t rule = dp__def_pol(g, &g->jobs[j])->run_if;
    if (rule == DP_RUN_IF_ALL_DONE)
        return true;
    bool any_unknown = false;
    for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++) {
        dp_status_t st = run->slots[g->dep_ids[k]].status;
        if (st == DP_STATUS_FAILED)
            return true;
        any_unknown = any_unknown || st == DP_STATUS_UNKNOWN;
    }
    if (!any_unknown && run->slots[j].attempts == 0) {
        run->why[j] = DP__WHY_SKIP_NO_FAILURE;
        run->slots[j].status = DP_STATUS_SKIPPED;
    }
    return false;
}

static const char *cut_name(int cleanup_after)
{
    switch (cleanup_after) {
    case DP__CLEANUP_FAIL_FAST: return "fail-fast";
    case DP__CLEANUP_TIMEOUT: return "the timeout";
    default: return "a cancellation";
    }
}

/* Runs final job j under a fresh context of its own grace. */
static void cleanup_run(dp_run_t *run, uint32_t j, uint64_t *rng)
{
    const dp_job_policy_t *pol = dp__def_pol(run->g, &run->g->jobs[j]);
    uint64_t grace = pol->cleanup_timeout_ms ? pol->cleanup_timeout_ms : DP_CLEANUP_TIMEOUT_DEFAULT_MS;
    dp__ctx_destroy(&run->ctx);
    dp__ctx_init(&run->ctx, NULL, grace);
    run->deadline_tick = dp__ticks_before_deadline(run->a0, run->ctx.deadline_ns);
    /* A job cut short in the run starts over: its slot and message of
     * then are dropped. */
    dp_slotbuf_t *sb = run->slotbuf;
    memset(&run->slots[j], 0, sizeof run->slots[j]);
    if (atomic_load(&sb->any_error) && sb->error[j]) {
        free(sb->error[j]);
        sb->error[j] = NULL;
    }
    run->why[j] = DP__WHY_CLEANUP;
    /* job.c fails the job when its grace passes (cleanup_cut): it ends
     * failed, "cleanup_timeout (30s) passed", not unknown. */
    dp__job_run_final(run, j, rng);
}

void dp__rules_cleanup(dp_run_t *run)
{
    if (!run->rules || !dp_ctx_done(&run->ctx))
        return;
    const dp_graph_t *g = run->g;
    size_t n = g->njobs, want = 0;
    for (size_t j = 0; j < n; j++)
        if (run->slots[j].status == DP_STATUS_UNKNOWN && dp__def_pol(g, &g->jobs[j])->run_if != DP_RUN_IF_ALL_SUCCESS)
            want++;
    if (!want)
        return;
    run->cut_err = dp_ctx_err(&run->ctx);
    if (atomic_load_explicit(&run->failfast, memory_order_relaxed))
        run->cleanup_after = DP__CLEANUP_FAIL_FAST;
    else
        run->cleanup_after = run->cut_err == DP_ETIMEDOUT ? DP__CLEANUP_TIMEOUT : DP__CLEANUP_CANCELLED;
    uint32_t *order = topo_order(g);
    if (!order) {
        dp__run_log(run, DP_LOG_ERROR, NULL, 0, "out of memory: the final jobs do not run");
        return;
    }
    dp__run_log(run, DP_LOG_WARN, NULL, 0, "run cut by %s: running its final jobs (%zu at most)",
                cut_name(run->cleanup_after), want);
    uint64_t rng = run->opts.seed * 0x9E3779B97F4A7C15ull + 0x51ED27u;
    for (size_t i = 0; i < n; i++) {
        uint32_t j = order[i];
        if (run->slots[j].status != DP_STATUS_UNKNOWN || dp__def_pol(g, &g->jobs[j])->run_if == DP_RUN_IF_ALL_SUCCESS ||
            !cleanup_wants(run, j))
            continue;
        cleanup_run(run, j, &rng);
    }
    free(order);
}

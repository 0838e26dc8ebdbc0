/* result.c - a run's result, built from the record of the finished run
 * (record.h; run_end.c decided the statuses and the outcome), and the
 * questions asked of it: statuses, outcome, first error, frontiers,
 * boundary, blockers, subtrees.
 *
 * The frontiers and boundary are computed once, when the run ends, on the
 * calling thread. The result owns the run's per-job slots; the public per-job records (dp_job_result_t) are made from them on
 * first demand, once, under an atomic pointer, so a result may be read from
 * any thread and one that is only asked for its outcome costs no per-job
 * copy (on a run of no-op jobs that copy cost as much as the scheduling).
 */
#include "result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "record.h"
#include "reuse.h"
#include "util.h"

/* Collects the subtree of `job` (itself and everything reachable) as a
 * sorted id list. mark is scratch of n bytes, all zero on entry and exit. */
static int collect_subtree(const dp_graph_t *g, uint32_t job, unsigned char *mark, uint32_t *stack, dp_id_list_t *out)
{
    size_t top = 0, count = 0;
    stack[top++] = job;
    mark[job] = 1;
    /* First pass counts and marks; ids are gathered by scanning marks in
     * id order afterwards, which sorts them for free when the subtree is
     * large, and by sorting the visit list when it is small. */
    uint32_t *visit = NULL;
    size_t vcap = 0;
    while (top) {
        uint32_t j = stack[--top];
        if (count == vcap) {
            vcap = vcap ? vcap * 2 : 16;
            uint32_t *nv = realloc(visit, vcap * sizeof *nv);
            if (!nv) {
                free(visit);
                return DP_ENOMEM;
            }
            visit = nv;
        }
        visit[count++] = j;
        for (uint32_t k = g->succ_off[j]; k < g->succ_off[j + 1]; k++) {
            uint32_t s = g->succ_ids[k];
            if (!mark[s]) {
                mark[s] = 1;
                stack[top++] = s;
            }
        }
    }
    out->ids = malloc(count * sizeof *out->ids);
    if (!out->ids) {
        for (size_t i = 0; i < count; i++)
            mark[visit[i]] = 0;
        free(visit);
        return DP_ENOMEM;
    }
    out->count = 0;
    if (count > g->njobs / 8) {
        for (size_t i = 0; i < g->njobs; i++)
            if (mark[i]) {
                out->ids[out->count++] = (uint32_t)i;
                mark[i] = 0;
            }
    } else {
        for (size_t i = 0; i < count; i++)
            mark[visit[i]] = 0;
        memcpy(out->ids, visit, count * sizeof *visit);
        out->count = count;
        /* Small: insertion sort is fine and allocation-free. */
        for (size_t i = 1; i < count; i++) {
            uint32_t v = out->ids[i];
            size_t k = i;
            while (k && out->ids[k - 1] > v) {
                out->ids[k] = out->ids[k - 1];
                k--;
            }
            out->ids[k] = v;
        }
    }
    free(visit);
    return DP_OK;
}

static inline dp_status_t status_of(const dp_result_t *r, size_t j)
{
    return r->slotbuf->slot[j].status;
}

/* Success, or (trigger rules) a tolerated failure or a job skipped as not
 * needed: what the frontiers and the boundary count as done (record.h). */
static inline bool settled(const dp_result_t *r, uint32_t j)
{
    return dp__settled(r->g, r->why, j, status_of(r, j));
}

static int blockers_of(const dp_result_t *r, uint32_t job, dp_id_list_t *out)
{
    const uint32_t *deps;
    size_t nd = dp_graph_deps(r->g, job, &deps);
    out->count = 0;
    out->ids = malloc((nd ? nd : 1) * sizeof *out->ids);
    if (!out->ids)
        return DP_ENOMEM;
    for (size_t i = 0; i < nd; i++)
        if (!settled(r, deps[i]))
            out->ids[out->count++] = deps[i];
    return DP_OK;
}

/* A frontier: a job not success that failed or is not ready, or whose
 * dependencies all succeeded (it was reached, or could have been). */
static bool is_frontier(const dp_result_t *r, size_t j)
{
    dp_status_t st = status_of(r, j);
    if (settled(r, (uint32_t)j))
        return false;
    if (st == DP_STATUS_FAILED || st == DP_STATUS_NOT_READY)
        return true;
    const dp_graph_t *g = r->g;
    for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++)
        if (!settled(r, g->dep_ids[k]))
            return false;
    return true;
}

static int build_frontiers(dp_result_t *r)
{
    const dp_graph_t *g = r->g;
    size_t n = r->n;
    size_t cnt = 0;
    for (size_t j = 0; j < n; j++)
        if (is_frontier(r, j))
            cnt++;
    if (!cnt)
        return DP_OK;
    r->frontiers = calloc(cnt, sizeof *r->frontiers);
    unsigned char *mark = calloc(n, 1);
    uint32_t *stack = malloc(n * sizeof *stack);
    int rc = DP_OK;
    if (!r->frontiers || !mark || !stack) {
        rc = DP_ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < n && rc == DP_OK; j++) {
        if (!is_frontier(r, j))
            continue;
        dp_frontier_t *f = &r->frontiers[r->nfrontiers++];
        f->job = (uint32_t)j;
        f->status = status_of(r, j);
        rc = blockers_of(r, (uint32_t)j, &f->blocked_by);
        if (rc == DP_OK)
            rc = collect_subtree(g, (uint32_t)j, mark, stack, &f->subtree);
    }
out:
    free(mark);
    free(stack);
    return rc;
}

/* Boundary: success jobs with a non-success job somewhere below. A walk up
 * the dependencies from every job that is not success marks all that lies
 * above one (each job once). */
static int build_boundary(dp_result_t *r)
{
    const dp_graph_t *g = r->g;
    size_t n = r->n;
    unsigned char *bad = calloc(n ? n : 1, 1);
    uint32_t *stack = malloc((n ? n : 1) * sizeof *stack);
    if (!bad || !stack) {
        free(bad);
        free(stack);
        return DP_ENOMEM;
    }
    size_t cnt = 0;
    for (size_t j0 = 0; j0 < n; j0++) {
        if (settled(r, (uint32_t)j0))
            continue;
        size_t top = 0;
        stack[top++] = (uint32_t)j0;
        while (top) {
            uint32_t j = stack[--top];
            for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++) {
                uint32_t d = g->dep_ids[k];
                if (bad[d])
                    continue;
                bad[d] = 1;
                if (status_of(r, d) == DP_STATUS_SUCCESS)
                    cnt++;
                stack[top++] = d;
            }
        }
    }
    free(stack);
    r->boundary.ids = malloc((cnt ? cnt : 1) * sizeof *r->boundary.ids);
    if (!r->boundary.ids) {
        free(bad);
        return DP_ENOMEM;
    }
    for (size_t j = 0; j < n; j++)
        if (bad[j] && status_of(r, j) == DP_STATUS_SUCCESS)
            r->boundary.ids[r->boundary.count++] = (uint32_t)j;
    free(bad);
    return DP_OK;
}

dp_result_t *dp__result_build(dp_run_record_t *rec)
{
    dp_graph_t *g = (dp_graph_t *)(uintptr_t)rec->g;
    dp_result_t *r = calloc(1, sizeof *r);
    if (!r) {
        dp__slotbuf_release(g, rec->slotbuf);
        free(rec->first_error);
        free(rec->reused);
        free(rec->why);
        rec->slotbuf = NULL;
        rec->first_error = NULL;
        rec->reused = NULL;
        rec->why = NULL;
        return NULL;
    }
    r->g = g;
    r->n = g->njobs;
    r->slotbuf = rec->slotbuf;
    r->first_error = rec->first_error;
    r->reused = rec->reused;
    rec->slotbuf = NULL;
    rec->first_error = NULL;
    rec->reused = NULL;
    r->a0 = rec->a0;
    r->tick_end = rec->a_end.tick;
    r->ns_per_tick = dp__ns_per_tick(rec->a_end);
    r->duration_ms = rec->duration_ms;
    r->outcome = rec->outcome;
    r->timed_out = rec->timed_out;
    r->cancelled = rec->cancelled;
    r->first_not_ready = rec->first_not_ready;
    r->requeue_ms = rec->requeue_ms;
    r->why = rec->why;
    r->cleanup_after = rec->cleanup_after;
    rec->why = NULL;

    if (r->outcome != DP_RUN_SUCCESS && (build_frontiers(r) != DP_OK || build_boundary(r) != DP_OK))
        goto oom;
    if (r->outcome == DP_RUN_SUCCESS) {
        r->boundary.ids = malloc(sizeof *r->boundary.ids);
        if (!r->boundary.ids)
            goto oom;
    }
    return r;

oom:
    /* dp_result_free hands the slots to the graph. */
    dp_result_free(r);
    return NULL;
}

void dp_id_list_free(dp_id_list_t *list)
{
    if (!list)
        return;
    free(list->ids);
    list->ids = NULL;
    list->count = 0;
}

void dp_result_free(dp_result_t *r)
{
    if (!r)
        return;
    free(atomic_load(&r->jobs));
    /* The slots back to the graph (which outlives its results) for its
     * next run. */
    dp__slotbuf_release((dp_graph_t *)(uintptr_t)r->g, r->slotbuf);
    for (size_t i = 0; i < r->nfrontiers; i++) {
        dp_id_list_free(&r->frontiers[i].blocked_by);
        dp_id_list_free(&r->frontiers[i].subtree);
    }
    free(r->frontiers);
    dp_id_list_free(&r->boundary);
    free(r->first_error);
    free(r->reused);
    dp__graph_waits_give((dp_graph_t *)(uintptr_t)r->g, r->pool_waits);
    free(r->why);
    free(r);
}

const dp_graph_t *dp_result_graph(const dp_result_t *r)
{
    return r->g;
}
size_t dp_result_job_count(const dp_result_t *r)
{
    return r->n;
}
dp_run_outcome_t dp_result_outcome(const dp_result_t *r)
{
    return r->outcome;
}
bool dp_result_is_ready(const dp_result_t *r)
{
    return r->outcome == DP_RUN_SUCCESS;
}
bool dp_result_timed_out(const dp_result_t *r)
{
    return r->timed_out;
}
bool dp_result_cancelled(const dp_result_t *r)
{
    return r->cancelled;
}
const char *dp_result_first_error(const dp_result_t *r)
{
    return r->first_error;
}
long dp_result_first_not_ready(const dp_result_t *r)
{
    return r->first_not_ready;
}
int64_t dp_result_requeue_after_ms(const dp_result_t *r)
{
    return r->requeue_ms;
}
int64_t dp_result_duration_ms(const dp_result_t *r)
{
    return r->duration_ms;
}
dp_clock_t dp_result_clock(const dp_result_t *r)
{
    return r->a0.tsc ? DP_CLOCK_TSC : DP_CLOCK_MONOTONIC;
}
const dp_id_list_t *dp_result_boundary(const dp_result_t *r)
{
    return &r->boundary;
}

static const char *reason_of(const dp_result_t *r, uint32_t j, dp_status_t st);

/* The public per-job records, made on first demand (NULL: no memory). */
static const dp_job_result_t *job_records(const dp_result_t *r)
{
    dp_job_result_t *jobs = atomic_load_explicit(&r->jobs, memory_order_acquire);
    if (jobs)
        return jobs;
    size_t n = r->n;
    jobs = malloc((n ? n : 1) * sizeof *jobs);
    if (!jobs)
        return NULL;
    const dp_job_def_t *defs = r->g->jobs;
    const dp_slotbuf_t *sb = r->slotbuf;
    const dp_slot_t *slots = sb->slot;
    bool any_error = atomic_load(&sb->any_error), any_version = atomic_load(&sb->any_version);
    for (size_t j = 0; j < n; j++) {
        const dp_slot_t *sl = &slots[j];
        dp_job_result_t *jr = &jobs[j];
        jr->name = dp__job_name(r->g, (uint32_t)j);
        jr->status = sl->status;
        jr->error = any_error ? sb->error[j] : NULL;
        jr->attempts = sl->attempts;
        jr->plugin = dp__def_pol(r->g, &defs[j])->plugin;
        jr->plugin_version = any_version ? sb->version[j] : NULL;
        jr->reused = r->reused && r->reused[j] == DP_REUSE_YES;
        const dp_job_policy_t *pol = dp__def_pol(r->g, &defs[j]);
        jr->run_if = (dp_run_if_t)pol->run_if;
        jr->continue_on_failure = pol->continue_on_failure != 0;
        jr->reason = reason_of(r, (uint32_t)j, sl->status);
        if (sl->start_tick) {
            uint64_t end = dp__slot_end(sb, (uint32_t)j);
            if (!end)
                end = r->tick_end;
            jr->start_ms = (int64_t)(dp__ticks_between(r->a0.tick, sl->start_tick, r->ns_per_tick) / 1000000u);
            jr->duration_ms = (int64_t)(dp__ticks_between(sl->start_tick, end, r->ns_per_tick) / 1000000u);
        } else {
            jr->start_ms = -1;
            jr->duration_ms = -1;
        }
    }
    /* Readers on other threads may race to make them: one wins. */
    dp_job_result_t *none = NULL;
    dp_result_t *rw = (dp_result_t *)(uintptr_t)r;
    if (!atomic_compare_exchange_strong_explicit(&rw->jobs, &none, jobs, memory_order_acq_rel, memory_order_acquire)) {
        free(jobs);
        jobs = none;
    }
    return jobs;
}

const dp_job_result_t *dp_result_job(const dp_result_t *r, size_t id)
{
    if (id >= r->n)
        return NULL;
    const dp_job_result_t *jobs = job_records(r);
    return jobs ? &jobs[id] : NULL;
}

dp_status_t dp_result_status(const dp_result_t *r, size_t id)
{
    return r && id < r->n ? (dp_status_t)r->slotbuf->slot[id].status : DP_STATUS_UNKNOWN;
}

const dp_job_result_t *dp_result_find(const dp_result_t *r, const char *name)
{
    long id = dp_graph_job_id(r->g, name);
    return id >= 0 ? dp_result_job(r, (size_t)id) : NULL;
}

bool dp_result_is_failed(const dp_result_t *r)
{
    for (size_t j = 0; j < r->n; j++)
        if (status_of(r, j) == DP_STATUS_FAILED && !(r->why && dp__tolerated(r->g, (uint32_t)j, DP_STATUS_FAILED)))
            return true;
    return false;
}

const char *dp_result_cleanup_after(const dp_result_t *r)
{
    switch (r ? r->cleanup_after : DP__CLEANUP_NONE) {
    case DP__CLEANUP_FAIL_FAST: return "fail_fast";
    case DP__CLEANUP_TIMEOUT: return "timeout";
    case DP__CLEANUP_CANCELLED: return "cancelled";
    default: return NULL;
    }
}

/* Why a rule ran or skipped job j (dp_job_result_t.reason), or NULL. */
static const char *reason_of(const dp_result_t *r, uint32_t j, dp_status_t st)
{
    if (!r->why)
        return NULL;
    if (dp__tolerated(r->g, j, st))
        return "failure tolerated (continue_on_failure)";
    switch (r->why[j]) {
    case DP__WHY_RAN_DONE: return "dependencies ended";
    case DP__WHY_RAN_FAILED: return "a dependency failed";
    case DP__WHY_SKIP_NO_FAILURE: return "no dependency failed";
    case DP__WHY_SKIP_UPSTREAM: return "a dependency did not succeed";
    case DP__WHY_SKIP_NOT_NEEDED: return "a dependency was not needed";
    case DP__WHY_CLEANUP:
        switch (r->cleanup_after) {
        case DP__CLEANUP_FAIL_FAST: return "cleanup after fail-fast";
        case DP__CLEANUP_TIMEOUT: return "cleanup after timeout";
        default: return "cleanup after cancellation";
        }
    default: return NULL;
    }
}

int dp_result_blockers(const dp_result_t *r, uint32_t job, dp_id_list_t *out)
{
    if (!r || !out || job >= r->n)
        return DP_EINVAL;
    return blockers_of(r, job, out);
}

int dp_result_subtree(const dp_result_t *r, uint32_t job, dp_id_list_t *out)
{
    if (!r || !out || job >= r->n)
        return DP_EINVAL;
    unsigned char *mark = calloc(r->n, 1);
    uint32_t *stack = malloc(r->n * sizeof *stack);
    int rc = DP_ENOMEM;
    if (mark && stack)
        rc = collect_subtree(r->g, job, mark, stack, out);
    free(mark);
    free(stack);
    return rc;
}

size_t dp_result_frontiers(const dp_result_t *r, const dp_frontier_t **out)
{
    *out = r->frontiers;
    return r->nfrontiers;
}

const dp_job_waits_t *dp_result_job_waits(const dp_result_t *r, size_t id)
{
    if (!r || id >= r->n)
        return NULL;
    const dp_slotbuf_t *sb = r->slotbuf;
    if (!atomic_load(&sb->any_waits) || !sb->waits[id].set)
        return NULL;
    return &sb->waits[id].w;
}

int64_t dp_result_pool_wait_ms(const dp_result_t *r, size_t id)
{
    if (!r || !r->pool_waits || id >= r->n || !r->pool_waits[id])
        return -1;
    return (int64_t)r->pool_waits[id] - 1;
}

/* result.c - building a run's result and answering questions about it:
 * statuses, the skipped subtrees, outcome, first error, frontiers, boundary.
 *
 * The outcome, first error, frontiers and boundary are computed once, when
 * the run ends, on the calling thread. The result owns the run's per-job
 * slots; the public per-job records (dp_job_result_t) are made from them on
 * first demand, once, under an atomic pointer, so a result may be read from
 * any thread and one that is only asked for its outcome costs no per-job
 * copy (on a run of no-op jobs that copy cost as much as the scheduling).
 */
#include "result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "pool.h"
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
            if (sl->status == DP_STATUS_UNKNOWN && sl->attempts == 0) {
                sl->status = DP_STATUS_SKIPPED;
                stack[top++] = s;
            }
        }
    }
}

/* Collects the subtree of `job` (itself and everything reachable) as a
 * sorted id list. mark is scratch of n bytes, all zero on entry and exit. */
static int collect_subtree(const dp_graph_t *g, uint32_t job, unsigned char *mark,
                           uint32_t *stack, dp_id_list_t *out)
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

static int blockers_of(const dp_result_t *r, uint32_t job, dp_id_list_t *out)
{
    const uint32_t *deps;
    size_t nd = dp_graph_deps(r->g, job, &deps);
    out->count = 0;
    out->ids = malloc((nd ? nd : 1) * sizeof *out->ids);
    if (!out->ids)
        return DP_ENOMEM;
    for (size_t i = 0; i < nd; i++)
        if (status_of(r, deps[i]) != DP_STATUS_SUCCESS)
            out->ids[out->count++] = deps[i];
    return DP_OK;
}

static int build_frontiers(dp_result_t *r)
{
    const dp_graph_t *g = r->g;
    size_t n = r->n;
    size_t cnt = 0;
    for (size_t j = 0; j < n; j++) {
        dp_status_t st = status_of(r, j);
        if (st == DP_STATUS_SUCCESS)
            continue;
        bool front = st == DP_STATUS_FAILED || st == DP_STATUS_NOT_READY;
        if (!front) {
            front = true;
            for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++)
                if (status_of(r, g->dep_ids[k]) != DP_STATUS_SUCCESS) {
                    front = false;
                    break;
                }
        }
        if (front)
            cnt++;
    }
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
        dp_status_t st = status_of(r, j);
        if (st == DP_STATUS_SUCCESS)
            continue;
        bool front = st == DP_STATUS_FAILED || st == DP_STATUS_NOT_READY;
        if (!front) {
            front = true;
            for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++)
                if (status_of(r, g->dep_ids[k]) != DP_STATUS_SUCCESS) {
                    front = false;
                    break;
                }
        }
        if (!front)
            continue;
        dp_frontier_t *f = &r->frontiers[r->nfrontiers++];
        f->job = (uint32_t)j;
        f->status = st;
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
        if (status_of(r, j0) == DP_STATUS_SUCCESS)
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

dp_result_t *dp__result_build(dp_run_t *run)
{
    const dp_graph_t *g = run->g;
    size_t n = g->njobs;
    dp_tick_anchor_t a_end = dp__tick_anchor();
    uint64_t t_end = a_end.ns;
    dp_result_t *r = calloc(1, sizeof *r);
    if (!r)
        goto oom;
    r->g = g;
    r->n = n;
    r->first_not_ready = -1;
    r->requeue_ms = -1;
    r->duration_ms = (int64_t)((t_end - run->t0) / 1000000u);
    r->a0 = run->a0;
    r->tick_end = a_end.tick;
    r->ns_per_tick = dp__ns_per_tick(a_end);
    uint32_t *stack = malloc((n ? n : 1) * sizeof *stack);
    if (!stack)
        goto oom;

    /* Statuses first: what a not_ready job (or, keeping going, a failed
     * one) holds back is skipped. */
    for (size_t j = 0; j < n; j++) {
        dp_status_t st = run->slots[j].status;
        if (st == DP_STATUS_NOT_READY || (st == DP_STATUS_FAILED && !run->opts.fail_fast))
            skip_below(run, (uint32_t)j, stack);
    }
    free(stack);
    /* From here on the slots are the result's. */
    r->slotbuf = run->slotbuf;
    run->slotbuf = NULL;

    int ctx_err = dp_ctx_err(&run->ctx);

    uint64_t first_fail_end = UINT64_MAX;
    long first_fail = -1;
    bool any_failed = false, all_success = true, any_unknown = false;
    const dp_slotbuf_t *sb = r->slotbuf;
    bool any_requeue = atomic_load(&sb->any_requeue), any_error = atomic_load(&sb->any_error);
    for (size_t j = 0; j < n; j++) {
        const dp_slot_t *sl = &run->slots[j];
        dp_status_t st = sl->status;
        if (st == DP_STATUS_SUCCESS) {
            if (!any_requeue)
                continue; /* the common case, in one branch */
        } else {
            all_success = false;
        }
        if (st == DP_STATUS_UNKNOWN) {
            any_unknown = true;
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
        if (st == DP_STATUS_FAILED) {
            any_failed = true;
            if (sl->end_tick < first_fail_end) {
                first_fail_end = sl->end_tick;
                first_fail = (long)j;
            }
        }
        if (st == DP_STATUS_NOT_READY && r->first_not_ready < 0)
            r->first_not_ready = (long)j;
        int64_t rq = any_requeue ? (int64_t)sb->requeue[j] - 1 : -1;
        if (rq >= 0 && (r->requeue_ms < 0 || rq < r->requeue_ms))
            r->requeue_ms = rq;
        if (run->opts.on_event && st == DP_STATUS_SKIPPED)
            dp__run_event(run, DP_EV_JOB_SKIPPED, (uint32_t)j, 0, 0, DP_STATUS_SKIPPED, NULL);
    }

    /* A deadline or cancel cut the run only if it left a job unknown
     * (running, in a backoff, or never reached). One that came after every
     * job had ended - all succeeded, or some not ready or skipped while the
     * run was still winding up - cut nothing: the statuses stand and the
     * outcome follows from them. */
    if (any_unknown) {
        r->timed_out = ctx_err == DP_ETIMEDOUT;
        r->cancelled = ctx_err == DP_ECANCELED && !atomic_load(&run->failfast);
    }
    if (r->timed_out) {
        r->outcome = DP_RUN_TIMEOUT;
        char d[32];
        if (run->opts.timeout_ms)
            r->first_error = dp__asprintf("timeout after %s",
                                          dp_duration_format(run->opts.timeout_ms, d, sizeof d));
        else
            r->first_error = dp__strdup("timeout (the caller's deadline passed)");
    } else if (r->cancelled) {
        r->outcome = DP_RUN_CANCELLED;
        r->first_error = first_fail >= 0 ? dp__strdup(sb->error[first_fail])
                                         : dp__strdup("cancelled");
    } else if (any_failed) {
        r->outcome = DP_RUN_FAILED;
        r->first_error = dp__strdup(sb->error[first_fail]);
    } else if (all_success) {
        r->outcome = DP_RUN_SUCCESS;
    } else {
        r->outcome = DP_RUN_NOT_READY;
    }

    if (r->outcome != DP_RUN_SUCCESS &&
        (build_frontiers(r) != DP_OK || build_boundary(r) != DP_OK))
        goto oom;
    if (r->outcome == DP_RUN_SUCCESS) {
        r->boundary.ids = malloc(sizeof *r->boundary.ids);
        if (!r->boundary.ids)
            goto oom;
    }
    if (run->opts.log) {
        dp__run_log(run, r->outcome == DP_RUN_SUCCESS ? DP_LOG_INFO : DP_LOG_WARN, NULL, 0,
                    "run ended: %s in %lld ms%s%s", dp_run_outcome_name(r->outcome),
                    (long long)r->duration_ms, r->first_error ? ": " : "",
                    r->first_error ? r->first_error : "");
    }
    return r;

oom:
    /* dp_result_free hands slots it took to the graph; the run's own
     * (not taken yet) go back in dp_graph_run. */
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
    free(r);
}

const dp_graph_t *dp_result_graph(const dp_result_t *r) { return r->g; }
size_t dp_result_job_count(const dp_result_t *r) { return r->n; }
dp_run_outcome_t dp_result_outcome(const dp_result_t *r) { return r->outcome; }
bool dp_result_is_ready(const dp_result_t *r) { return r->outcome == DP_RUN_SUCCESS; }
bool dp_result_timed_out(const dp_result_t *r) { return r->timed_out; }
bool dp_result_cancelled(const dp_result_t *r) { return r->cancelled; }
const char *dp_result_first_error(const dp_result_t *r) { return r->first_error; }
long dp_result_first_not_ready(const dp_result_t *r) { return r->first_not_ready; }
int64_t dp_result_requeue_after_ms(const dp_result_t *r) { return r->requeue_ms; }
int64_t dp_result_duration_ms(const dp_result_t *r) { return r->duration_ms; }
const dp_id_list_t *dp_result_boundary(const dp_result_t *r) { return &r->boundary; }

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
        jr->name = defs[j].name;
        jr->status = sl->status;
        jr->error = any_error ? sb->error[j] : NULL;
        jr->attempts = sl->attempts;
        jr->plugin = dp__def_pol(r->g, &defs[j])->plugin;
        jr->plugin_version = any_version ? sb->version[j] : NULL;
        if (sl->start_tick) {
            uint64_t end = sl->end_tick ? sl->end_tick : r->tick_end;
            jr->start_ms =
                (int64_t)(dp__ticks_between(r->a0.tick, sl->start_tick, r->ns_per_tick) / 1000000u);
            jr->duration_ms =
                (int64_t)(dp__ticks_between(sl->start_tick, end, r->ns_per_tick) / 1000000u);
        } else {
            jr->start_ms = -1;
            jr->duration_ms = -1;
        }
    }
    /* Readers on other threads may race to make them: one wins. */
    dp_job_result_t *none = NULL;
    dp_result_t *rw = (dp_result_t *)(uintptr_t)r;
    if (!atomic_compare_exchange_strong_explicit(&rw->jobs, &none, jobs, memory_order_acq_rel,
                                                 memory_order_acquire)) {
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

const dp_job_result_t *dp_result_find(const dp_result_t *r, const char *name)
{
    long id = dp_graph_job_id(r->g, name);
    return id >= 0 ? dp_result_job(r, (size_t)id) : NULL;
}

bool dp_result_is_failed(const dp_result_t *r)
{
    for (size_t j = 0; j < r->n; j++)
        if (status_of(r, j) == DP_STATUS_FAILED)
            return true;
    return false;
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

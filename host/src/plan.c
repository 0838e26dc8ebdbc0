/* plan.c - what a run would do, without running it (plan.h).
 *
 * The plan reads only the graph's shape: no job's callback, no plugin, no
 * store. It closes the reused set with the same function a run uses
 * (reuse.c), so that what it says a run would reuse is what the run
 * reuses.
 */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "reuse.h"
#include "text.h"
#include "util.h"

static const char not_needed[] = "not needed by the targets";

void dp__plan_free(dp_plan_t *p)
{
    if (!p)
        return;
    for (size_t j = 0; p->own && j < p->n; j++)
        free(p->own[j]);
    free(p->own);
    free(p->action);
    free(p->target);
    free(p->wave);
    free(p->reason);
    free(p->targets);
    memset(p, 0, sizeof *p);
}

/* need[j] for the targets and everything above them (every job when there
 * is no target). stack: n ids. */
static void mark_needed(const dp_plan_t *p, unsigned char *need, uint32_t *stack)
{
    if (!p->ntargets) {
        memset(need, 1, p->n);
        return;
    }
    size_t top = 0;
    for (size_t i = 0; i < p->ntargets; i++) {
        need[p->targets[i]] = 1;
        stack[top++] = p->targets[i];
    }
    while (top) {
        const uint32_t *deps;
        size_t nd = dp_graph_deps(p->g, stack[--top], &deps);
        for (size_t k = 0; k < nd; k++)
            if (!need[deps[k]]) {
                need[deps[k]] = 1;
                stack[top++] = deps[k];
            }
    }
}

/* Waves of the jobs that run: Kahn's order over them, each job one wave
 * after the latest of its dependencies that run. left, queue: n each. */
static void make_waves(dp_plan_t *p, uint32_t *left, uint32_t *queue)
{
    size_t head = 0, tail = 0;
    for (size_t j = 0; j < p->n; j++) {
        if (p->action[j] != DP_PLAN_RUN)
            continue;
        const uint32_t *deps;
        size_t nd = dp_graph_deps(p->g, j, &deps);
        left[j] = 0;
        for (size_t k = 0; k < nd; k++)
            left[j] += p->action[deps[k]] == DP_PLAN_RUN;
        if (!left[j]) {
            p->wave[j] = 1;
            queue[tail++] = (uint32_t)j;
        }
    }
    while (head < tail) {
        uint32_t j = queue[head++];
        if (p->wave[j] > p->nwaves)
            p->nwaves = p->wave[j];
        const uint32_t *succs;
        size_t ns = dp_graph_succs(p->g, j, &succs);
        for (size_t k = 0; k < ns; k++) {
            uint32_t s = succs[k];
            if (p->action[s] != DP_PLAN_RUN) /* excluded: a job that runs has no reused successor */
                continue;
            if (p->wave[s] < p->wave[j] + 1)
                p->wave[s] = p->wave[j] + 1;
            if (--left[s] == 0)
                queue[tail++] = s;
        }
    }
}

/* Why a job given as reused runs: its first dependency that is not
 * reused. */
static char *dropped_reason(const dp_graph_t *g, uint32_t j, const unsigned char *flags)
{
    const uint32_t *deps;
    size_t nd = dp_graph_deps(g, j, &deps);
    for (size_t k = 0; k < nd; k++)
        if (flags[deps[k]] != DP_REUSE_YES)
            return dp__asprintf("would be reused, but its dependency %s runs", dp_graph_job_name(g, deps[k]));
    return dp__strdup("would be reused, but a dependency runs");
}

int dp__plan_make(dp_plan_t *p, const dp_graph_t *g, const uint32_t *targets, size_t ntargets, const uint32_t *reused,
                  size_t nreused, const char *const *reasons, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    size_t n = dp_graph_job_count(g), cap = n ? n : 1;
    p->g = g;
    p->n = n;
    p->action = calloc(cap, 1);
    p->target = calloc(cap, 1);
    p->wave = calloc(cap, sizeof *p->wave);
    p->reason = calloc(cap, sizeof *p->reason);
    p->own = calloc(cap, sizeof *p->own);
    p->targets = malloc((ntargets ? ntargets : 1) * sizeof *p->targets);
    unsigned char *need = calloc(cap, 1), *flags = calloc(cap, 1);
    uint32_t *s1 = malloc(cap * sizeof *s1), *s2 = malloc(cap * sizeof *s2);
    int rc = DP_OK;
    if (!p->action || !p->target || !p->wave || !p->reason || !p->own || !p->targets || !need || !flags || !s1 || !s2) {
        rc = dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ntargets; i++) {
        if (targets[i] >= n) {
            rc = dp__seterr(err, errlen, DP_EINVAL, "target id %u is out of range: the graph has %zu jobs",
                            (unsigned)targets[i], n);
            goto out;
        }
        if (!p->target[targets[i]]) { /* a target given twice is one target */
            p->target[targets[i]] = 1;
            p->targets[p->ntargets++] = targets[i];
        }
    }
    size_t count;
    if ((rc = dp__reuse_flags(g, reused, nreused, flags, &count, err, errlen)) != DP_OK)
        goto out;
    mark_needed(p, need, s1);
    for (size_t j = 0; j < n; j++) {
        const char *given = reasons ? reasons[j] : NULL;
        if (!need[j]) {
            p->action[j] = DP_PLAN_EXCLUDED;
            p->reason[j] = not_needed;
            p->nexcluded++;
        } else if (flags[j] == DP_REUSE_YES) {
            p->action[j] = DP_PLAN_REUSED;
            p->reason[j] = given;
            p->nreused++;
        } else {
            p->action[j] = DP_PLAN_RUN;
            p->nrun++;
            p->reason[j] = given;
            if (flags[j] == DP_REUSE_DROPPED) {
                if (!(p->own[j] = dropped_reason(g, (uint32_t)j, flags))) {
                    rc = dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
                    goto out;
                }
                p->reason[j] = p->own[j];
            }
        }
    }
    make_waves(p, s1, s2);
out:
    free(need);
    free(flags);
    free(s1);
    free(s2);
    return rc;
}

int dp__plan_reused_ids(const dp_plan_t *p, const dp_graph_t *g, uint32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (!p->nreused)
        return DP_OK;
    if (!(*ids = malloc(p->nreused * sizeof **ids)))
        return DP_ENOMEM;
    for (size_t j = 0; j < p->n; j++) {
        if (p->action[j] != DP_PLAN_REUSED)
            continue;
        long id = g == p->g ? (long)j : dp_graph_job_id(g, dp_graph_job_name(p->g, j));
        if (id >= 0)
            (*ids)[(*n)++] = (uint32_t)id;
    }
    return DP_OK;
}

/* The jobs that run in wave order (*order, nrun ids; by name within a
 * wave, since ids are) and where each wave ends (*end, nwaves + 2 entries:
 * wave w is order[end[w - 1] .. end[w]), end[0] = 0): a counting sort, so
 * that a plan of a long chain is not quadratic. DP_OK or DP_ENOMEM. */
static int bucket_waves(const dp_plan_t *p, uint32_t **order, size_t **end)
{
    size_t *e = calloc(p->nwaves + 2, sizeof *e);
    uint32_t *o = malloc((p->nrun ? p->nrun : 1) * sizeof *o);
    if (!e || !o) {
        free(e);
        free(o);
        return DP_ENOMEM;
    }
    for (size_t j = 0; j < p->n; j++)
        if (p->action[j] == DP_PLAN_RUN)
            e[p->wave[j] + 1]++;
    for (size_t w = 1; w <= p->nwaves + 1; w++)
        e[w] += e[w - 1];
    /* e[w] is where wave w starts; filling moves it to where it ends. */
    for (size_t j = 0; j < p->n; j++)
        if (p->action[j] == DP_PLAN_RUN)
            o[e[p->wave[j]]++] = (uint32_t)j;
    *order = o;
    *end = e;
    return DP_OK;
}

/* ------------------------------------------------------------------------ */
/* Text                                                                      */
/* ------------------------------------------------------------------------ */

/* A name or a reason as the summary writes it: control characters and
 * invalid UTF-8 escaped. */
static void put_escaped(FILE *out, const char *s)
{
    char *e = dp__text_escape(s ? s : "");
    fputs(e ? e : "?", out);
    free(e);
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* "  NAME: REASON" per job of `action` (a reason or not, as `all`). */
static void job_lines(FILE *out, const dp_plan_t *p, dp_plan_action_t action, bool all)
{
    for (size_t j = 0; j < p->n; j++) {
        if (p->action[j] != action || (!all && !p->reason[j]))
            continue;
        fputs("  ", out);
        put_escaped(out, dp_graph_job_name(p->g, j));
        if (p->reason[j]) {
            fputs(": ", out);
            put_escaped(out, p->reason[j]);
        }
        fputc('\n', out);
    }
}

/* Whether job j has a pool, a priority or a trigger rule (what `graph`
 * also shows): those decide when it starts, or whether it runs at all. */
static bool has_sched(const dp_graph_t *g, size_t j)
{
    return dp_graph_job_pool(g, j, NULL) || dp_graph_job_priority(g, j) ||
           dp_graph_job_run_if(g, j) != DP_RUN_IF_ALL_SUCCESS || dp_graph_job_continue_on_failure(g, j);
}

/* "scheduling:", a line for each job that would run and has a pool, a
 * priority or a rule. */
static void sched_lines(FILE *out, const dp_plan_t *p)
{
    bool first = true;
    for (size_t j = 0; j < p->n; j++) {
        if (p->action[j] != DP_PLAN_RUN || !has_sched(p->g, j))
            continue;
        fputs(first ? "\nscheduling:\n" : "", out);
        first = false;
        fputs("  ", out);
        put_escaped(out, dp_graph_job_name(p->g, j));
        const char *sep = ": ";
        unsigned slots = 0;
        const char *pool = dp_graph_job_pool(p->g, j, &slots);
        if (pool) {
            fputs(sep, out);
            fputs("pool ", out);
            put_escaped(out, pool);
            if (slots > 1)
                fprintf(out, " (%u slots)", slots);
            sep = ", ";
        }
        if (dp_graph_job_priority(p->g, j)) {
            fprintf(out, "%spriority %d", sep, dp_graph_job_priority(p->g, j));
            sep = ", ";
        }
        dp_run_if_t rule = dp_graph_job_run_if(p->g, j);
        if (rule != DP_RUN_IF_ALL_SUCCESS) {
            fprintf(out, "%srun_if %s", sep, dp_run_if_name(rule));
            sep = ", ";
        }
        if (dp_graph_job_continue_on_failure(p->g, j))
            fprintf(out, "%scontinue_on_failure", sep);
        fputc('\n', out);
    }
}

int dp__plan_render_text(FILE *out, const dp_plan_t *p, const char *workflow)
{
    fputs("workflow ", out);
    put_escaped(out, workflow ? workflow : "?");
    fprintf(out, ": %zu of %zu %s would run", p->nrun, p->n, plural(p->n, "job", "jobs"));
    if (p->nrun)
        fprintf(out, ", in %zu %s", p->nwaves, plural(p->nwaves, "wave", "waves"));
    if (p->nreused)
        fprintf(out, "; %zu reused", p->nreused);
    if (p->nexcluded)
        fprintf(out, "; %zu not needed by the targets", p->nexcluded);
    fputc('\n', out);
    if (p->ntargets) {
        fputs("targets: ", out);
        for (size_t i = 0; i < p->ntargets; i++) {
            if (i)
                fputs(", ", out);
            put_escaped(out, dp_graph_job_name(p->g, p->targets[i]));
        }
        fputs(" (and what they depend on)\n", out);
    }
    size_t npools = dp_graph_pool_count(p->g);
    if (npools) {
        fputs("pools: ", out);
        for (size_t i = 0; i < npools; i++) {
            unsigned slots = 0;
            const char *name = dp_graph_pool_name(p->g, i, &slots);
            fputs(i ? ", " : "", out);
            put_escaped(out, name);
            fprintf(out, " = %u", slots);
        }
        fputc('\n', out);
    }
    fputc('\n', out);
    /* The waves: one line each, names in name order. */
    if (!p->nrun)
        fputs("nothing would run\n", out);
    uint32_t *order;
    size_t *end;
    if (bucket_waves(p, &order, &end) != DP_OK)
        return DP_ENOMEM;
    for (size_t w = 1, k = 0; w <= p->nwaves; w++) {
        fprintf(out, "wave %zu:", w);
        for (bool first = true; k < end[w]; k++, first = false) {
            fputs(first ? " " : ", ", out);
            put_escaped(out, dp_graph_job_name(p->g, order[k]));
        }
        fputc('\n', out);
    }
    free(end);
    free(order);
    sched_lines(out, p);
    bool any_run_reason = false;
    for (size_t j = 0; j < p->n && !any_run_reason; j++)
        any_run_reason = p->action[j] == DP_PLAN_RUN && p->reason[j];
    if (any_run_reason) {
        fputs("\nwhy these run:\n", out);
        job_lines(out, p, DP_PLAN_RUN, false);
    }
    if (p->nreused) {
        fputs("\nreused, not run:\n", out);
        job_lines(out, p, DP_PLAN_REUSED, true);
    }
    if (p->nexcluded) {
        fputs("\nnot needed by the targets: ", out);
        bool first = true;
        for (size_t j = 0; j < p->n; j++)
            if (p->action[j] == DP_PLAN_EXCLUDED) {
                fputs(first ? "" : ", ", out);
                put_escaped(out, dp_graph_job_name(p->g, j));
                first = false;
            }
        fputc('\n', out);
    }
    return fflush(out) == 0 && !ferror(out) ? DP_OK : DP_ESYS;
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                      */
/* ------------------------------------------------------------------------ */

static const char *action_name(unsigned char a)
{
    return a == DP_PLAN_RUN ? "run" : a == DP_PLAN_REUSED ? "reused" : "excluded";
}

int dp__plan_render_json(FILE *out, const dp_plan_t *p, const char *workflow)
{
    dp__jsonw_t w;
    dp__jsonw_init(&w, out, 2);
    dp__jsonw_object_open(&w);
    dp__jsonw_key_lit(&w, "workflow");
    dp__jsonw_string(&w, workflow);
    dp__jsonw_key_lit(&w, "targets");
    dp__jsonw_array_open(&w);
    for (size_t i = 0; i < p->ntargets; i++)
        dp__jsonw_string(&w, dp_graph_job_name(p->g, p->targets[i]));
    dp__jsonw_array_close(&w);
    dp__jsonw_key_lit(&w, "total");
    dp__jsonw_int(&w, (int64_t)p->n);
    dp__jsonw_key_lit(&w, "run");
    dp__jsonw_int(&w, (int64_t)p->nrun);
    dp__jsonw_key_lit(&w, "reused");
    dp__jsonw_int(&w, (int64_t)p->nreused);
    dp__jsonw_key_lit(&w, "excluded");
    dp__jsonw_int(&w, (int64_t)p->nexcluded);
    size_t npools = dp_graph_pool_count(p->g);
    if (npools) { /* only where the workflow has pools: else the keys are as before */
        dp__jsonw_key_lit(&w, "pools");
        dp__jsonw_object_open(&w);
        for (size_t i = 0; i < npools; i++) {
            unsigned slots = 0;
            dp__jsonw_key(&w, dp_graph_pool_name(p->g, i, &slots));
            dp__jsonw_int(&w, slots);
        }
        dp__jsonw_object_close(&w);
    }
    dp__jsonw_key_lit(&w, "waves");
    dp__jsonw_array_open(&w);
    uint32_t *order = NULL;
    size_t *end = NULL;
    if (bucket_waves(p, &order, &end) != DP_OK) {
        dp__jsonw_fail(&w, DP_ENOMEM);
    } else {
        for (size_t v = 1, k = 0; v <= p->nwaves; v++) {
            dp__jsonw_array_open(&w);
            for (; k < end[v]; k++)
                dp__jsonw_string(&w, dp_graph_job_name(p->g, order[k]));
            dp__jsonw_array_close(&w);
        }
    }
    free(order);
    free(end);
    dp__jsonw_array_close(&w);
    dp__jsonw_key_lit(&w, "jobs");
    dp__jsonw_object_open(&w);
    for (size_t j = 0; j < p->n; j++) {
        dp__jsonw_key(&w, dp_graph_job_name(p->g, j));
        dp__jsonw_object_open(&w);
        dp__jsonw_key_lit(&w, "action");
        dp__jsonw_string(&w, action_name(p->action[j]));
        dp__jsonw_key_lit(&w, "wave");
        dp__jsonw_int_or_null(&w, p->action[j] == DP_PLAN_RUN ? (int64_t)p->wave[j] : -1);
        dp__jsonw_key_lit(&w, "target");
        dp__jsonw_bool(&w, p->target[j]);
        dp__jsonw_key_lit(&w, "reason");
        dp__jsonw_string(&w, p->reason[j]);
        /* Pools, priority and rules only where set (as in the result). */
        unsigned slots = 0;
        const char *pool = dp_graph_job_pool(p->g, j, &slots);
        if (pool) {
            dp__jsonw_key_lit(&w, "pool");
            dp__jsonw_string(&w, pool);
            dp__jsonw_key_lit(&w, "pool_slots");
            dp__jsonw_int(&w, slots);
        }
        if (dp_graph_job_priority(p->g, j)) {
            dp__jsonw_key_lit(&w, "priority");
            dp__jsonw_int(&w, dp_graph_job_priority(p->g, j));
        }
        if (dp_graph_job_run_if(p->g, j) != DP_RUN_IF_ALL_SUCCESS) {
            dp__jsonw_key_lit(&w, "run_if");
            dp__jsonw_string(&w, dp_run_if_name(dp_graph_job_run_if(p->g, j)));
        }
        if (dp_graph_job_continue_on_failure(p->g, j)) {
            dp__jsonw_key_lit(&w, "continue_on_failure");
            dp__jsonw_bool(&w, true);
        }
        dp__jsonw_object_close(&w);
    }
    dp__jsonw_object_close(&w);
    dp__jsonw_object_close(&w);
    int rc = dp__jsonw_finish(&w);
    if (rc == DP_OK && fputc('\n', out) == EOF)
        rc = DP_ESYS;
    if (rc == DP_OK && (fflush(out) != 0 || ferror(out)))
        rc = DP_ESYS;
    return rc;
}

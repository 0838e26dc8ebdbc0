/* dag.c - building and validating the job graph.
 *
 * Validation happens once per shape: the first dp_graph_validate() (or run)
 * sorts, resolves and checks; adding a job or a dependency afterwards makes
 * the next call do it again.
 *
 * Memory is most of what a large graph costs (bench/README.md): a job is a
 * 32-byte definition (name, run, user, and an index into the graph's
 * distinct policies: check, timeout, retries, backoff, readiness, plugin),
 * its name in the graph's arena, and its edges in CSR arrays. What is only
 * needed while the graph is built (the name index, the edge list) is
 * dropped by a successful validate and made again if the graph changes.
 */
#include "dag.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

dp_graph_t *dp_graph_new(void)
{
    dp_graph_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    atomic_init(&g->running, false);
    return g;
}

static void free_built(dp_graph_t *g)
{
    free(g->dep_off);
    free(g->dep_ids);
    free(g->succ_off);
    free(g->succ_ids);
    free(g->validate_msg);
    free(g->cycle);
    g->dep_off = g->dep_ids = g->succ_off = g->succ_ids = NULL;
    g->validate_msg = NULL;
    g->cycle = NULL;
    g->ncycle = 0;
    g->nroots = 0;
    g->validated = 0;
}

void dp_graph_free(dp_graph_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->njobs; i++) {
        dp_job_def_t *d = &g->jobs[i];
        dp_free_cb user_free = g->pols[d->pol].user_free;
        if (user_free)
            user_free(d->user);
    }
    free(g->pols);
    free(g->pol_index);
    for (size_t i = 0; i < g->nfwd; i++)
        free(g->fwd[i]);
    free(g->fwd);
    dp__strarena_free(&g->names);
    for (size_t i = 0; i < g->nplugins; i++)
        free(g->plugins[i]);
    free(g->plugins);
    free(g->jobs);
    free(g->edges);
    free(g->index);
    free(g->run_scratch);
    free(atomic_load(&g->spare_slots));
    free_built(g);
    free(g);
}

/* Index lookup: job index or -1. Without an index (dropped by validate)
 * the jobs are in name order: a binary search. */
static long index_find(const dp_graph_t *g, const char *name)
{
    if (!g->index) {
        size_t lo = 0, hi = g->njobs;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(g->jobs[mid].name, name);
            if (c == 0)
                return (long)mid;
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return -1;
    }
    size_t mask = g->index_cap - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        uint32_t v = g->index[i];
        if (!v)
            return -1;
        if (strcmp(g->jobs[v - 1].name, name) == 0)
            return (long)(v - 1);
    }
}

static void index_put(dp_graph_t *g, uint32_t job)
{
    size_t mask = g->index_cap - 1;
    size_t i = hash_name(g->jobs[job].name) & mask;
    while (g->index[i])
        i = (i + 1) & mask;
    g->index[i] = job + 1;
}

static int index_rebuild(dp_graph_t *g, size_t want)
{
    size_t cap = 16;
    while (cap < want * 2 + 2)
        cap *= 2;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx)
        return DP_ENOMEM;
    free(g->index);
    g->index = idx;
    g->index_cap = cap;
    for (size_t j = 0; j < g->njobs; j++)
        index_put(g, (uint32_t)j);
    return DP_OK;
}

/* Before the graph changes: the name index back (if validate dropped it)
 * and the edge list back from the CSR arrays (if validate dropped it), then
 * forget what validate built. */
static int unbuild(dp_graph_t *g)
{
    if (!g->index && g->njobs && index_rebuild(g, g->njobs) != DP_OK)
        return DP_ENOMEM;
    if (g->validated && g->validate_rc == DP_OK && g->dep_off) {
        size_t ne = g->dep_off[g->njobs];
        if (ne > g->edge_cap) {
            dp_edge_name_t *e = realloc(g->edges, ne * sizeof *e);
            if (!e)
                return DP_ENOMEM;
            g->edges = e;
            g->edge_cap = ne;
        }
        g->nedges = 0;
        for (size_t j = 0; j < g->njobs; j++)
            for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++) {
                dp_edge_name_t *e = &g->edges[g->nedges++];
                e->job = (uint32_t)j;
                e->dep = g->dep_ids[k];
            }
    }
    free_built(g);
    return DP_OK;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The index of policy p in the graph, added if new. -1: no memory. */
static long pol_intern(dp_graph_t *g, const dp_job_policy_t *p)
{
    uint64_t h = hash_bytes(p, sizeof *p);
    if (g->pol_index_cap) {
        size_t mask = g->pol_index_cap - 1;
        for (size_t i = h & mask; g->pol_index[i]; i = (i + 1) & mask)
            if (memcmp(&g->pols[g->pol_index[i] - 1], p, sizeof *p) == 0)
                return (long)g->pol_index[i] - 1;
    }
    if (g->npols == g->pols_cap) {
        size_t ncap = g->pols_cap ? g->pols_cap * 2 : 4;
        dp_job_policy_t *np = realloc(g->pols, ncap * sizeof *np);
        if (!np)
            return -1;
        g->pols = np;
        g->pols_cap = ncap;
    }
    if ((g->npols + 1) * 2 >= g->pol_index_cap) {
        size_t cap = g->pol_index_cap ? g->pol_index_cap * 2 : 16;
        uint32_t *idx = calloc(cap, sizeof *idx);
        if (!idx)
            return -1;
        for (size_t k = 0; k < g->npols; k++) {
            size_t i = hash_bytes(&g->pols[k], sizeof *p) & (cap - 1);
            while (idx[i])
                i = (i + 1) & (cap - 1);
            idx[i] = (uint32_t)k + 1;
        }
        free(g->pol_index);
        g->pol_index = idx;
        g->pol_index_cap = cap;
    }
    size_t mask = g->pol_index_cap - 1, i = h & mask;
    while (g->pol_index[i])
        i = (i + 1) & mask;
    g->pols[g->npols] = *p;
    g->pol_index[i] = (uint32_t)g->npols + 1;
    return (long)g->npols++;
}

/* The graph's copy of a plugin name: one per distinct name (a graph has
 * many jobs of few plugins). */
static char *plugin_copy(dp_graph_t *g, const char *plugin)
{
    for (size_t i = g->nplugins; i-- > 0;)
        if (strcmp(g->plugins[i], plugin) == 0)
            return g->plugins[i];
    char **np = realloc(g->plugins, (g->nplugins + 1) * sizeof *np);
    if (!np)
        return NULL;
    g->plugins = np;
    if (!(np[g->nplugins] = strdup(plugin)))
        return NULL;
    return np[g->nplugins++];
}

int dp__graph_reserve(dp_graph_t *g, size_t njobs, size_t nedges)
{
    if (!g)
        return DP_EINVAL;
    if (unbuild(g) != DP_OK)
        return DP_ENOMEM;
    if (njobs > g->cap) {
        dp_job_def_t *nj = realloc(g->jobs, njobs * sizeof *nj);
        if (!nj)
            return DP_ENOMEM;
        g->jobs = nj;
        g->cap = njobs;
    }
    if (njobs * 2 + 2 > g->index_cap && index_rebuild(g, njobs) != DP_OK)
        return DP_ENOMEM;
    if (nedges > g->edge_cap) {
        dp_edge_name_t *ne = realloc(g->edges, nedges * sizeof *ne);
        if (!ne)
            return DP_ENOMEM;
        g->edges = ne;
        g->edge_cap = nedges;
    }
    return DP_OK;
}

void dp_job_spec_init(dp_job_spec_t *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->backoff.initial_ms = 1000;
    spec->backoff.factor = 2.0;
    spec->backoff.max_ms = 30000;
    spec->backoff.jitter = 0.0;
    spec->readiness.probe_timeout_ms = 30000;
}

int dp_graph_add_job(dp_graph_t *g, const dp_job_spec_t *spec, char *err, size_t errlen)
{
    if (!g || !spec || !spec->name || !*spec->name)
        return dp__seterr(err, errlen, DP_EINVAL, "a job needs a non-empty name");
    if (atomic_load(&g->running))
        return dp__seterr(err, errlen, DP_EBUSY, "graph is running; add jobs between runs");
    if (!spec->run && !spec->check)
        return dp__seterr(err, errlen, DP_ENOJOB, "job \"%s\" has neither run nor check", spec->name);
    if (spec->backoff.factor < 0 || spec->backoff.jitter < 0 || spec->backoff.jitter > 1)
        return dp__seterr(err, errlen, DP_EINVAL, "job \"%s\": backoff factor must be >= 0 and jitter within 0..1",
                          spec->name);
    if (g->njobs >= UINT32_MAX - 1)
        return dp__seterr(err, errlen, DP_EINVAL, "too many jobs");
    if (unbuild(g) != DP_OK)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    if (index_find(g, spec->name) >= 0)
        return dp__seterr(err, errlen, DP_EDUPLICATE, "duplicate job name \"%s\"", spec->name);
    if (g->njobs == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 16;
        dp_job_def_t *nj = realloc(g->jobs, ncap * sizeof *nj);
        if (!nj)
            return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
        g->jobs = nj;
        g->cap = ncap;
    }
    if ((g->njobs + 1) * 2 + 2 > g->index_cap && index_rebuild(g, g->njobs + 1) != DP_OK)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    dp_job_policy_t pol;
    memset(&pol, 0, sizeof pol); /* padding too: policies compare as bytes */
    pol.check = spec->check;
    pol.user_free = spec->user_free;
    pol.attempt_end = spec->attempt_end;
    pol.plugin = spec->plugin ? plugin_copy(g, spec->plugin) : NULL;
    pol.timeout_ms = spec->timeout_ms;
    pol.retries = spec->retries;
    pol.backoff = spec->backoff;
    pol.readiness = spec->readiness;
    long pi = spec->plugin && !pol.plugin ? -1 : pol_intern(g, &pol);
    dp_job_def_t *d = &g->jobs[g->njobs];
    d->name = pi < 0 ? NULL : dp__strarena_copy(&g->names, spec->name);
    if (!d->name)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory"); /* a policy may stay unused */
    d->run = spec->run;
    d->user = spec->user;
    d->pol = (uint32_t)pi;
    d->flags = !spec->check && !spec->timeout_ms ? DP_DEF_PLAIN : 0;
    index_put(g, (uint32_t)g->njobs);
    g->njobs++;
    return DP_OK;
}

/* Appends an edge as added (dep: an index, or DP_EDGE_FWD | a name's). */
static int edge_append(dp_graph_t *g, uint32_t job, uint32_t dep)
{
    if (g->nedges == g->edge_cap) {
        size_t ncap = g->edge_cap ? g->edge_cap * 2 : 16;
        dp_edge_name_t *ne = realloc(g->edges, ncap * sizeof *ne);
        if (!ne)
            return DP_ENOMEM;
        g->edges = ne;
        g->edge_cap = ncap;
    }
    g->edges[g->nedges].job = job;
    g->edges[g->nedges].dep = dep;
    g->nedges++;
    return DP_OK;
}

int dp_graph_add_dep(dp_graph_t *g, const char *job, const char *dep)
{
    if (!g || !job || !dep)
        return DP_EINVAL;
    if (atomic_load(&g->running))
        return DP_EBUSY;
    long j = index_find(g, job);
    if (j < 0)
        return DP_ENOTFOUND;
    if (unbuild(g) != DP_OK)
        return DP_ENOMEM;
    /* A dependency already added is remembered by index, like the job
     * (no copy of its name: a large graph has ten times more edges than
     * jobs); only a forward reference keeps the name until validate.
     * Validate maps indices through the name sort. */
    long di = index_find(g, dep);
    if (di < 0) {
        if (g->nfwd == g->fwd_cap) {
            size_t ncap = g->fwd_cap ? g->fwd_cap * 2 : 16;
            char **nf = realloc(g->fwd, ncap * sizeof *nf);
            if (!nf)
                return DP_ENOMEM;
            g->fwd = nf;
            g->fwd_cap = ncap;
        }
        if (g->nfwd >= DP_EDGE_FWD || !(g->fwd[g->nfwd] = strdup(dep)))
            return DP_ENOMEM;
        di = (long)(DP_EDGE_FWD | g->nfwd++);
    }
    return edge_append(g, (uint32_t)j, (uint32_t)di);
}

int dp__graph_add_dep_id(dp_graph_t *g, uint32_t job, uint32_t dep)
{
    if (!g || job >= g->njobs || dep >= g->njobs)
        return DP_EINVAL;
    if (atomic_load(&g->running))
        return DP_EBUSY;
    if (g->validated && unbuild(g) != DP_OK)
        return DP_ENOMEM;
    return edge_append(g, job, dep);
}

static int cmp_def_name(const void *a, const void *b)
{
    return strcmp(((const dp_job_def_t *)a)->name, ((const dp_job_def_t *)b)->name);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* After Kahn's traversal left some jobs unprocessed (indeg > 0 each), walks
 * dependencies from the smallest remaining name until a job repeats: that
 * loop is a cycle, each job depending on the next and the last on the
 * first. Returns it as a malloc'd array of *len ids, or NULL without
 * memory. */
static uint32_t *find_cycle(const dp_graph_t *g, const uint32_t *indeg, size_t *len)
{
    size_t n = g->njobs;
    uint32_t start = 0;
    while (start < n && indeg[start] == 0)
        start++;
    uint32_t *pos = calloc(n, sizeof *pos); /* position on the path + 1 */
    uint32_t *path = malloc(n * sizeof *path);
    if (!pos || !path) {
        free(pos);
        free(path);
        return NULL;
    }
    size_t plen = 0;
    uint32_t cur = start;
    while (!pos[cur]) {
        pos[cur] = (uint32_t)plen + 1;
        path[plen++] = cur;
        /* Any dependency still unprocessed continues the walk; the
         * smallest keeps the answer deterministic. */
        uint32_t next = cur;
        for (uint32_t k = g->dep_off[cur]; k < g->dep_off[cur + 1]; k++) {
            if (indeg[g->dep_ids[k]] > 0) {
                next = g->dep_ids[k];
                break;
            }
        }
        cur = next;
    }
    /* The walk entered the cycle at cur: what came before is not part of it. */
    size_t from = pos[cur] - 1;
    *len = plen - from;
    memmove(path, path + from, *len * sizeof *path);
    free(pos);
    return path;
}

/* The message for a cycle: "cycle: a -> b -> a (each job depends on the
 * next)"; "cycle among the jobs" when the cycle could not be found. */
static int report_cycle(const dp_graph_t *g, const uint32_t *cycle, size_t len, char *err, size_t errlen)
{
    if (!cycle)
        return dp__seterr(err, errlen, DP_ECYCLE, "cycle among the jobs");
    char *msg = NULL;
    size_t mlen = 0;
    /* A long cycle (10 000 jobs) is shortened on purpose, to its first and
     * last jobs and how many are between, rather than cut mid-name by the
     * caller's buffer: whole up to CYCLE_WHOLE jobs and ~600 bytes. */
    enum { CYCLE_WHOLE = 16, CYCLE_HEAD = 8, CYCLE_TAIL = 7, CYCLE_BYTES = 300 };
    size_t bytes = 0, head = len, tail = 0;
    for (size_t i = 0; i < len && bytes <= 2 * CYCLE_BYTES; i++)
        bytes += strlen(g->jobs[cycle[i]].name) + 4;
    if (len > CYCLE_WHOLE || bytes > 2 * CYCLE_BYTES) {
        head = tail = 0;
        for (size_t b = 0; head < CYCLE_HEAD && (head == 0 || b < CYCLE_BYTES); head++)
            b += strlen(g->jobs[cycle[head]].name) + 4;
        for (size_t b = 0; tail < CYCLE_TAIL && head + tail < len - 1 && (tail == 0 || b < CYCLE_BYTES); tail++)
            b += strlen(g->jobs[cycle[len - 1 - tail]].name) + 4;
        if (len - head - tail < 2) /* "... 1 more ..." says no less than the name */
            head = len, tail = 0;
    }
    FILE *f = open_memstream(&msg, &mlen);
    if (f) {
        fputs("cycle: ", f);
        for (size_t i = 0; i < head; i++)
            fprintf(f, "%s -> ", g->jobs[cycle[i]].name);
        if (head + tail < len)
            fprintf(f, "... %zu more ... -> ", len - head - tail);
        for (size_t i = len - tail; i < len; i++)
            fprintf(f, "%s -> ", g->jobs[cycle[i]].name);
        fprintf(f, "%s (each job depends on the next)", g->jobs[cycle[0]].name);
        fclose(f);
    }
    int rc = dp__seterr(err, errlen, DP_ECYCLE, "%s", msg ? msg : "cycle among the jobs");
    free(msg);
    return rc;
}

static int fail(dp_graph_t *g, int rc, char *err, size_t errlen, const char *msg)
{
    g->validated = 1;
    g->validate_rc = rc;
    g->validate_msg = strdup(msg);
    return dp__seterr(err, errlen, rc, "%s", msg);
}

/* Validation, step 1: sorts the jobs by name (ids become name order) and
 * renumbers the edges, which hold insertion indices. DP_OK or DP_ENOMEM. */
static int sort_jobs(dp_graph_t *g)
{
    size_t n = g->njobs;
    /* Jobs often arrive in name order already (generated names, sorted
     * files): then there is nothing to move, and the index stays valid. */
    bool sorted = true;
    for (size_t j = 1; j < n && sorted; j++)
        sorted = strcmp(g->jobs[j - 1].name, g->jobs[j].name) < 0;
    if (sorted)
        return DP_OK;
    uint32_t *old2new = malloc(n * sizeof *old2new);
    char **names_before = malloc(n * sizeof *names_before);
    if (!old2new || !names_before)
        goto oom;
    for (size_t j = 0; j < n; j++)
        names_before[j] = g->jobs[j].name;
    /* An empty graph has no jobs array at all, and qsort(NULL, 0, ...) is
     * undefined behaviour (UBSan reports it); a graph of one is sorted. */
    qsort(g->jobs, n, sizeof *g->jobs, cmp_def_name);
    if (index_rebuild(g, n) != DP_OK)
        goto oom;
    for (size_t j = 0; j < n; j++)
        old2new[j] = (uint32_t)index_find(g, names_before[j]);
    free(names_before);
    for (size_t e = 0; e < g->nedges; e++) {
        g->edges[e].job = old2new[g->edges[e].job];
        if (!(g->edges[e].dep & DP_EDGE_FWD))
            g->edges[e].dep = old2new[g->edges[e].dep];
    }
    free(old2new);
    return DP_OK;

oom:
    free(old2new);
    free(names_before);
    return DP_ENOMEM;
}

/* Step 2: resolves the dependencies added by name (in place: an edge then
 * holds ids only), refuses unknown and self dependencies (msg says which),
 * and counts each job's dependencies into dep_off[j + 1]. The name index
 * goes (the jobs are in name order now: index_find searches them). */
static int resolve_deps(dp_graph_t *g, char *msg, size_t msglen)
{
    size_t n = g->njobs;
    g->dep_off = calloc(n + 1, sizeof *g->dep_off);
    g->succ_off = calloc(n + 1, sizeof *g->succ_off);
    if (!g->dep_off || !g->succ_off)
        return DP_ENOMEM;
    for (size_t e = 0; e < g->nedges; e++) {
        dp_edge_name_t *ed = &g->edges[e];
        long d = (long)ed->dep;
        if (ed->dep & DP_EDGE_FWD) {
            const char *dn = g->fwd[ed->dep & ~DP_EDGE_FWD];
            d = index_find(g, dn);
            if (d < 0) {
                snprintf(msg, msglen, "job \"%s\" depends on unknown job \"%s\"", g->jobs[ed->job].name, dn);
                return DP_EUNKNOWN_DEP;
            }
        }
        if ((uint32_t)d == ed->job) {
            snprintf(msg, msglen, "job \"%s\" depends on itself", g->jobs[d].name);
            return DP_ESELF_DEP;
        }
        g->dep_off[ed->job + 1]++;
    }
    /* Every name resolved: edges refer by index from here on. */
    for (size_t e = 0; e < g->nedges; e++) {
        dp_edge_name_t *ed = &g->edges[e];
        if (ed->dep & DP_EDGE_FWD)
            ed->dep = (uint32_t)index_find(g, g->fwd[ed->dep & ~DP_EDGE_FWD]);
    }
    for (size_t i = 0; i < g->nfwd; i++)
        free(g->fwd[i]);
    g->nfwd = 0;
    /* Freed before the CSR arrays are made, so that they do not add up. */
    free(g->index);
    g->index = NULL;
    g->index_cap = 0;
    return DP_OK;
}

/* Step 3: the dependency lists in CSR form (dep_off, dep_ids), each sorted
 * and without repeats ("a" listed twice). fill: scratch of n counters. */
static int build_deps(dp_graph_t *g, uint32_t *fill)
{
    size_t n = g->njobs;
    for (size_t j = 0; j < n; j++)
        g->dep_off[j + 1] += g->dep_off[j];
    g->dep_ids = malloc((g->nedges ? g->nedges : 1) * sizeof *g->dep_ids);
    if (!g->dep_ids)
        return DP_ENOMEM;
    for (size_t e = 0; e < g->nedges; e++) {
        uint32_t j = g->edges[e].job;
        g->dep_ids[g->dep_off[j] + fill[j]++] = g->edges[e].dep;
    }
    size_t w = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t b = g->dep_off[j], e = g->dep_off[j + 1];
        if (e - b > 16) {
            qsort(g->dep_ids + b, e - b, sizeof *g->dep_ids, cmp_u32);
        } else { /* the usual few: insertion sort, no qsort call per job */
            for (uint32_t k = b + 1; k < e; k++) {
                uint32_t v = g->dep_ids[k], m = k;
                for (; m > b && g->dep_ids[m - 1] > v; m--)
                    g->dep_ids[m] = g->dep_ids[m - 1];
                g->dep_ids[m] = v;
            }
        }
        g->dep_off[j] = (uint32_t)w;
        for (uint32_t k = b; k < e; k++)
            if (k == b || g->dep_ids[k] != g->dep_ids[k - 1])
                g->dep_ids[w++] = g->dep_ids[k];
    }
    g->dep_off[n] = (uint32_t)w;
    return DP_OK;
}

/* Step 4: the successor lists (succ_off, succ_ids), the transpose, filled
 * in increasing job order so each list comes out sorted. fill: scratch of
 * n counters. */
static int build_succs(dp_graph_t *g, uint32_t *fill)
{
    size_t n = g->njobs, nedges = g->dep_off[n];
    for (size_t j = 0; j < n; j++)
        for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++)
            g->succ_off[g->dep_ids[k] + 1]++;
    for (size_t j = 0; j < n; j++)
        g->succ_off[j + 1] += g->succ_off[j];
    g->succ_ids = malloc((nedges ? nedges : 1) * sizeof *g->succ_ids);
    if (!g->succ_ids)
        return DP_ENOMEM;
    memset(fill, 0, (n ? n : 1) * sizeof *fill);
    for (size_t j = 0; j < n; j++)
        for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++) {
            uint32_t d = g->dep_ids[k];
            g->succ_ids[g->succ_off[d] + fill[d]++] = (uint32_t)j;
        }
    return DP_OK;
}

/* Step 5: Kahn's traversal, for cycles (and the number of roots). Leaves
 * in indeg (n counters) each job's dependencies not processed: above zero
 * exactly for the jobs on or below a cycle. *acyclic: whether all were
 * processed. DP_OK or DP_ENOMEM. */
static int check_acyclic(dp_graph_t *g, uint32_t *indeg, bool *acyclic)
{
    size_t n = g->njobs;
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return DP_ENOMEM;
    size_t head = 0, tail = 0;
    for (size_t j = 0; j < n; j++) {
        indeg[j] = g->dep_off[j + 1] - g->dep_off[j];
        if (!indeg[j])
            order[tail++] = (uint32_t)j;
    }
    g->nroots = tail;
    while (head < tail) {
        uint32_t j = order[head++];
        for (uint32_t k = g->succ_off[j]; k < g->succ_off[j + 1]; k++)
            if (--indeg[g->succ_ids[k]] == 0)
                order[tail++] = g->succ_ids[k];
    }
    free(order);
    *acyclic = tail == n;
    return DP_OK;
}

int dp_graph_validate(dp_graph_t *g, char *err, size_t errlen)
{
    if (!g)
        return dp__seterr(err, errlen, DP_EINVAL, "no graph");
    if (g->validated)
        return g->validate_rc == DP_OK ? DP_OK
                                       : dp__seterr(err, errlen, g->validate_rc, "%s",
                                                    g->validate_msg ? g->validate_msg : dp_strerror(g->validate_rc));
    size_t n = g->njobs;
    char msg[1024];
    int rc = sort_jobs(g);
    if (rc != DP_OK)
        goto oom;
    rc = resolve_deps(g, msg, sizeof msg);
    if (rc == DP_EUNKNOWN_DEP || rc == DP_ESELF_DEP) {
        free_built(g);
        return fail(g, rc, err, errlen, msg);
    }
    if (rc != DP_OK)
        goto oom;
    /* Scratch for the steps below: fill counts, then Kahn's in-degrees. */
    uint32_t *fill = calloc(n ? n : 1, sizeof *fill);
    bool acyclic = false;
    if (!fill || build_deps(g, fill) != DP_OK || build_succs(g, fill) != DP_OK ||
        check_acyclic(g, fill, &acyclic) != DP_OK) {
        free(fill);
        rc = DP_ENOMEM;
        goto oom;
    }
    if (!acyclic) {
        size_t len = 0;
        uint32_t *cycle = find_cycle(g, fill, &len);
        rc = report_cycle(g, cycle, len, msg, sizeof msg);
        free(fill);
        free_built(g);
        /* Kept for dp__graph_cycle until the graph changes. */
        g->cycle = cycle;
        g->ncycle = cycle ? len : 0;
        return fail(g, rc, err, errlen, msg);
    }
    free(fill);
    g->validated = 1;
    g->validate_rc = DP_OK;
    /* Built: the CSR arrays hold the edges, and the jobs are in name order
     * (index_find searches them). What only building needed goes; unbuild
     * makes it again if the graph changes. */
    free(g->edges);
    g->edges = NULL;
    g->nedges = g->edge_cap = 0;
    return DP_OK;

oom:
    free_built(g);
    return dp__seterr(err, errlen, rc, "out of memory");
}

size_t dp__graph_cycle(const dp_graph_t *g, const uint32_t **ids)
{
    *ids = g ? g->cycle : NULL;
    return g ? g->ncycle : 0;
}

size_t dp_graph_job_count(const dp_graph_t *g)
{
    return g ? g->njobs : 0;
}

const char *dp_graph_job_name(const dp_graph_t *g, size_t id)
{
    return g && id < g->njobs ? g->jobs[id].name : NULL;
}

const char *dp_graph_job_plugin(const dp_graph_t *g, size_t id)
{
    return g && id < g->njobs ? dp__def_pol(g, &g->jobs[id])->plugin : NULL;
}

long dp_graph_job_id(const dp_graph_t *g, const char *name)
{
    return g && name ? index_find(g, name) : -1;
}

size_t dp_graph_deps(const dp_graph_t *g, size_t id, const uint32_t **ids)
{
    if (!g || !g->validated || g->validate_rc || id >= g->njobs) {
        *ids = NULL;
        return 0;
    }
    *ids = g->dep_ids + g->dep_off[id];
    return g->dep_off[id + 1] - g->dep_off[id];
}

size_t dp_graph_succs(const dp_graph_t *g, size_t id, const uint32_t **ids)
{
    if (!g || !g->validated || g->validate_rc || id >= g->njobs) {
        *ids = NULL;
        return 0;
    }
    *ids = g->succ_ids + g->succ_off[id];
    return g->succ_off[id + 1] - g->succ_off[id];
}

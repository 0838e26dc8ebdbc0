/* service.c - `daggerpool watch --listen`: the snapshots the loop publishes
 * and the calls it makes (service.h). The HTTP side is http_server.c. */
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "metrics.h"
#include "util.h"

struct svc {
    console_t *con;
    svc_metrics_t *metrics;
    svc_http_t *http;
    pthread_mutex_t lock; /* guards cur and live: held for a pointer swap or a copy, never for I/O */
    svc_snapshot_t *cur;
    svc_live_t live;
    char *runs; /* /api/v1/runs (svc_set_runs), or NULL: no durable state */
    size_t runs_len;
};

static uint64_t mono_ms(void)
{
    return dp__now_ns() / 1000000u;
}

static void snapshot_free(svc_snapshot_t *p)
{
    if (!p)
        return;
    free(p->workflow);
    free(p->first_error);
    free(p->first_not_ready);
    free(p->blocker);
    free(p->result_json);
    free(p->metrics);
    free(p->jobs);
    free(p->frontiers);
    free(p->dot);
    free(p->arena);
    free(p->svg);
    pthread_mutex_destroy(&p->svg_lock);
    free(p);
}

void svc_snapshot_release(svc_snapshot_t *p)
{
    if (p && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
        snapshot_free(p);
}

static svc_snapshot_t *snapshot_new(void)
{
    svc_snapshot_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->refs = 1;
    pthread_mutex_init(&p->svg_lock, NULL);
    return p;
}

/* Puts p in place of the current snapshot (the lock held for the swap
 * only); the old one goes with its last reference. */
static void publish(svc_t *s, svc_snapshot_t *p)
{
    pthread_mutex_lock(&s->lock);
    svc_snapshot_t *old = s->cur;
    s->cur = p;
    pthread_mutex_unlock(&s->lock);
    svc_snapshot_release(old);
}

svc_snapshot_t *svc_acquire(svc_t *s, svc_live_t *live)
{
    pthread_mutex_lock(&s->lock);
    svc_snapshot_t *p = s->cur;
    __atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
    if (live)
        *live = s->live;
    pthread_mutex_unlock(&s->lock);
    return p;
}

console_t *svc_console(svc_t *s)
{
    return s->con;
}

svc_metrics_t *svc_metrics_of(svc_t *s)
{
    return s->metrics;
}

svc_t *svc_new(console_t *con, bool per_job, uint64_t interval_ms)
{
    svc_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->con = con;
    pthread_mutex_init(&s->lock, NULL);
    s->live.started_mono = mono_ms();
    s->live.grace_ms = interval_ms < 1000 ? 1000 : interval_ms > 60000 ? 60000 : interval_ms;
    s->cur = snapshot_new();
    s->metrics = svc_metrics_new(per_job);
    if (!s->cur || !s->metrics || !(s->cur->metrics = svc_metrics_render_runs(s->metrics, &s->cur->metrics_len))) {
        svc_free(s);
        return NULL;
    }
    return s;
}

int svc_start(svc_t *s, const dp__listen_addr_t *addr, char *err, size_t errlen)
{
    unsigned port = 0;
    if (!(s->http = svc_http_start(s, addr, &port, err, errlen)))
        return DP_ESYS;
    char where[80];
    dp__listen_format(addr, port, where, sizeof where);
    console_logf(
        s->con, DP_LOG_INFO,
        "serving http://%s/ (/metrics, /healthz, /readyz, /api/v1/result, /api/v1/runs, the status page at /): "
        "read-only, unauthenticated%s",
        where, addr->loopback ? "" : "; reachable beyond this machine");
    return DP_OK;
}

void svc_free(svc_t *s)
{
    if (!s)
        return;
    svc_http_stop(s->http); /* no request holds a snapshot past this */
    svc_snapshot_release(s->cur);
    svc_metrics_free(s->metrics);
    free(s->runs);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void svc_run_started(svc_t *s, unsigned run, uint64_t timeout_ms)
{
    pthread_mutex_lock(&s->lock);
    s->live.running = true;
    s->live.run = run;
    s->live.run_started_ms = dp__wall_ns() / 1000000u;
    s->live.run_started_mono = mono_ms();
    s->live.timeout_ms = timeout_ms;
    pthread_mutex_unlock(&s->lock);
}

void svc_reload_event(void *user, const dp_reload_event_t *ev)
{
    svc_t *s = user;
    if (s && ev)
        svc_metrics_reload(s->metrics, ev->plugin, ev->status == DP_OK);
}

/* ---- the snapshot of a run --------------------------------------------- */

/* The strings of the rows, in one block: a cursor that copies into it. */
typedef struct arena_cur {
    char *p;
} arena_cur_t;

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *put(arena_cur_t *c, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *at = c->p;
    memcpy(at, s, n);
    c->p += n;
    return at;
}

/* The frontiers' "blocked by" lists as text: at most this many names. */
#define BLOCKED_NAMES 8

static char *blocked_text(const dp_result_t *r, const dp_frontier_t *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    for (size_t i = 0; i < f->blocked_by.count && i < BLOCKED_NAMES; i++) {
        const dp_job_result_t *j = dp_result_job(r, f->blocked_by.ids[i]);
        fprintf(m, "%s%s", i ? ", " : "", j ? j->name : "?");
    }
    if (f->blocked_by.count > BLOCKED_NAMES)
        fprintf(m, ", ... (%zu in all)", f->blocked_by.count);
    fclose(m);
    return buf;
}

/* The job table and the frontiers, their strings in one block. */
static bool snapshot_rows(svc_snapshot_t *p, const dp_result_t *r)
{
    size_t n = dp_result_job_count(r);
    const dp_frontier_t *fr;
    size_t nf = dp_result_frontiers(r, &fr);
    char **blocked = calloc(nf ? nf : 1, sizeof *blocked);
    if (!blocked)
        return false;
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        if (!j) {
            free(blocked);
            return false;
        }
        total += slen(j->name) + slen(j->plugin) + slen(j->plugin_version) + slen(j->error);
    }
    for (size_t i = 0; i < nf; i++)
        total += slen(blocked[i] = blocked_text(r, &fr[i]));
    p->jobs = calloc(n ? n : 1, sizeof *p->jobs);
    p->frontiers = calloc(nf ? nf : 1, sizeof *p->frontiers);
    p->arena = malloc(total);
    bool ok = p->jobs && p->frontiers && p->arena;
    arena_cur_t c = {p->arena};
    for (size_t i = 0; ok && i < n; i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        p->jobs[i] = (svc_job_row_t){.name = put(&c, j->name),
                                     .status = (int)j->status,
                                     .attempts = j->attempts,
                                     .duration_ms = j->duration_ms,
                                     .plugin = put(&c, j->plugin),
                                     .plugin_version = put(&c, j->plugin_version),
                                     .error = put(&c, j->error)};
        if ((unsigned)j->status < 5)
            p->status_count[j->status]++;
    }
    for (size_t i = 0; ok && i < nf; i++) {
        const dp_job_result_t *j = dp_result_job(r, fr[i].job);
        p->frontiers[i] = (svc_frontier_row_t){
            .job = j ? p->jobs[fr[i].job].name : NULL, .status = (int)fr[i].status, .blocked_by = put(&c, blocked[i])};
    }
    p->njobs = ok ? n : 0;
    p->nfrontiers = ok ? nf : 0;
    for (size_t i = 0; i < nf; i++)
        free(blocked[i]);
    free(blocked);
    return ok;
}

/* The DAG in DOT with each job coloured by status (render.c's colours,
 * those of `graph --result`). */
static char *snapshot_dot(const dp_result_t *r, const char *name)
{
    const dp_graph_t *g = dp_result_graph(r);
    size_t n = dp_graph_job_count(g);
    if (n > SVC_GRAPH_MAX_JOBS)
        return NULL;
    int *status = malloc((n ? n : 1) * sizeof *status);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = status ? open_memstream(&buf, &len) : NULL;
    if (!m) {
        free(status);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        status[i] = (int)dp_result_status(r, i);
    dp__graph_style_t style = {.status = status};
    int rc = dp__render_dot(m, g, name, &style);
    if (fclose(m) != 0 || rc != DP_OK) {
        free(buf);
        buf = NULL;
    }
    free(status);
    return buf;
}

/* /readyz's answer when the run did not succeed: the first job that is not
 * ready (the first not_ready one, else the first frontier), and its status. */
static char *blocker_text(const svc_snapshot_t *p, const dp_result_t *r)
{
    long nr = dp_result_first_not_ready(r);
    const char *job = NULL;
    int st = -1;
    if (nr >= 0 && (size_t)nr < p->njobs) {
        job = p->jobs[nr].name;
        st = p->jobs[nr].status;
    } else if (p->nfrontiers) {
        job = p->frontiers[0].job;
        st = p->frontiers[0].status;
    }
    if (!job)
        return NULL;
    return dp__asprintf("%s (%s)", job, dp_status_name((dp_status_t)st));
}

void svc_run_ended(svc_t *s, const dp_result_t *r, const char *name, unsigned run, unsigned generation,
                   uint64_t next_ms)
{
    uint64_t t0 = dp__now_ns();
    uint64_t now_ms = dp__wall_ns() / 1000000u;
    svc_metrics_add_run(s->metrics, r, (double)now_ms / 1000.0, (double)next_ms / 1000.0, generation);
    svc_snapshot_t *p = snapshot_new();
    bool ok = p != NULL;
    if (ok) {
        p->have_run = true;
        p->run = run;
        p->generation = generation;
        p->outcome = (int)dp_result_outcome(r);
        p->ended_ms = now_ms;
        p->duration_ms = dp_result_duration_ms(r);
        p->next_run_ms = now_ms + next_ms;
        p->workflow = strdup(name ? name : "workflow");
        const char *fe = dp_result_first_error(r);
        p->first_error = fe ? strdup(fe) : NULL;
        FILE *m = open_memstream(&p->result_json, &p->result_len);
        ok = m && dp__render_json(m, r, name) == DP_OK;
        if (m && fclose(m) != 0)
            ok = false;
        ok = ok && p->workflow && (!fe || p->first_error) && snapshot_rows(p, r);
        long nr = dp_result_first_not_ready(r);
        if (ok && nr >= 0 && (size_t)nr < p->njobs)
            p->first_not_ready = strdup(p->jobs[nr].name);
        if (ok && p->outcome != DP_RUN_SUCCESS)
            p->blocker = blocker_text(p, r);
        p->dot = ok ? snapshot_dot(r, name) : NULL;
        ok = ok && (p->metrics = svc_metrics_render_runs(s->metrics, &p->metrics_len));
    }
    if (!ok) {
        /* The old snapshot keeps serving: stale, but whole. */
        snapshot_free(p);
        console_logf(s->con, DP_LOG_ERROR, "run %u: out of memory publishing the result to the HTTP endpoints", run);
    }
    pthread_mutex_lock(&s->lock);
    s->live.running = false;
    s->live.next_due_mono = mono_ms() + next_ms;
    pthread_mutex_unlock(&s->lock);
    if (ok) {
        publish(s, p);
        console_logf(s->con, DP_LOG_DEBUG, "run %u published to the HTTP endpoints in %.2f ms", run,
                     (double)(dp__now_ns() - t0) / 1e6);
    }
}

void svc_set_runs(svc_t *s, char *json, size_t len)
{
    if (!s) {
        free(json);
        return;
    }
    pthread_mutex_lock(&s->lock);
    char *old = s->runs;
    s->runs = json;
    s->runs_len = json ? len : 0;
    pthread_mutex_unlock(&s->lock);
    free(old);
}

char *svc_runs_copy(svc_t *s, size_t *len)
{
    pthread_mutex_lock(&s->lock);
    char *copy = s->runs ? malloc(s->runs_len ? s->runs_len : 1) : NULL;
    if (copy)
        memcpy(copy, s->runs, s->runs_len);
    *len = s->runs_len;
    pthread_mutex_unlock(&s->lock);
    return copy;
}

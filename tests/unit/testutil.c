/* testutil.c - shared helpers for the cmocka unit tests (see testutil.h). */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

uint64_t dp_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms_plain(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ------------------------------------------------------------------------ */
/* Scripted jobs                                                             */
/* ------------------------------------------------------------------------ */

tu_script_t *tu_script_new(void)
{
    tu_script_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->defaults.answer = TU_READY;
    s->defaults.check_answer = TU_READY;
    /* Fast retries unless a test asks for a real backoff. */
    s->defaults.backoff.initial_ms = 1;
    s->defaults.backoff.factor = 2.0;
    s->defaults.backoff.max_ms = 30000;
    s->defaults.readiness.probe_timeout_ms = 30000;
    return s;
}

void tu_script_free(tu_script_t *s)
{
    free(s);
}

static tu_job_t *find_job(tu_script_t *s, const char *name)
{
    for (size_t i = 0; i < s->njobs; i++)
        if (strcmp(s->jobs[i].name, name) == 0)
            return &s->jobs[i];
    return NULL;
}

tu_job_t *tu_job(tu_script_t *s, const char *name)
{
    tu_job_t *j = find_job(s, name);
    if (j)
        return j;
    assert_true(s->njobs < TU_MAX_JOBS);
    assert_true(strlen(name) < sizeof j->name);
    j = &s->jobs[s->njobs++];
    memset(j, 0, sizeof *j);
    snprintf(j->name, sizeof j->name, "%s", name);
    j->b = s->defaults;
    j->script = s;
    return j;
}

static tu_answer_t parse_answer(const char *w)
{
    if (strcmp(w, "ready") == 0)
        return TU_READY;
    if (strcmp(w, "not_ready") == 0)
        return TU_NOT_READY;
    if (strcmp(w, "error") == 0)
        return TU_ERROR;
    if (strcmp(w, "permanent") == 0)
        return TU_PERMANENT;
    fail_msg("unknown answer \"%s\"", w);
    return TU_READY;
}

static unsigned parse_uint(const char *v)
{
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    if (*end)
        fail_msg("not a number: \"%s\"", v);
    return (unsigned)x;
}

static void apply_word(tu_behave_t *b, const char *w)
{
    const char *eq = strchr(w, '=');
    char key[32];
    size_t kl = eq ? (size_t)(eq - w) : strlen(w);
    if (kl >= sizeof key) {
        fail_msg("bad word \"%s\"", w);
        return;
    }
    memcpy(key, w, kl);
    key[kl] = '\0';
    const char *v = eq ? eq + 1 : "";

    if (!eq && (strcmp(w, "ready") == 0 || strcmp(w, "not_ready") == 0 || strcmp(w, "error") == 0 ||
                strcmp(w, "permanent") == 0))
        b->answer = parse_answer(w);
    else if (strcmp(key, "sleep") == 0)
        b->sleep_ms = parse_uint(v);
    else if (strcmp(key, "block") == 0)
        b->block = !eq || parse_uint(v) != 0;
    else if (strcmp(key, "deaf") == 0)
        b->deaf_ms = parse_uint(v);
    else if (strcmp(key, "fail") == 0)
        b->fail_first = parse_uint(v);
    else if (strcmp(key, "rendezvous") == 0)
        b->rendezvous = parse_uint(v);
    else if (strcmp(key, "check") == 0) {
        b->has_check = true;
        b->check_answer = parse_answer(v);
    } else if (strcmp(key, "check_after") == 0) {
        b->has_check = true;
        b->check_ready_after = parse_uint(v);
    } else if (strcmp(key, "check_sleep") == 0) {
        b->has_check = true;
        b->check_sleep_ms = parse_uint(v);
    } else if (strcmp(key, "check_deaf") == 0) {
        b->has_check = true;
        b->check_deaf_ms = parse_uint(v);
    } else if (strcmp(key, "check_only") == 0) {
        b->has_check = true;
        b->check_only = true;
    } else if (strcmp(key, "timeout") == 0)
        b->timeout_ms = parse_uint(v);
    else if (strcmp(key, "retries") == 0)
        b->retries = parse_uint(v);
    else if (strcmp(key, "backoff") == 0) {
        /* INIT[/FACTOR[/MAX[/JITTER]]] */
        char buf[64];
        snprintf(buf, sizeof buf, "%s", v);
        char *save = NULL;
        char *t = strtok_r(buf, "/", &save);
        if (!t)
            fail_msg("bad backoff \"%s\"", v);
        b->backoff.initial_ms = parse_uint(t);
        if ((t = strtok_r(NULL, "/", &save)))
            b->backoff.factor = strtod(t, NULL);
        if ((t = strtok_r(NULL, "/", &save)))
            b->backoff.max_ms = parse_uint(t);
        if ((t = strtok_r(NULL, "/", &save)))
            b->backoff.jitter = strtod(t, NULL);
    } else if (strcmp(key, "period") == 0)
        b->readiness.period_ms = parse_uint(v);
    else if (strcmp(key, "probe_timeout") == 0)
        b->readiness.probe_timeout_ms = parse_uint(v);
    else if (strcmp(key, "rtimeout") == 0)
        b->readiness.timeout_ms = parse_uint(v);
    else if (strcmp(key, "run_if") == 0) {
        if (strcmp(v, "all_done") == 0)
            b->run_if = DP_RUN_IF_ALL_DONE;
        else if (strcmp(v, "any_failed") == 0)
            b->run_if = DP_RUN_IF_ANY_FAILED;
        else if (strcmp(v, "all_success") == 0)
            b->run_if = DP_RUN_IF_ALL_SUCCESS;
        else
            fail_msg("bad run_if \"%s\"", v);
    } else if (strcmp(key, "continue_on_failure") == 0)
        b->continue_on_failure = !eq || parse_uint(v) != 0;
    else if (strcmp(key, "cleanup_timeout") == 0)
        b->cleanup_timeout_ms = parse_uint(v);
    else
        fail_msg("unknown behaviour word \"%s\"", w);
}

static void apply_words(tu_behave_t *b, const char *words)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", words);
    char *save = NULL;
    for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
        apply_word(b, w);
}

void tu_set(tu_script_t *s, const char *names, const char *words)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", names);
    char *save = NULL;
    for (char *n = strtok_r(buf, ", ", &save); n; n = strtok_r(NULL, ", ", &save)) {
        if (strcmp(n, "*") == 0) {
            apply_words(&s->defaults, words);
            for (size_t i = 0; i < s->njobs; i++)
                apply_words(&s->jobs[i].b, words);
        } else {
            apply_words(&tu_job(s, n)->b, words);
        }
    }
}

void tu_hook(tu_script_t *s, const char *names, tu_hook_fn fn, void *arg)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", names);
    char *save = NULL;
    for (char *n = strtok_r(buf, ", ", &save); n; n = strtok_r(NULL, ", ", &save)) {
        tu_job_t *j = tu_job(s, n);
        j->b.hook = fn;
        j->b.hook_arg = arg;
    }
}

static void note_start(tu_job_t *tj, bool mark_start)
{
    tu_script_t *s = tj->script;
    int now = atomic_fetch_add(&s->running, 1) + 1;
    int cur = atomic_load(&s->max_running);
    while (now > cur && !atomic_compare_exchange_weak(&s->max_running, &cur, now))
        ;
    unsigned seq = atomic_fetch_add(&s->seq, 1) + 1;
    if (mark_start)
        atomic_store(&tj->start_seq, seq);
}

static dp_outcome_t note_end(tu_job_t *tj, dp_outcome_t o)
{
    tu_script_t *s = tj->script;
    atomic_store(&tj->end_seq, atomic_fetch_add(&s->seq, 1) + 1);
    atomic_fetch_sub(&s->running, 1);
    return o;
}

static dp_outcome_t answer(dp_job_t *job, tu_job_t *tj, tu_answer_t a, const char *what)
{
    switch (a) {
    case TU_READY: return DP_READY;
    case TU_NOT_READY: return DP_NOT_READY;
    case TU_ERROR: return dp_job_fail(job, false, "%s %s failed (attempt %u)", tj->name, what, dp_job_attempt(job));
    case TU_PERMANENT: return dp_job_fail(job, true, "%s %s failed permanently", tj->name, what);
    }
    return DP_ERROR;
}

/* Sleeps honouring ctx; false (and saw_cancel) if it ended early. */
static bool ctx_sleep(dp_job_t *job, tu_job_t *tj, unsigned ms)
{
    if (dp_ctx_sleep(dp_job_ctx(job), ms) != 0) {
        atomic_store(&tj->saw_cancel, true);
        return false;
    }
    return true;
}

static dp_outcome_t run_body(dp_job_t *job, tu_job_t *tj)
{
    const tu_behave_t *b = &tj->b;
    dp_ctx_t *ctx = dp_job_ctx(job);
    if (b->hook) {
        int r = b->hook(job, tj, false, b->hook_arg);
        if (r != -1)
            return (dp_outcome_t)r;
    }
    if (b->rendezvous) {
        uint64_t until = dp_test_now_ms() + 2000;
        while (atomic_load(&tj->script->max_running) < (int)b->rendezvous && dp_test_now_ms() < until &&
               !dp_ctx_done(ctx))
            sleep_ms_plain(1);
    }
    if (b->block) {
        if (ctx_sleep(job, tj, 10000))
            return dp_job_fail(job, false, "%s: blocked 10 s and nobody cancelled", tj->name);
        return dp_job_fail(job, false, "%s interrupted: %s", tj->name, dp_strerror(dp_ctx_err(ctx)));
    }
    if (b->sleep_ms && !ctx_sleep(job, tj, b->sleep_ms))
        return dp_job_fail(job, false, "%s interrupted: %s", tj->name, dp_strerror(dp_ctx_err(ctx)));
    if (b->deaf_ms) {
        sleep_ms_plain(b->deaf_ms);
        if (dp_ctx_done(ctx))
            atomic_store(&tj->saw_cancel, true);
    }
    if (dp_job_attempt(job) <= b->fail_first)
        return dp_job_fail(job, false, "%s failed (attempt %u)", tj->name, dp_job_attempt(job));
    return answer(job, tj, b->answer, "run");
}

static dp_outcome_t tu_run_cb(dp_job_t *job, void *user)
{
    tu_job_t *tj = user;
    atomic_store(&tj->deadline_ns, dp_ctx_deadline_ns(dp_job_ctx(job)));
    atomic_fetch_add(&tj->runs, 1);
    atomic_fetch_add(&tj->script->total_runs, 1);
    note_start(tj, true);
    return note_end(tj, run_body(job, tj));
}

static dp_outcome_t check_body(dp_job_t *job, tu_job_t *tj, unsigned call)
{
    const tu_behave_t *b = &tj->b;
    if (b->hook) {
        int r = b->hook(job, tj, true, b->hook_arg);
        if (r != -1)
            return (dp_outcome_t)r;
    }
    if (b->check_sleep_ms && !ctx_sleep(job, tj, b->check_sleep_ms))
        return dp_job_fail(job, false, "%s check interrupted", tj->name);
    if (b->check_deaf_ms)
        sleep_ms_plain(b->check_deaf_ms);
    if (b->check_ready_after)
        return call >= b->check_ready_after ? DP_READY : DP_NOT_READY;
    return answer(job, tj, b->check_answer, "check");
}

static dp_outcome_t tu_check_cb(dp_job_t *job, void *user)
{
    tu_job_t *tj = user;
    unsigned call = atomic_fetch_add(&tj->checks, 1) + 1;
    note_start(tj, tj->b.check_only);
    return note_end(tj, check_body(job, tj, call));
}

static void tu_attempt_end_cb(dp_job_t *job, void *user)
{
    (void)job;
    tu_job_t *tj = user;
    atomic_fetch_add(&tj->attempt_ends, 1);
}

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

dp_graph_t *tu_graph(const char *spec, tu_script_t *s)
{
    dp_graph_t *g = dp_graph_new();
    assert_non_null(g);
    char *copy = strdup(spec);
    assert_non_null(copy);
    char err[256];
    /* Pass 1: jobs. Pass 2: dependencies (a job must exist to get one). */
    for (int pass = 0; pass < 2; pass++) {
        char *buf = strdup(copy);
        char *save = NULL;
        for (char *ent = strtok_r(buf, ";", &save); ent; ent = strtok_r(NULL, ";", &save)) {
            char *colon = strchr(ent, ':');
            if (colon)
                *colon = '\0';
            char *name = trim(ent);
            if (!*name)
                continue;
            if (pass == 0) {
                tu_job_t *tj = tu_job(s, name);
                dp_job_spec_t sp;
                dp_job_spec_init(&sp);
                sp.name = name;
                sp.run = tj->b.check_only ? NULL : tu_run_cb;
                sp.check = tj->b.has_check ? tu_check_cb : NULL;
                sp.user = tj;
                sp.timeout_ms = tj->b.timeout_ms;
                sp.retries = tj->b.retries;
                sp.backoff = tj->b.backoff;
                sp.readiness = tj->b.readiness;
                sp.plugin = tj->b.plugin;
                sp.attempt_end = tu_attempt_end_cb;
                sp.run_if = tj->b.run_if;
                sp.continue_on_failure = tj->b.continue_on_failure;
                sp.cleanup_timeout_ms = tj->b.cleanup_timeout_ms;
                err[0] = '\0';
                int rc = dp_graph_add_job(g, &sp, err, sizeof err);
                if (rc != DP_OK)
                    fail_msg("adding %s: %s", name, err);
            } else if (colon) {
                char *dsave = NULL;
                for (char *d = strtok_r(colon + 1, ",", &dsave); d; d = strtok_r(NULL, ",", &dsave)) {
                    d = trim(d);
                    if (*d)
                        assert_int_equal(dp_graph_add_dep(g, name, d), DP_OK);
                }
            }
        }
        free(buf);
    }
    free(copy);
    return g;
}

char *tu_spec_flat(unsigned n)
{
    size_t cap = (size_t)n * 8 + 1;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t len = 0;
    s[0] = '\0';
    for (unsigned i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%sJ%03u", i ? ";" : "", i);
    return s;
}

char *tu_spec_layers(unsigned layers, unsigned width)
{
    size_t cap = (size_t)layers * width * 48 + 1;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t len = 0;
    s[0] = '\0';
    for (unsigned l = 0; l < layers; l++)
        for (unsigned i = 0; i < width; i++) {
            len += (size_t)snprintf(s + len, cap - len, "%sL%u_%u:", len ? ";" : "", l, i);
            if (l > 0) {
                len += (size_t)snprintf(s + len, cap - len, "L%u_%u", l - 1, i);
                if (width > 1)
                    len += (size_t)snprintf(s + len, cap - len, ",L%u_%u", l - 1, (i + 1) % width);
            }
        }
    return s;
}

dp_result_t *tu_run(dp_graph_t *g, const dp_run_opts_t *opts)
{
    char err[512] = "";
    dp_result_t *r = dp_graph_run(g, opts, err, sizeof err);
    if (!r)
        fail_msg("dp_graph_run refused: %s", err);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Looking at results                                                        */
/* ------------------------------------------------------------------------ */

const char *tu_statuses(const dp_result_t *r)
{
    static char buf[16384];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < dp_result_job_count(r) && len < sizeof buf; i++) {
        const dp_job_result_t *jr = dp_result_job(r, i);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s=%s", i ? " " : "", jr->name,
                                dp_status_name(jr->status));
    }
    return buf;
}

const dp_job_result_t *tu_jr(const dp_result_t *r, const char *name)
{
    const dp_job_result_t *jr = dp_result_find(r, name);
    if (!jr)
        fail_msg("no job \"%s\" in the result", name);
    return jr;
}

dp_status_t tu_status(const dp_result_t *r, const char *name)
{
    return tu_jr(r, name)->status;
}

void tu_expect(const dp_result_t *r, const char *expect)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", expect);
    char *save = NULL;
    for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(w, '=');
        if (!eq)
            fail_msg("bad expectation \"%s\"", w);
        *eq = '\0';
        const dp_job_result_t *jr = tu_jr(r, w);
        if (strcmp(dp_status_name(jr->status), eq + 1) != 0)
            fail_msg("job %s is %s, expected %s (error: %s)\nall: %s", w, dp_status_name(jr->status), eq + 1,
                     jr->error ? jr->error : "-", tu_statuses(r));
    }
}

const char *tu_ids(const dp_graph_t *g, const dp_id_list_t *l, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->count && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "," : "", dp_graph_job_name(g, l->ids[i]));
    return buf;
}

const char *tu_frontiers(const dp_result_t *r)
{
    static char buf[16384];
    const dp_graph_t *g = dp_result_graph(r);
    const dp_frontier_t *f;
    size_t nf = dp_result_frontiers(r, &f);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nf && len < sizeof buf; i++) {
        char b1[2048], b2[4096];
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s:%s[%s]{%s}", i ? " " : "",
                                dp_graph_job_name(g, f[i].job), dp_status_name(f[i].status),
                                tu_ids(g, &f[i].blocked_by, b1, sizeof b1), tu_ids(g, &f[i].subtree, b2, sizeof b2));
    }
    return buf;
}

const char *tu_boundary(const dp_result_t *r)
{
    static char buf[8192];
    return tu_ids(dp_result_graph(r), dp_result_boundary(r), buf, sizeof buf);
}

void tu_expect_dep_order(const dp_graph_t *g, tu_script_t *s)
{
    for (size_t id = 0; id < dp_graph_job_count(g); id++) {
        tu_job_t *tj = find_job(s, dp_graph_job_name(g, id));
        assert_non_null(tj);
        unsigned start = atomic_load(&tj->start_seq);
        if (!start)
            continue;
        const uint32_t *deps;
        size_t nd = dp_graph_deps(g, id, &deps);
        for (size_t k = 0; k < nd; k++) {
            tu_job_t *dj = find_job(s, dp_graph_job_name(g, deps[k]));
            assert_non_null(dj);
            unsigned end = atomic_load(&dj->end_seq);
            if (end == 0 || end > start)
                fail_msg("%s started (seq %u) before its dependency %s returned (seq %u)", tj->name, start, dj->name,
                         end);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Recorders                                                                 */
/* ------------------------------------------------------------------------ */

void tu_log_init(tu_log_t *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

void tu_log_destroy(tu_log_t *l)
{
    free(l->v);
    pthread_mutex_destroy(&l->mu);
}

void tu_log_cb(void *user, const dp_log_record_t *rec)
{
    tu_log_t *l = user;
    pthread_mutex_lock(&l->mu);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        assert_non_null(l->v);
    }
    tu_log_entry_t *e = &l->v[l->n++];
    e->level = rec->level;
    snprintf(e->job, sizeof e->job, "%s", rec->job ? rec->job : "");
    e->attempt = rec->attempt;
    snprintf(e->message, sizeof e->message, "%s", rec->message ? rec->message : "");
    pthread_mutex_unlock(&l->mu);
}

size_t tu_log_count(tu_log_t *l, const char *job, unsigned attempt, const char *needle)
{
    size_t c = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n; i++) {
        const tu_log_entry_t *e = &l->v[i];
        if (strcmp(e->job, job ? job : "") != 0)
            continue;
        if (attempt && e->attempt != attempt)
            continue;
        if (needle && !strstr(e->message, needle))
            continue;
        c++;
    }
    pthread_mutex_unlock(&l->mu);
    return c;
}

void tu_events_init(tu_events_t *e)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->mu, NULL);
}

void tu_events_destroy(tu_events_t *e)
{
    free(e->v);
    pthread_mutex_destroy(&e->mu);
}

void tu_event_cb(void *user, const dp_event_t *ev)
{
    tu_events_t *e = user;
    pthread_mutex_lock(&e->mu);
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->v = realloc(e->v, e->cap * sizeof *e->v);
        assert_non_null(e->v);
    }
    tu_event_t *t = &e->v[e->n++];
    t->kind = ev->kind;
    snprintf(t->name, sizeof t->name, "%s", ev->name ? ev->name : "");
    t->attempt = ev->attempt;
    t->status = ev->status;
    snprintf(t->error, sizeof t->error, "%s", ev->error ? ev->error : "");
    t->time_ns = ev->time_ns;
    t->start_ns = ev->start_ns;
    pthread_mutex_unlock(&e->mu);
}

const char *tu_events_of(tu_events_t *e, const char *name)
{
    static char buf[4096];
    size_t len = 0;
    buf[0] = '\0';
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n && len < sizeof buf; i++) {
        const tu_event_t *t = &e->v[i];
        if (strcmp(t->name, name) != 0)
            continue;
        const char *sep = len ? " " : "";
        switch (t->kind) {
        case DP_EV_ATTEMPT_START:
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%sstart%u", sep, t->attempt);
            break;
        case DP_EV_ATTEMPT_END:
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%send%u:%s", sep, t->attempt,
                                    dp_status_name(t->status));
            break;
        case DP_EV_JOB_END:
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%sjob:%s", sep, dp_status_name(t->status));
            break;
        case DP_EV_JOB_SKIPPED: len += (size_t)snprintf(buf + len, sizeof buf - len, "%sskipped", sep); break;
        case DP_EV_JOB_REUSED: len += (size_t)snprintf(buf + len, sizeof buf - len, "%sreused", sep); break;
        }
    }
    pthread_mutex_unlock(&e->mu);
    return buf;
}

/*
 * plugin_job.c - the job adapter: a plugin job type as an engine job.
 * dp_plugins_add_job (and the loader's batch of many jobs) resolves
 * PLUGIN.TYPE (loading the plugin if need be), checks the job's params by
 * creating an instance on the current version and destroying it, counts
 * the job as a user of its type (plugin_swap.c: a reload must keep it) and
 * adds it to the graph with the callbacks below. Each attempt then pins the
 * current version, creates the instance (in a child process for
 * isolation = "process", isolate.c), runs or checks it, and ends it.
 *
 * The attempt callbacks are the per-job path: a pin and an unpin (atomic
 * counts; lock only around a hot swap, plugin_swap.c) and the plugin's own
 * calls; nothing else is locked there.
 *
 * Lock order: load_lock, then lock (plugin_int.h). Adding jobs holds
 * load_lock from resolving the type to the last job of a run of one type
 * (so no reload swaps versions in between) and takes lock to count; the
 * attempt callbacks take lock only, through the pins, and only when a pin
 * meets a version being swapped out.
 */
#include "plugin_job.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "host_api.h"
#include "isolate.h"
#include "params.h"
#include "plugin_int.h"
#include "plugin_load.h"
#include "plugin_registry.h"
#include "plugin_swap.h"
#include "util.h"

/* One plugin job: the adapter behind the engine's run/check callbacks.
 * The fields up to params_lent, and isolation, limits, has_run, has_check,
 * are set when the job is added, before the graph has it, and never change.
 * The attempt's fields are owned by the thread in the job's callback: the
 * engine never calls one job's callbacks concurrently (the attempt_end
 * contract), and frees the job (pjob_free) only after its last one. */
typedef struct pjob {
    dp_plugins_t *pl; /* holds a reference (counted) */
    dp_pentry_t *entry;
    const char *type;      /* TYPE of PLUGIN.TYPE (interned in pl) */
    const char *full_type; /* (interned in pl) */
    dp_params_t *params;   /* the job's own copy, or lent (params_lent) */
    bool params_lent;      /* the caller's, for the graph's lifetime */
    /* The current attempt's instance. */
    dp_pversion_t *ver; /* pinned while live */
    const dp_ptype_t *t;
    void *state;
    unsigned attempt;
    bool live;
    /* isolation = "process": the attempt's instance lives in a child
     * process (iso) instead of state; see isolate.h. */
    dp_isolation_t isolation;
    dp_limits_t limits;
    dp_isolate_t *iso;
    bool has_run, has_check; /* what the type count took for this job */
    bool counted;            /* counted in its type's uses and the registry's
                               * references: given back on free */
    /* DP_JOB_TYPE_STATELESS: the generation of the version whose create
     * last accepted the params (0: none); an attempt pinned to it needs no
     * create. */
    unsigned checked_gen;
} pjob_t;

/* Gives back pj's count in its type's uses (its graph is freeing it). */
static void unnote_used(pjob_t *pj)
{
    dp_plugins_t *pl = pj->pl;
    pthread_mutex_lock(&pl->lock);
    dp__pentry_unnote_used_locked(pj->entry, pj->type, 1, pj->has_run, pj->has_check);
    pthread_mutex_unlock(&pl->lock);
}

/* Logs a line of an isolated job's child: as the job during an attempt,
 * else (add-time params check) as the registry logs. */
static void iso_log(void *user, dp_job_t *job, const char *job_name, int level, const char *msg)
{
    pjob_t *pj = user;
    if (level < DP_LOG_ERROR)
        level = DP_LOG_ERROR;
    if (level > DP_LOG_DEBUG)
        level = DP_LOG_DEBUG;
    if (job)
        dp_job_log(job, (dp_log_level_t)level, "%s", msg);
    else
        dp__plugins_log(pj->pl, (dp_log_level_t)level, job_name, pj->entry->name, "%s", msg);
}

/* What runs pj's type of version v in a child process, for job job_name
 * (the host's store read once, under its lock). */
static dp_isolate_spec_t isolate_spec(pjob_t *pj, const dp_pversion_t *v, const char *job_name)
{
    pthread_mutex_lock(&pj->pl->lock);
    dp_store_t *store = pj->pl->store;
    pthread_mutex_unlock(&pj->pl->lock);
    return (dp_isolate_spec_t){
        .plugin = pj->entry->name,
        .path = v->path,
        .fd = v->fd,
        .type = pj->type,
        .job_name = job_name,
        .params = pj->params,
        .limits = pj->limits,
        .log = iso_log,
        .store = store,
    };
}

/* Starts pj's instance on version v in a child process (create runs there);
 * job is NULL for the add-time params check. See dp__isolate_start. */
static int isolate_start(pjob_t *pj, dp_pversion_t *v, dp_job_t *job, const char *job_name, dp_isolate_t **iso,
                         char **msg, bool *perm)
{
    dp_isolate_spec_t spec = isolate_spec(pj, v, job_name);
    spec.log_user = pj;
    return dp__isolate_start(&spec, job, iso, msg, perm);
}

/* Ends the attempt's instance: the type's end hook (ABI 1.1) when the
 * engine ends the attempt (job given), then destroy, then unpin. */
static void instance_end(pjob_t *pj, dp_job_t *job)
{
    if (!pj->live)
        return;
    /* Cut short: the attempt's context is done (run cancelled or timed
     * out, or the job's own timeout); a readiness wait that gave up is not. */
    bool cut = job && dp_ctx_done(dp_job_ctx(job));
    if (pj->iso) {
        dp__isolate_end(pj->iso, job, !job ? DP_ISO_END_QUIET : cut ? DP_ISO_END_CUT : DP_ISO_END_DONE);
        pj->iso = NULL;
    } else {
        if (job && pj->t->ops.end) {
            dp_plugin_ctx ctx = {.pl = pj->pl, .ver = pj->ver, .job = job, .job_name = dp_job_name(job)};
            pj->t->ops.end(&ctx, pj->state);
            free(ctx.error); /* set_error is ignored in end */
        }
        if (pj->t->ops.destroy)
            pj->t->ops.destroy(pj->state);
    }
    dp__pversion_unpin(pj->pl, pj->ver);
    pj->live = false;
    pj->state = NULL;
    pj->ver = NULL;
    pj->t = NULL;
}

/* Whether t's create only checks params (DP_JOB_TYPE_STATELESS). */
static inline bool stateless(const dp_ptype_t *t)
{
    return (t->ops.flags & DP_JOB_TYPE_STATELESS) != 0;
}

/* A create of stateless type t on v accepted pj's params (and made no
 * state, as the flag says: else the flag is not believed): attempts on v
 * need no create. */
static void note_checked(pjob_t *pj, const dp_pversion_t *v, const dp_ptype_t *t, const void *state)
{
    if (stateless(t) && !state && pj->isolation != DP_ISOLATION_PROCESS)
        pj->checked_gen = v->generation;
}

/* Starts the attempt's instance on the current version: pin, create (not
 * for a stateless type on the version that checked the params). */
static dp_outcome_t instance_start(pjob_t *pj, dp_job_t *job)
{
    dp_pversion_t *v = dp__pversion_pin(pj->pl, pj->entry);
    if (!v)
        return dp_job_fail(job, true, "%s: plugin '%s' is not loaded", pj->full_type, pj->entry->name);
    const dp_ptype_t *t = dp__pversion_find_type(v, pj->type);
    if (!t) {
        dp__pversion_unpin(pj->pl, v);
        return dp_job_fail(job, true, "%s: plugin '%s' %s has no job type '%s'", pj->full_type, pj->entry->name,
                           v->version, pj->type);
    }
    dp_job_set_version(job, v->version);
    void *state = NULL;
    if (pj->isolation == DP_ISOLATION_PROCESS) {
        char *msg = NULL;
        bool perm = false;
        if (isolate_start(pj, v, job, dp_job_name(job), &pj->iso, &msg, &perm) != 0) {
            dp_outcome_t o = dp_job_fail(job, perm, "%s: %s", pj->full_type,
                                         msg ? msg : "create failed without a message");
            free(msg);
            dp__pversion_unpin(pj->pl, v);
            return o;
        }
    } else if (t->ops.create && !(pj->checked_gen == v->generation && stateless(t))) {
        dp_plugin_ctx ctx = {.pl = pj->pl, .ver = v, .job = job, .job_name = dp_job_name(job)};
        dp__params_clear_error(pj->params);
        if (t->ops.create(&ctx, pj->params, &state) != 0) {
            bool perm;
            const char *msg = dp__plugin_ctx_error(&ctx, pj->params, &perm);
            dp_outcome_t o = dp_job_fail(job, perm, "%s: %s", pj->full_type,
                                         msg ? msg : "create failed without a message");
            free(ctx.error);
            dp__pversion_unpin(pj->pl, v);
            return o;
        }
        free(ctx.error);
        note_checked(pj, v, t, state);
    }
    pj->ver = v;
    pj->t = t;
    pj->state = state;
    pj->attempt = dp_job_attempt(job);
    pj->live = true;
    return DP_READY;
}

typedef dp_plugin_result (*plugin_call_fn)(dp_plugin_ctx *ctx, void *state);

static dp_outcome_t instance_call(pjob_t *pj, dp_job_t *job, plugin_call_fn fn, const char *what)
{
    if (!fn)
        return dp_job_fail(job, true, "%s: plugin '%s' %s has no %s for this type", pj->full_type, pj->entry->name,
                           pj->ver->version, what);
    dp_plugin_ctx ctx = {.pl = pj->pl, .ver = pj->ver, .job = job, .job_name = dp_job_name(job)};
    dp__params_clear_error(pj->params);
    dp_plugin_result r;
    if (pj->iso) {
        char *m = NULL;
        unsigned fl = 0;
        r = dp__isolate_call(pj->iso, job, strcmp(what, "check") == 0, &m, &fl);
        if (m)
            dp__plugin_ctx_set_error(&ctx, fl, m);
    } else {
        r = fn(&ctx, pj->state);
    }
    dp_outcome_t o;
    switch (r) {
    case DP_PLUGIN_READY: o = DP_READY; break;
    case DP_PLUGIN_NOT_READY: o = DP_NOT_READY; break;
    case DP_PLUGIN_ERROR: {
        bool perm;
        const char *msg = dp__plugin_ctx_error(&ctx, pj->params, &perm);
        o = msg ? dp_job_fail(job, perm, "%s", msg)
                : dp_job_fail(job, false, "%s: %s failed without a message", pj->full_type, what);
        break;
    }
    default:
        o = dp_job_fail(job, true, "%s: %s returned %d, which is not a dp_plugin_result", pj->full_type, what, (int)r);
        break;
    }
    free(ctx.error);
    return o;
}

static dp_outcome_t pjob_run(dp_job_t *job, void *user)
{
    pjob_t *pj = user;
    /* run opens every attempt; an instance still live here means the engine
     * did not call attempt_end: end it now rather than leak it. */
    instance_end(pj, NULL);
    dp_outcome_t o = instance_start(pj, job);
    if (o != DP_READY)
        return o;
    return instance_call(pj, job, pj->t->ops.run, "run");
}

static dp_outcome_t pjob_check(dp_job_t *job, void *user)
{
    pjob_t *pj = user;
    if (pj->live && pj->attempt != dp_job_attempt(job))
        instance_end(pj, NULL);
    if (!pj->live) {
        dp_outcome_t o = instance_start(pj, job);
        if (o != DP_READY)
            return o;
    }
    return instance_call(pj, job, pj->t->ops.check, "check");
}

static void pjob_attempt_end(dp_job_t *job, void *user)
{
    instance_end(user, job);
}

static void pjob_free(void *user)
{
    pjob_t *pj = user;
    if (!pj)
        return;
    instance_end(pj, NULL);
    if (pj->counted)
        unnote_used(pj);
    if (!pj->params_lent)
        dp_params_free(pj->params);
    dp_plugins_t *pl = pj->pl;
    free(pj);
    dp__plugins_unref(pl);
}

static void list_types(const dp_pversion_t *v, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < v->ntypes && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", v->types[i].name);
}

/* The checks of a job's spec that need no plugin. */
static int precheck(const dp_job_spec_t *spec, const char *jname, const char *type, const char **dot, char *err,
                    size_t errlen)
{
    *dot = strchr(type, '.');
    if (!*dot || *dot == type || !(*dot)[1])
        return dp__seterr(err, errlen, DP_EINVAL,
                          "job '%s': type '%s' is not of the form PLUGIN.TYPE; fix: name the plugin "
                          "and its job type, e.g. core.sleep or shell.command",
                          jname, type);
    if (spec->isolation != DP_ISOLATION_NONE && spec->isolation != DP_ISOLATION_PROCESS)
        return dp__seterr(err, errlen, DP_EINVAL,
                          "job '%s': isolation %d is not a dp_isolation_t; fix: use "
                          "DP_ISOLATION_NONE or DP_ISOLATION_PROCESS",
                          jname, (int)spec->isolation);
    if (spec->isolation != DP_ISOLATION_PROCESS &&
        (spec->limits.cpu_ms || spec->limits.memory_bytes || spec->limits.open_files))
        return dp__seterr(err, errlen, DP_EINVAL,
                          "job '%s': limits apply only to a job isolated in its own process; fix: "
                          "set isolation = \"process\" (DP_ISOLATION_PROCESS), or drop the limits",
                          jname);
    return DP_OK;
}

/* A job type resolved for adding jobs: its plugin loaded, the current
 * version pinned, the type found, its names interned. On success the caller
 * holds load_lock (so that no reload swaps versions until it is released)
 * and a pin on *v. */
typedef struct resolved {
    dp_pentry_t *e;
    dp_pversion_t *v;
    const dp_ptype_t *t;
    const char *itype, *ifull; /* interned TYPE and PLUGIN.TYPE */
} resolved_t;

static int resolve_type(dp_plugins_t *pl, const char *jname, const char *type, const char *dot, resolved_t *r,
                        char *err, size_t errlen)
{
    char *plugin = strndup(type, (size_t)(dot - type));
    if (!plugin)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    char lerr[2048];
    int rc = dp_plugins_load(pl, plugin, NULL, lerr, sizeof(lerr));
    if (rc != DP_OK) {
        dp__seterr(err, errlen, rc, "job '%s' (type '%s'): %s", jname, type, lerr);
        free(plugin);
        return rc;
    }
    pthread_mutex_lock(&pl->load_lock);
    pthread_mutex_lock(&pl->lock);
    r->e = dp__plugins_find_entry_locked(pl, plugin);
    pthread_mutex_unlock(&pl->lock);
    free(plugin);
    r->v = dp__pversion_pin(pl, r->e);
    r->t = r->v ? dp__pversion_find_type(r->v, dot + 1) : NULL;
    if (!r->t) {
        char types[1024] = "";
        if (r->v)
            list_types(r->v, types, sizeof(types));
        dp__seterr(err, errlen, DP_ENOTFOUND,
                   "job '%s' (type '%s'): plugin '%s' has no job type '%s' (it has: %s); fix: use "
                   "one of its types, or another plugin",
                   jname, type, r->e->name, dot + 1, types);
        if (r->v)
            dp__pversion_unpin(pl, r->v);
        pthread_mutex_unlock(&pl->load_lock);
        return DP_ENOTFOUND;
    }
    pthread_mutex_lock(&pl->lock);
    r->itype = dp__plugins_intern_locked(pl, dot + 1);
    r->ifull = dp__plugins_intern_locked(pl, type);
    pthread_mutex_unlock(&pl->lock);
    if (!r->itype || !r->ifull) {
        dp__pversion_unpin(pl, r->v);
        pthread_mutex_unlock(&pl->load_lock);
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    return DP_OK;
}

/* A new adapter for one job of resolved type r, with params copied, or lent
 * when lend. NULL when out of memory (having given back, when counted, what
 * the caller counted). */
static pjob_t *pjob_new(dp_plugins_t *pl, const dp_job_spec_t *spec, const resolved_t *r, const dp_params_t *params,
                        bool lend, bool counted)
{
    const dp_ptype_t *t = r->t;
    pjob_t *pj = calloc(1, sizeof(*pj));
    if (pj) {
        pj->pl = pl;
        pj->entry = r->e;
        pj->type = r->itype;
        pj->full_type = r->ifull;
        pj->isolation = spec->isolation;
        pj->limits = spec->limits;
        pj->has_run = t->ops.run != NULL;
        pj->has_check = t->ops.check != NULL;
        pj->counted = counted;
        pj->params_lent = lend && params;
        /* A lent params object is only read through const getters, but
         * their diagnostics are recorded in it: one per job, as a copy. */
        pj->params = lend && params ? (dp_params_t *)(uintptr_t)params
                     : params       ? dp_params_clone(params)
                                    : dp_params_new();
    }
    if (!pj || !pj->params) {
        if (pj && counted) {
            pj->params_lent = true; /* nothing to free */
            pjob_free(pj);          /* gives back the count and the reference */
        } else {
            free(pj);
        }
        return NULL;
    }
    return pj;
}

/* Frees a job the graph never took: a counted one gives back its count
 * and its reference. */
static void pjob_discard(pjob_t *pj)
{
    if (pj->counted) {
        pjob_free(pj);
        return;
    }
    if (!pj->params_lent)
        dp_params_free(pj->params);
    free(pj);
}

/* The children that check the params of isolated jobs while a batch adds
 * them: one per plugin version and limits, kept for the batch's life, so
 * that a workflow's isolated jobs cost a few processes at build time, not
 * one each. A version is named by its entry and generation (unique among
 * an entry's published versions; a pointer could be reused). */
#define BATCH_CHECKERS 4

typedef struct checker {
    dp_pentry_t *e; /* NULL: a free slot */
    unsigned generation;
    dp_limits_t limits;
    dp_isolate_t *iso;
    /* What iso_log reads (the registry, the plugin's entry), for the log
     * lines of this child: it outlives the jobs it checks, and a job
     * refused here is freed at once. */
    pjob_t log_as;
} checker_t;

typedef struct checkers {
    checker_t v[BATCH_CHECKERS];
    unsigned next; /* the slot to reuse when all are taken */
} checkers_t;

static void checker_end(checker_t *c)
{
    dp__isolate_end(c->iso, NULL, DP_ISO_END_QUIET);
    memset(c, 0, sizeof *c);
}

static bool same_limits(const dp_limits_t *a, const dp_limits_t *b)
{
    return a->cpu_ms == b->cpu_ms && a->memory_bytes == b->memory_bytes && a->open_files == b->open_files;
}

/* Checks pj's params in a checker of cs for version v: 0, or -1 with *msg
 * (malloc'd). */
static int check_in_checker(checkers_t *cs, pjob_t *pj, dp_pversion_t *v, const char *jname, char **msg)
{
    dp_isolate_spec_t spec = isolate_spec(pj, v, jname);
    checker_t *c = NULL;
    for (unsigned i = 0; i < BATCH_CHECKERS && !c; i++)
        if (cs->v[i].e == pj->entry && cs->v[i].generation == v->generation &&
            same_limits(&cs->v[i].limits, &pj->limits))
            c = &cs->v[i];
    if (!c) {
        for (unsigned i = 0; i < BATCH_CHECKERS && !c; i++)
            if (!cs->v[i].e)
                c = &cs->v[i];
        if (!c) {
            c = &cs->v[cs->next];
            cs->next = (cs->next + 1) % BATCH_CHECKERS;
            checker_end(c);
        }
        c->log_as.pl = pj->pl;
        c->log_as.entry = pj->entry;
        spec.log_user = &c->log_as;
        if (dp__isolate_checker_start(&spec, &c->iso, msg) != 0)
            return -1;
        c->e = pj->entry;
        c->generation = v->generation;
        c->limits = pj->limits;
    }
    spec.log_user = &c->log_as;
    int rc = dp__isolate_check(c->iso, &spec, msg);
    if (rc != 0 && dp__isolate_dead(c->iso))
        checker_end(c); /* crashed on this job: the next job gets a new one */
    return rc;
}

/* Checks pj's params on the version r pinned, as an attempt would: creates
 * the instance and destroys it at once. An isolated job's check runs in a
 * child: one of cs if given, else its own. A type without create has
 * nothing to check (its plugin's init ran in the host when it loaded). */
static int check_params(pjob_t *pj, const resolved_t *r, const char *jname, const char *type, bool lend, checkers_t *cs,
                        char *err, size_t errlen)
{
    const dp_ptype_t *t = r->t;
    if (pj->isolation == DP_ISOLATION_PROCESS && t->ops.create && cs) {
        char *msg = NULL;
        if (check_in_checker(cs, pj, r->v, jname, &msg) != 0) {
            int rc = dp__seterr(err, errlen, DP_EINVAL, "job '%s' (type '%s'): %s", jname, type,
                                msg ? msg : "params refused (the plugin gave no message)");
            free(msg);
            return rc;
        }
    } else if (pj->isolation == DP_ISOLATION_PROCESS && t->ops.create) {
        /* In a child too: a create that crashes must not take the host. */
        dp_isolate_t *iso = NULL;
        char *msg = NULL;
        bool perm;
        if (isolate_start(pj, r->v, NULL, jname, &iso, &msg, &perm) != 0) {
            int rc = dp__seterr(err, errlen, DP_EINVAL, "job '%s' (type '%s'): %s", jname, type,
                                msg ? msg : "params refused (the plugin gave no message)");
            free(msg);
            return rc;
        }
        dp__isolate_end(iso, NULL, DP_ISO_END_QUIET);
    } else if (pj->isolation != DP_ISOLATION_PROCESS && t->ops.create) {
        dp_plugin_ctx ctx = {.pl = pj->pl, .ver = r->v, .job = NULL, .job_name = jname};
        void *state = NULL;
        if (lend)
            dp__params_clear_error(pj->params);
        if (t->ops.create(&ctx, pj->params, &state) != 0) {
            bool perm;
            const char *msg = dp__plugin_ctx_error(&ctx, pj->params, &perm);
            int rc = dp__seterr(err, errlen, DP_EINVAL, "job '%s' (type '%s'): %s", jname, type,
                                msg ? msg : "params refused (the plugin gave no message)");
            free(ctx.error);
            return rc;
        }
        free(ctx.error);
        note_checked(pj, r->v, t, state);
        if (t->ops.destroy)
            t->ops.destroy(state);
    }
    return DP_OK;
}

/* Adds one job of resolved type r (caller holds load_lock and a pin on
 * r->v). params are copied, or lent when lend. counted: the caller already
 * counted this job in its type's uses and in the registry's references (a
 * job refused here gives both back). */
static int add_resolved(dp_plugins_t *pl, dp_graph_t *g, const dp_job_spec_t *spec, const char *jname, const char *type,
                        const resolved_t *r, const dp_params_t *params, bool lend, bool counted, checkers_t *cs,
                        char *err, size_t errlen)
{
    pjob_t *pj = pjob_new(pl, spec, r, params, lend, counted);
    if (!pj)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");

    /* Check the params now, on this version: a bad param is refused before
     * anything runs. */
    int rc = check_params(pj, r, jname, type, lend, cs, err, errlen);
    if (rc != DP_OK) {
        pjob_discard(pj);
        return rc;
    }
    if (!counted) {
        pthread_mutex_lock(&pl->lock);
        rc = dp__pentry_note_used_locked(r->e, pj->type, 1, pj->has_run, pj->has_check);
        if (rc == DP_OK)
            pl->refs++;
        pthread_mutex_unlock(&pl->lock);
        if (rc != DP_OK) {
            pjob_discard(pj);
            return dp__seterr(err, errlen, rc, "out of memory");
        }
        pj->counted = true;
    }

    dp_job_spec_t s = *spec;
    s.run = pj->has_run ? pjob_run : NULL;
    s.check = pj->has_check ? pjob_check : NULL;
    s.user = pj;
    s.user_free = pjob_free;
    s.plugin = r->e->name;
    s.attempt_end = pjob_attempt_end;
    rc = dp_graph_add_job(g, &s, err, errlen);
    if (rc != DP_OK) {
        /* The graph did not take the job (nor call user_free). */
        pjob_free(pj);
        return rc;
    }
    return DP_OK;
}

int(dp_plugins_add_job)(dp_plugins_t *pl, dp_graph_t *g, const dp_job_spec_t *spec, const char *type,
                        const dp_params_t *params, char *err, size_t errlen)
{
    return dp_plugins_add_job_sized(pl, g, spec, DP__JOB_SPEC_SIZE_1_0, type, params, err, errlen);
}

int dp_plugins_add_job_sized(dp_plugins_t *pl, dp_graph_t *g, const dp_job_spec_t *spec, size_t size, const char *type,
                             const dp_params_t *params, char *err, size_t errlen)
{
    if (!pl || !g || !spec || !type)
        return dp__seterr(err, errlen, DP_EINVAL, "dp_plugins_add_job: missing argument");
    dp_job_spec_t full;
    spec = dp__job_spec_widen(spec, size, &full);
    const char *jname = spec->name ? spec->name : "(unnamed)";
    const char *dot;
    int rc = precheck(spec, jname, type, &dot, err, errlen);
    if (rc != DP_OK)
        return rc;
    resolved_t r;
    if ((rc = resolve_type(pl, jname, type, dot, &r, err, errlen)) != DP_OK)
        return rc;
    rc = add_resolved(pl, g, spec, jname, type, &r, params, false, false, NULL, err, errlen);
    dp__pversion_unpin(pl, r.v);
    pthread_mutex_unlock(&pl->load_lock);
    return rc;
}

/* ---- adding many jobs ---------------------------------------------------- */

/* Jobs counted ahead (type uses and references) per take of lock. */
#define BATCH_COUNT 4096

struct dp__plugin_batch {
    dp_plugins_t *pl;
    char *type;     /* the resolved type as the caller wrote it; NULL: none */
    resolved_t r;   /* valid while type: load_lock held, r.v pinned */
    unsigned ahead; /* jobs counted but not added yet */
    checkers_t checkers;
};

dp__plugin_batch_t *dp__plugins_batch_new(dp_plugins_t *pl)
{
    dp__plugin_batch_t *b = pl ? calloc(1, sizeof(*b)) : NULL;
    if (b)
        b->pl = pl;
    return b;
}

/* Gives back what was counted ahead, the pin and load_lock. */
static void batch_release(dp__plugin_batch_t *b)
{
    if (!b->type)
        return;
    dp_plugins_t *pl = b->pl;
    if (b->ahead) {
        pthread_mutex_lock(&pl->lock);
        dp__pentry_unnote_used_locked(b->r.e, b->r.itype, b->ahead, b->r.t->ops.run != NULL, b->r.t->ops.check != NULL);
        pl->refs -= b->ahead; /* the owner's reference remains */
        pthread_mutex_unlock(&pl->lock);
        b->ahead = 0;
    }
    dp__pversion_unpin(pl, b->r.v);
    pthread_mutex_unlock(&pl->load_lock);
    free(b->type);
    b->type = NULL;
}

void dp__plugins_batch_free(dp__plugin_batch_t *b)
{
    if (!b)
        return;
    batch_release(b);
    for (unsigned i = 0; i < BATCH_CHECKERS; i++)
        if (b->checkers.v[i].e)
            checker_end(&b->checkers.v[i]);
    free(b);
}

int dp__plugins_batch_add(dp__plugin_batch_t *b, dp_graph_t *g, const dp_job_spec_t *spec, const char *type,
                          dp_params_t *params, char *err, size_t errlen)
{
    if (!b || !g || !spec || !type)
        return dp__seterr(err, errlen, DP_EINVAL, "dp_plugins_add_job: missing argument");
    dp_plugins_t *pl = b->pl;
    const char *jname = spec->name ? spec->name : "(unnamed)";
    const char *dot;
    int rc = precheck(spec, jname, type, &dot, err, errlen);
    if (rc != DP_OK)
        return rc;
    if (!b->type || strcmp(b->type, type) != 0) {
        batch_release(b);
        if (!(b->type = strdup(type)))
            return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
        if ((rc = resolve_type(pl, jname, type, dot, &b->r, err, errlen)) != DP_OK) {
            free(b->type);
            b->type = NULL;
            return rc;
        }
    }
    if (!b->ahead) {
        pthread_mutex_lock(&pl->lock);
        rc = dp__pentry_note_used_locked(b->r.e, b->r.itype, BATCH_COUNT, b->r.t->ops.run != NULL,
                                         b->r.t->ops.check != NULL);
        if (rc == DP_OK) {
            pl->refs += BATCH_COUNT;
            b->ahead = BATCH_COUNT;
        }
        pthread_mutex_unlock(&pl->lock);
        if (rc != DP_OK)
            return dp__seterr(err, errlen, rc, "out of memory");
    }
    b->ahead--;
    return add_resolved(pl, g, spec, jname, type, &b->r, params, true, true, &b->checkers, err, errlen);
}

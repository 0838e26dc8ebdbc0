/*
 * slurm.c - the `slurm` plugin: `slurm.batch` runs a job on a Slurm cluster.
 *
 * run submits the job with `sbatch --parsable` and keeps its Slurm job id in
 * the host's store; check reads its state from the status cache (status.c:
 * one squeue for every job the plugin follows, then sacct once a job has
 * left squeue, and scontrol for a failure's exit code). Built against
 * <daggerpool/plugin.h> only, as a third party's plugin would be.
 *
 * Lifecycle of one daggerpool job (see plugin.h): create checks the params;
 * each attempt is create, run, zero or more checks, destroy.
 *
 *   run    Looks in the store first. A Slurm job submitted earlier for this
 *          daggerpool job (an earlier run of a `watch`, or an earlier attempt)
 *          that is still pending or running, or that completed, is adopted:
 *          nothing is submitted. A failed one whose failure was not yet
 *          reported is adopted too, so that check reports it; one whose
 *          failure was reported (or that this plugin cancelled) is submitted
 *          again. Returns ready once a Slurm job is known: check decides.
 *          Adopting asks for a look that began after run did (shared with
 *          every job adopted at the same time); when that look fails the
 *          job is adopted all the same and check looks again.
 *   check  PENDING, CONFIGURING, RUNNING, COMPLETING (and the other live
 *          states: SUSPENDED, REQUEUED, ...) are not ready; COMPLETED is
 *          ready; FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, CANCELLED,
 *          BOOT_FAIL, DEADLINE, PREEMPTED (and any other end state) are an
 *          error naming the state, the reason and the exit code. The state
 *          comes from a look that began after the previous check ended
 *          (the first check after sbatch: PENDING, from the submission).
 *   cancel A call that sees its context end (cancellation, the job's or the
 *          workflow's timeout) while the Slurm job is live scancels it. The
 *          engine may also end an attempt between two readiness probes,
 *          where no plugin call is running; `end` (ABI 1.1) is then told
 *          whether the attempt was cut short and scancels a live job if
 *          so. An attempt that ended on its own with the job not ready (the
 *          reconcile model: a probe said "not ready", a later run looks
 *          again; or the readiness wait gave up) leaves it running.
 *          Cancellations at the same moment share scancel calls (cancel.c).
 *
 * Clients are started by client.c: posix_spawn in their own process group,
 * the default signal mask and dispositions, stdin from /dev/null, stdout and
 * stderr read through pipes with poll(2) together with the host's
 * cancellation fd; every child is reaped before the call returns.
 *
 * Thread safety: each attempt's data lives in its state. The globals here
 * are the host table (set once by the entry point) and the short list of
 * Slurm jobs that destroy cancelled (under its own mutex); status.c and
 * cancel.c keep theirs under their own locks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <daggerpool/plugin.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "client.h"
#include "status.h"

extern char **environ;

#define SLURM_PLUGIN_VERSION "1.0.0"
#define STORE_PREFIX "slurm.batch/"
#define SUBMIT_CAP_MS 60000 /* sbatch */
#define ID_MAX SLURM_ID_MAX
/* How old a state the first check of an attempt may take (see batch_check). */
#define FIRST_LOOK_NS 1000000000ull
/* Looks in a row that may fail before a check reports the error. */
#define LOOK_TRIES 3u

static const dp_host_api *host;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* printf into a new malloc'd string; NULL when out of memory. */
static char *xasprintf(const char *fmt, ...) DP_PLUGIN_PRINTF(1, 2);
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* ------------------------------------------------------------------------ */
/* The job's state                                                           */
/* ------------------------------------------------------------------------ */

typedef struct env_var {
    char *entry; /* "KEY=value" */
} env_var;

typedef struct slurm_job {
    /* From the params (strings owned by the host, valid while the job is). */
    const dp_params *params;
    const char *wrap, *script, *partition, *output, *error;
    char *job_name;   /* owned; default: the daggerpool job's name */
    char *store_key;  /* owned: STORE_PREFIX + daggerpool job name */
    char *time_limit; /* owned: "D-HH:MM:SS", or NULL */
    char *memory;     /* owned: "4G", "500" (MB) ..., or NULL */
    char *nodes;      /* owned: "2", "1-3", or NULL */
    int64_t cpus;     /* 0: not set */
    size_t n_args;    /* sbatch_args */
    env_var *env;     /* owned */
    size_t n_env;

    /* This attempt. */
    char id[ID_MAX];        /* the Slurm job id this attempt follows; "" if none */
    int live;               /* last seen pending or running */
    int settled;            /* the job ended (ready or reported failure): nothing to cancel */
    int ended;              /* end was called: it decided what happens to the job */
    int followed;           /* id is followed by the status cache (status.c) */
    uint64_t last_check_ns; /* when the previous check ended (0: none yet) */
    unsigned failed_looks;  /* looks in a row that could not read the state */
} slurm_job;

/* The status cache follows the Slurm job this attempt follows (known: its
 * state as just learnt, or NULL). 0, or -1 with the error set. */
static int follow(dp_plugin_ctx *ctx, slurm_job *j, const char *id, const char *known)
{
    if (j->followed)
        slurm__status_unfollow(j->id);
    j->followed = 0;
    snprintf(j->id, sizeof j->id, "%s", id);
    if (slurm__status_follow(id, known) != 0) {
        host->set_error(ctx, 0, "out of memory");
        return -1;
    }
    j->followed = 1;
    return 0;
}

static void unfollow(slurm_job *j)
{
    if (j->followed)
        slurm__status_unfollow(j->id);
    j->followed = 0;
}

static void free_job(slurm_job *j)
{
    if (!j)
        return;
    unfollow(j);
    free(j->job_name);
    free(j->store_key);
    free(j->time_limit);
    free(j->memory);
    free(j->nodes);
    for (size_t i = 0; i < j->n_env; i++)
        free(j->env[i].entry);
    free(j->env);
    free(j);
}

/* ------------------------------------------------------------------------ */
/* The store: "ID" while the Slurm job is ours to follow, "ID done" once    */
/* its failure was reported or this plugin cancelled it (the next run then  */
/* submits again).                                                           */
/* ------------------------------------------------------------------------ */

typedef struct stored {
    char id[ID_MAX];
    int done;
} stored;

static int store_load(dp_plugin_ctx *ctx, const slurm_job *j, stored *s)
{
    char buf[ID_MAX + 16];
    size_t len = 0;
    memset(s, 0, sizeof *s);
    if (host->store_get(ctx, j->store_key, buf, sizeof buf - 1, &len) != 0)
        return 0;
    if (len >= sizeof buf)
        return 0; /* not ours: ignore */
    buf[len] = '\0';
    char *sp = strchr(buf, ' ');
    if (sp) {
        *sp = '\0';
        s->done = strcmp(sp + 1, "done") == 0;
    }
    size_t n = strlen(buf);
    if (!n || n >= sizeof s->id)
        return 0;
    memcpy(s->id, buf, n + 1);
    return 1;
}

static void store_save(dp_plugin_ctx *ctx, const slurm_job *j, const char *id, int done)
{
    char buf[ID_MAX + 16];
    int n = snprintf(buf, sizeof buf, "%s%s", id, done ? " done" : "");
    if (host->store_set(ctx, j->store_key, buf, (size_t)n) != 0)
        host->log(ctx, DP_PLUGIN_LOG_WARN, "could not keep Slurm job id %s in the store: a re-run may submit again",
                  id);
}

/* Slurm jobs that destroy cancelled. destroy has no ctx, so it cannot write
 * "done" into the store; the next run looks here instead, so that a job we
 * cancelled ourselves is submitted again rather than reported as CANCELLED.
 * A ring: only the latest few matter (one per job cut short). Lost with a
 * hot swap, which only means one CANCELLED report too many. */
#define CANCELLED_RING 64
static pthread_mutex_t cancelled_mu = PTHREAD_MUTEX_INITIALIZER;
static char cancelled_ids[CANCELLED_RING][ID_MAX];
static unsigned cancelled_next;

static void remember_cancelled(const char *id)
{
    pthread_mutex_lock(&cancelled_mu);
    snprintf(cancelled_ids[cancelled_next % CANCELLED_RING], ID_MAX, "%s", id);
    cancelled_next++;
    pthread_mutex_unlock(&cancelled_mu);
}

/* 1 if destroy cancelled id (and forgets it). */
static int take_cancelled(const char *id)
{
    int found = 0;
    pthread_mutex_lock(&cancelled_mu);
    for (unsigned i = 0; i < CANCELLED_RING && !found; i++)
        if (strcmp(cancelled_ids[i], id) == 0) {
            cancelled_ids[i][0] = '\0';
            found = 1;
        }
    pthread_mutex_unlock(&cancelled_mu);
    return found;
}

/* "FAILED (reason NonZeroExitCode, exit code 3)" and friends, into buf. */
static const char *describe(const slurm_job_info *info, char *buf, size_t cap)
{
    char ec[64] = "";
    int code = 0, sig = 0;
    if (info->exit_code[0] && sscanf(info->exit_code, "%d:%d", &code, &sig) == 2) {
        if (sig)
            snprintf(ec, sizeof ec, "killed by signal %d", sig);
        else
            snprintf(ec, sizeof ec, "exit code %d", code);
    } else if (info->exit_code[0]) {
        snprintf(ec, sizeof ec, "exit code %s", info->exit_code);
    }
    if (info->reason[0] && ec[0])
        snprintf(buf, cap, "%s (reason %s, %s)", info->state, info->reason, ec);
    else if (info->reason[0])
        snprintf(buf, cap, "%s (reason %s)", info->state, info->reason);
    else if (ec[0])
        snprintf(buf, cap, "%s (%s)", info->state, ec);
    else
        snprintf(buf, cap, "%s", info->state);
    return buf;
}

/* scancel id; ctx may be NULL. Logs, never fails the call. Many calls at
 * once share one scancel (cancel.c). */
static void cancel_slurm_job(dp_plugin_ctx *ctx, const char *id, const char *why)
{
    slurm__cancel(ctx, id, why);
}

/* ------------------------------------------------------------------------ */
/* create                                                                    */
/* ------------------------------------------------------------------------ */

static const char *const known_params[] = {"wrap",   "script",      "partition", "time_limit", "cpus",
                                           "memory", "nodes",       "job_name",  "output",     "error",
                                           "env",    "sbatch_args", NULL};

/* A whole number above 0 at *s (at most 10^9), or 0 when there is none;
 * *s moves past its digits. */
static unsigned long count_at(const char **s)
{
    unsigned long v = 0;
    const char *p = *s;
    while (*p >= '0' && *p <= '9' && v <= 1000000000ul)
        v = v * 10 + (unsigned long)(*p++ - '0');
    if (p == *s || v > 1000000000ul)
        return 0;
    *s = p;
    return v;
}

/* sbatch --mem: a whole number, megabytes or with a unit K, M, G or T. */
static bool valid_memory(const char *s)
{
    if (!count_at(&s))
        return false;
    if (*s && strchr("KMGTkmgt", *s))
        s++;
    return !*s;
}

/* sbatch --nodes: counts N, ranges N-M (N <= M) with an optional :STEP,
 * separated by commas. */
static bool valid_nodes(const char *s)
{
    for (;;) {
        unsigned long lo = count_at(&s), hi;
        if (!lo)
            return false;
        if (*s == '-') {
            s++;
            if (!(hi = count_at(&s)) || hi < lo)
                return false;
            if (*s == ':') {
                s++;
                if (!count_at(&s))
                    return false;
            }
        }
        if (!*s)
            return true;
        if (*s++ != ',')
            return false;
    }
}

/* A param that is a string (valid for sbatch) or a positive integer, as
 * text (owned). */
static int string_or_int(dp_plugin_ctx *ctx, const dp_params *p, const char *key, const char *what,
                         bool (*valid)(const char *), char **out)
{
    const char *s;
    int64_t v;
    *out = NULL;
    if (host->param_string(p, key, &s) == DP_PARAM_OK) {
        if (!valid(s)) {
            host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param '%s': expected %s, found \"%s\"", key, what, s);
            return -1;
        }
        *out = xstrdup(s);
    } else {
        int rc = host->param_int(p, key, &v);
        if (rc == DP_PARAM_ABSENT)
            return 0;
        if (rc != DP_PARAM_OK) {
            host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param '%s': expected %s (a string or an integer)", key,
                            what);
            return -1;
        }
        if (v <= 0) {
            host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param '%s': expected %s, found %" PRId64, key, what, v);
            return -1;
        }
        *out = xasprintf("%" PRId64, v);
    }
    if (!*out) {
        host->set_error(ctx, 0, "out of memory");
        return -1;
    }
    return 0;
}

/* An optional string param; -1 (error set) when it has another type or is empty. */
static int opt_string(dp_plugin_ctx *ctx, const dp_params *p, const char *key, const char **out)
{
    *out = NULL;
    int rc = host->param_string(p, key, out);
    if (rc == DP_PARAM_ABSENT)
        return 0;
    if (rc != DP_PARAM_OK) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param '%s': expected a string", key);
        return -1;
    }
    if (!(*out)[0]) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param '%s' is empty", key);
        return -1;
    }
    return 0;
}

static int env_key_ok(const char *k)
{
    if (!k[0] || !(isalpha((unsigned char)k[0]) || k[0] == '_'))
        return 0;
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '_'))
            return 0;
    return 1;
}

static int batch_create(dp_plugin_ctx *ctx, const dp_params *p, void **statep)
{
    *statep = NULL;
    if (host->params_check_known(ctx, p, known_params) != 0)
        return -1;
    slurm_job *j = calloc(1, sizeof *j);
    if (!j) {
        host->set_error(ctx, 0, "out of memory");
        return -1;
    }
    j->params = p;
    const char *name = host->job_name(ctx);

    if (opt_string(ctx, p, "wrap", &j->wrap) || opt_string(ctx, p, "script", &j->script) ||
        opt_string(ctx, p, "partition", &j->partition) || opt_string(ctx, p, "output", &j->output) ||
        opt_string(ctx, p, "error", &j->error))
        goto fail;
    if (!j->wrap && !j->script) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT,
                        "slurm.batch needs 'wrap' (a command) or 'script' (a batch script's "
                        "path); neither is set");
        goto fail;
    }
    if (j->wrap && j->script) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "slurm.batch takes 'wrap' or 'script', not both: keep one");
        goto fail;
    }
    if (j->script && access(j->script, R_OK) != 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT,
                        "param 'script': cannot read \"%s\": %s (a relative path is taken "
                        "from daggerpool's working directory)",
                        j->script, strerror(errno));
        goto fail;
    }

    const char *jn = NULL;
    if (opt_string(ctx, p, "job_name", &jn))
        goto fail;
    j->job_name = xstrdup(jn ? jn : name);
    j->store_key = xasprintf(STORE_PREFIX "%s", name);
    if (!j->job_name || !j->store_key) {
        host->set_error(ctx, 0, "out of memory");
        goto fail;
    }

    uint64_t tl;
    int rc = host->param_duration_ms(p, "time_limit", &tl);
    if (rc < 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT,
                        "param 'time_limit': expected a duration such as \"30m\" or \"2h\", "
                        "or an integer of milliseconds");
        goto fail;
    }
    if (rc == DP_PARAM_OK) {
        if (tl == 0) {
            host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param 'time_limit' must be more than 0");
            goto fail;
        }
        uint64_t s = (tl + 999) / 1000;
        j->time_limit = xasprintf("%" PRIu64 "-%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 86400, s / 3600 % 24,
                                  s / 60 % 60, s % 60);
    }

    rc = host->param_int(p, "cpus", &j->cpus);
    if (rc < 0 || (rc == DP_PARAM_OK && j->cpus <= 0)) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param 'cpus': expected a positive integer (CPUs per task)");
        goto fail;
    }
    if (string_or_int(ctx, p, "memory", "a memory size such as \"4G\" (a whole number and K, M, G or T) or megabytes",
                      valid_memory, &j->memory) ||
        string_or_int(ctx, p, "nodes", "a node count such as 2 or \"1-4\" (a range low-high)", valid_nodes, &j->nodes))
        goto fail;

    rc = host->param_list_count(p, "sbatch_args", &j->n_args);
    if (rc < 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT,
                        "param 'sbatch_args': expected a list of strings, e.g. "
                        "[ \"--qos=low\", \"--account=lab\" ]");
        goto fail;
    }
    for (size_t i = 0; i < j->n_args; i++) {
        const char *a;
        if (host->param_list_item(p, "sbatch_args", i, &a) != DP_PARAM_OK) {
            host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param 'sbatch_args': item %zu is not a string", i + 1);
            goto fail;
        }
    }

    const dp_params *env = NULL;
    rc = host->param_group(p, "env", &env);
    if (rc < 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param 'env': expected a group such as { GREETING = \"hi\"; }");
        goto fail;
    }
    if (rc == DP_PARAM_OK) {
        size_t n = host->param_count(env);
        j->env = calloc(n ? n : 1, sizeof *j->env);
        if (!j->env) {
            host->set_error(ctx, 0, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            const char *k = host->param_key_at(env, i), *v;
            int64_t iv;
            if (!k || !env_key_ok(k)) {
                host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param 'env': '%s' is not a valid variable name",
                                k ? k : "?");
                goto fail;
            }
            if (host->param_string(env, k, &v) == DP_PARAM_OK)
                j->env[i].entry = xasprintf("%s=%s", k, v);
            else if (host->param_int(env, k, &iv) == DP_PARAM_OK)
                j->env[i].entry = xasprintf("%s=%" PRId64, k, iv);
            else {
                host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param 'env.%s': expected a string or an integer", k);
                goto fail;
            }
            if (!j->env[i].entry) {
                host->set_error(ctx, 0, "out of memory");
                goto fail;
            }
            j->n_env = i + 1;
        }
    }
    *statep = j;
    return 0;

fail:
    free_job(j);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* run                                                                       */
/* ------------------------------------------------------------------------ */

/* sbatch's environment: the host's, with the job's env on top (sbatch
 * passes its environment to the job: --export=ALL is its default). */
static char **build_env(const slurm_job *j)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **e = calloc(n + j->n_env + 1, sizeof *e);
    if (!e)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int overridden = 0;
        for (size_t k = 0; k < j->n_env && !overridden; k++) {
            size_t kl = strcspn(j->env[k].entry, "=") + 1;
            overridden = strncmp(environ[i], j->env[k].entry, kl) == 0;
        }
        if (!overridden)
            e[o++] = environ[i];
    }
    for (size_t k = 0; k < j->n_env; k++)
        e[o++] = j->env[k].entry;
    e[o] = NULL;
    return e;
}

/* Submits the job; on success copies the Slurm job id into j->id. */
static dp_plugin_result submit(dp_plugin_ctx *ctx, slurm_job *j)
{
    enum { FIXED = 16 };
    char **argv = calloc(FIXED + j->n_args + 1, sizeof *argv);
    char **envp = build_env(j);
    slurm_client_out *r = slurm__client_new();
    char *opts[9] = {0};
    dp_plugin_result res = DP_PLUGIN_ERROR;
    if (!argv || !envp || !r) {
        host->set_error(ctx, 0, "out of memory");
        goto out;
    }
    size_t a = 0, o = 0;
    argv[a++] = "sbatch";
    argv[a++] = "--parsable";
    argv[a++] = opts[o++] = xasprintf("--job-name=%s", j->job_name);
    if (j->partition)
        argv[a++] = opts[o++] = xasprintf("--partition=%s", j->partition);
    if (j->time_limit)
        argv[a++] = opts[o++] = xasprintf("--time=%s", j->time_limit);
    if (j->cpus)
        argv[a++] = opts[o++] = xasprintf("--cpus-per-task=%" PRId64, j->cpus);
    if (j->memory)
        argv[a++] = opts[o++] = xasprintf("--mem=%s", j->memory);
    if (j->nodes)
        argv[a++] = opts[o++] = xasprintf("--nodes=%s", j->nodes);
    if (j->output)
        argv[a++] = opts[o++] = xasprintf("--output=%s", j->output);
    if (j->error)
        argv[a++] = opts[o++] = xasprintf("--error=%s", j->error);
    for (size_t i = 0; i < j->n_args; i++) {
        const char *s = NULL;
        host->param_list_item(j->params, "sbatch_args", i, &s);
        argv[a++] = slurm__arg(s);
    }
    if (j->wrap)
        argv[a++] = opts[o++] = xasprintf("--wrap=%s", j->wrap);
    else
        argv[a++] = slurm__arg(j->script);
    argv[a] = NULL;
    for (size_t i = 0; i < a; i++)
        if (!argv[i]) {
            host->set_error(ctx, 0, "out of memory");
            goto out;
        }

    if (slurm__run_client(ctx, argv, envp, SUBMIT_CAP_MS, 1, r) != 0) {
        host->set_error(ctx, 0, "%s", r->spawn_error);
        goto out;
    }
    char msg[900];
    if (!r->exited || r->status != 0) {
        /* sbatch's own words say what is wrong ("invalid partition specified:
         * x"); an invalid request does not get better by retrying. */
        unsigned flags = strstr(r->err, "nvalid") ? DP_PLUGIN_ERROR_PERMANENT : 0;
        host->set_error(ctx, flags, "submitting to Slurm failed: %s",
                        slurm__client_failure("sbatch", r, msg, sizeof msg));
        goto out;
    }
    /* --parsable: "ID" or "ID;cluster". */
    char id[ID_MAX];
    size_t n = strcspn(r->out, ";\n");
    if (n == 0 || n >= sizeof id || strspn(r->out, "0123456789_") < n) {
        host->set_error(ctx, 0, "sbatch printed no job id (stdout \"%.200s\", stderr \"%.200s\")", r->out, r->err);
        goto out;
    }
    memcpy(id, r->out, n);
    id[n] = '\0';
    snprintf(j->id, sizeof j->id, "%s", id);
    j->live = 1;
    store_save(ctx, j, id, 0);
    /* Just submitted: PENDING as of now answers the first check. */
    if (!r->cancelled && follow(ctx, j, id, "PENDING") != 0)
        goto out;
    if (r->cancelled) {
        /* Cancelled while sbatch ran: it was left to finish so the job it
         * submitted is known, and is cancelled now. */
        cancel_slurm_job(ctx, id, "the job was cancelled while it was submitted");
        store_save(ctx, j, id, 1);
        j->live = 0;
        j->settled = 1;
        host->set_error(ctx, 0, "cancelled while submitting; Slurm job %s was cancelled", id);
        goto out;
    }
    host->log(ctx, DP_PLUGIN_LOG_INFO, "submitted Slurm job %s (%s)", id, j->job_name);
    res = DP_PLUGIN_READY;
out:
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        free(opts[i]);
    free(argv);
    free(envp);
    slurm__client_free(r);
    return res;
}

static dp_plugin_result batch_run(dp_plugin_ctx *ctx, void *state)
{
    slurm_job *j = state;
    uint64_t started = slurm__now_ns();
    unfollow(j);
    j->id[0] = '\0';
    j->live = j->settled = j->ended = 0;
    j->last_check_ns = 0;
    j->failed_looks = 0;

    stored s;
    if (store_load(ctx, j, &s) && !s.done && take_cancelled(s.id)) {
        store_save(ctx, j, s.id, 1);
        s.done = 1;
    }
    if (s.id[0] && !s.done) {
        slurm_job_info info;
        int cancelled;
        char msg[900];
        /* A look that began after this run did: the status cache shares
         * it with every other job adopted at the same time. */
        if (follow(ctx, j, s.id, NULL) != 0)
            return DP_PLUGIN_ERROR;
        if (slurm__status_get(ctx, s.id, started, &info, &cancelled, msg, sizeof msg) != 0) {
            if (cancelled) {
                unfollow(j);
                j->id[0] = '\0';
                host->set_error(ctx, 0, "%s", msg);
                return DP_PLUGIN_ERROR;
            }
            /* The look failed (squeue killed or timed out, the controller
             * busy): the job is still ours and may well be live. Failing
             * here would, with fail-fast, cancel every job adopted beside
             * it, and the next run would submit them all again. Adopt it
             * and let check look again (this was the first of LOOK_TRIES
             * failed looks in a row). */
            j->live = 1;
            j->failed_looks = 1;
            host->log(ctx, DP_PLUGIN_LOG_WARN,
                      "%s; adopting Slurm job %s submitted earlier for this job anyway (not submitting again): "
                      "the next check looks again",
                      msg, s.id);
            return DP_PLUGIN_READY;
        }
        if (info.found) {
            slurm_state_class c = slurm__classify(info.state);
            /* A live or completed job is adopted; so is a failed one whose
             * failure nobody has seen yet: check reports it. */
            j->live = c == S_LIVE;
            host->log(ctx, DP_PLUGIN_LOG_INFO,
                      "Slurm job %s submitted earlier for this job is %s: not submitting again", s.id, info.state);
            return DP_PLUGIN_READY;
        }
        host->log(ctx, DP_PLUGIN_LOG_INFO,
                  "Slurm job %s submitted earlier is unknown to squeue and sacct: submitting "
                  "again",
                  s.id);
        unfollow(j);
        j->id[0] = '\0';
    }
    return submit(ctx, j);
}

/* ------------------------------------------------------------------------ */
/* check                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * ABI 1.2: a pending job that Slurm will not start before a known time (it
 * was submitted with --begin: reason BeginTime) is not worth a query every
 * readiness period: squeue's %S gives that time, and the host is told to
 * look again then (retry_after: the next probe, or the requeue hint of a
 * run that stops here). Nothing is suggested on a host without it, for any
 * other state or reason, or when the time is unknown or past.
 */
static void suggest_look_again(dp_plugin_ctx *ctx, const slurm_job *j, const slurm_job_info *info)
{
    if (!DP_HOST_HAS(host, retry_after) || strcmp(info->state, "PENDING") != 0 ||
        strcmp(info->reason, "BeginTime") != 0)
        return;
    /* The start time came with the state, from the look every job shares
     * (status.c: squeue's %S), not from a squeue of this job's own. */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (strptime(info->start, "%Y-%m-%dT%H:%M:%S", &tm)) {
        tm.tm_isdst = -1; /* squeue prints local time */
        time_t at = mktime(&tm), now = time(NULL);
        if (at != (time_t)-1 && at > now) {
            host->log(ctx, DP_PLUGIN_LOG_DEBUG, "Slurm job %s may not start before %s: looking again in %lld s", j->id,
                      info->start, (long long)(at - now));
            host->retry_after(ctx, (uint64_t)(at - now) * 1000u);
        }
    }
}

static dp_plugin_result batch_check(dp_plugin_ctx *ctx, void *state)
{
    slurm_job *j = state;
    dp_plugin_result res = DP_PLUGIN_ERROR;
    if (!j->id[0]) {
        host->set_error(ctx, 0, "no Slurm job to check: run submitted none");
        return DP_PLUGIN_ERROR;
    }
    slurm_job_info info;
    int cancelled;
    char msg[900];
    /* A state seen after the previous check ended: never older than the
     * job's own period, and one squeue for every job of the plugin. The
     * first check takes one at most FIRST_LOOK_NS old: the submission's
     * PENDING when it follows run at once, a new look after an
     * initial_delay. */
    uint64_t now = slurm__now_ns();
    uint64_t not_before = j->last_check_ns ? j->last_check_ns : now > FIRST_LOOK_NS ? now - FIRST_LOOK_NS : 1;
    int got = slurm__status_get(ctx, j->id, not_before, &info, &cancelled, msg, sizeof msg);
    j->last_check_ns = slurm__now_ns();
    if (got != 0 && !cancelled && ++j->failed_looks < LOOK_TRIES) {
        /* squeue can fail under load (killed, timed out, the controller
         * busy): one failed look fails every check that waited for it,
         * and with fail-fast the whole run. Look again next time. */
        host->log(ctx, DP_PLUGIN_LOG_WARN, "%s; looking again at the next check (%u of %u)", msg, j->failed_looks,
                  LOOK_TRIES);
        return DP_PLUGIN_NOT_READY;
    }
    if (got == 0)
        j->failed_looks = 0;
    if (got != 0) {
        if (cancelled && j->live) {
            cancel_slurm_job(ctx, j->id, "the job was cancelled or timed out");
            store_save(ctx, j, j->id, 1);
            j->live = 0;
            j->settled = 1;
            host->set_error(ctx, 0, "cancelled; Slurm job %s was cancelled", j->id);
        } else {
            host->set_error(ctx, 0, "%s", msg);
        }
        goto out;
    }
    if (!info.found) {
        store_save(ctx, j, j->id, 1);
        j->live = 0;
        j->settled = 1;
        host->set_error(ctx, 0,
                        "Slurm job %s is unknown to squeue and sacct (was the cluster "
                        "restarted?); a re-run submits it again",
                        j->id);
        goto out;
    }
    char d[300];
    switch (slurm__classify(info.state)) {
    case S_LIVE:
        j->live = 1;
        host->log(ctx, DP_PLUGIN_LOG_DEBUG, "Slurm job %s is %s", j->id, describe(&info, d, sizeof d));
        suggest_look_again(ctx, j, &info);
        res = DP_PLUGIN_NOT_READY;
        break;
    case S_DONE:
        j->live = 0;
        j->settled = 1;
        host->log(ctx, DP_PLUGIN_LOG_INFO, "Slurm job %s COMPLETED", j->id);
        res = DP_PLUGIN_READY;
        break;
    case S_FAILED:
    case S_UNKNOWN:
        j->live = 0;
        j->settled = 1;
        /* Seen and reported: a retry or a later run submits again. */
        store_save(ctx, j, j->id, 1);
        host->set_error(ctx, 0, "Slurm job %s %s", j->id, describe(&info, d, sizeof d));
        break;
    }
    /* The call's context ended while we looked: treat as cancelled. */
    if (res == DP_PLUGIN_NOT_READY && host->is_cancelled(ctx)) {
        cancel_slurm_job(ctx, j->id, "the job was cancelled or timed out");
        store_save(ctx, j, j->id, 1);
        j->live = 0;
        j->settled = 1;
        host->set_error(ctx, 0, "cancelled; Slurm job %s was cancelled", j->id);
        res = DP_PLUGIN_ERROR;
    }
out:
    return res;
}

/* ------------------------------------------------------------------------ */
/* destroy                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * end (ABI 1.1): the engine ends the attempt and says whether it was cut
 * short (is_cancelled: the run was cancelled or timed out, or the job's own
 * timeout passed). Cut short with the Slurm job still live: scancel it, so
 * nothing is left in the queue, and remember it so the next run submits
 * again instead of reporting CANCELLED. Ended on its own (a probe said "not
 * ready", or the readiness wait gave up): the Slurm job keeps running and a
 * later run adopts it from the store.
 */
static void batch_end(dp_plugin_ctx *ctx, void *state)
{
    slurm_job *j = state;
    if (!j)
        return;
    j->ended = 1;
    if (j->id[0] && j->live && !j->settled && host->is_cancelled(ctx)) {
        cancel_slurm_job(ctx, j->id, "the attempt was cancelled or timed out");
        /* end has a ctx, so the store says it: the ring alone keeps only
         * the last 64, and a fail-fast with 1 000 jobs in flight cuts
         * them all short (the next run would report the rest CANCELLED). */
        store_save(ctx, j, j->id, 1);
        remember_cancelled(j->id);
    }
}

/* destroy frees the attempt. Without an end call before it (the host ended
 * the instance outside an attempt's end, e.g. when the graph is freed) a
 * live Slurm job is cancelled: leaving nothing behind is the safe side. */
static void batch_destroy(void *state)
{
    slurm_job *j = state;
    if (j && !j->ended && j->id[0] && j->live && !j->settled) {
        cancel_slurm_job(NULL, j->id, "the attempt ended before the Slurm job did");
        remember_cancelled(j->id);
    }
    free_job(j); /* unfollows */
}

/* ------------------------------------------------------------------------ */
/* The plugin                                                                */
/* ------------------------------------------------------------------------ */

static const dp_job_type batch_type = {
    .struct_size = sizeof(dp_job_type),
    .name = "batch",
    .description = "submit a batch job to Slurm (sbatch) and wait for it to complete",
    .create = batch_create,
    .run = batch_run,
    .check = batch_check,
    .destroy = batch_destroy,
    .end = batch_end,
};

static const dp_job_type *const job_types[] = {&batch_type, NULL};

/* The last job of this copy has ended (a hot swap, or the host unloads the
 * plugin): free the status cache and the scancel list of this copy. */
static void plugin_fini(void)
{
    slurm__status_fini();
    slurm__cancel_fini();
}

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "slurm",
    .version = SLURM_PLUGIN_VERSION,
    .description = "run jobs on a Slurm cluster through its standard clients",
    .job_types = job_types,
    .fini = plugin_fini,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    if (!h || h->abi_major != DP_PLUGIN_ABI_MAJOR || !DP_HOST_HAS(h, store_delete))
        return NULL;
    host = h;
    slurm__host = h;
    return &desc;
}

/*
 * status.c - one status query per look for every Slurm job this plugin copy
 * follows (status.h).
 *
 * Asking squeue once per job and per probe is what Slurm's documentation
 * asks client tools not to do: 1 000 jobs polled every 2 s made ~500
 * controller RPCs a second here (bench/README.md, "Slurm at scale"). Every
 * job's check asks this cache instead. A check needs a state seen by a look
 * that began after its own previous check ended (not_before): so its answer
 * is never older than its own period, and each check learns something its
 * previous one did not. The first check right after sbatch is answered by
 * the submission itself (PENDING, as of then; slurm.c takes it for at most
 * a second).
 *
 * A look (refresh) is one `squeue -h -t all -o %i|%T|%r|%S -j ID,ID,...`
 * (id, state, reason, start time: slurm.c's retry_after for a job pending
 * until a known time reads it from here, not from a squeue of its own) for every
 * followed job that has not ended (in chunks of CHUNK ids), then for the
 * ones squeue no longer knows (past MinJobAge) `sacct -j ID,...` (the
 * accounting database) and `sacct -c -j ID,...` (the completion file); a
 * job squeue shows failed gets its exit code from `scontrol show job`. The
 * look is made by the first check that needs one, on its thread, with the
 * lock released; checks that need a look meanwhile wait for it (a look that
 * began before their previous check ended does not do for them: they make
 * the next one). A job that has ended keeps its state and is not asked
 * about again. So with every job polled every P, looks begin at least P
 * apart: one squeue per period, whatever the number of jobs.
 *
 * A failed look answers, with its error, every check that needed it (one
 * error, not one squeue per job against a controller that is down). A look
 * cut short because its caller's context ended answers nobody: the next
 * check that needs one makes it again.
 *
 * A check is a readiness probe, bounded by its probe_timeout: a look that
 * outlived it would end every check waiting for it as a timed-out probe
 * (and, seen as a cancellation, scancel their Slurm jobs). So a call
 * bounded by its context stops short of that bound (probe_until_ms): the
 * look it makes is cut there, a failed look with a message that says so,
 * and its wait for another's look ends there, unanswered.
 *
 * Hot swap: each loaded copy of the plugin has its own globals, hence its
 * own cache, used only by the attempts that run on that copy (an attempt
 * pins its copy); its fini frees it. Nothing here outlives the copy: no
 * thread, no timer.
 *
 * One mutex (C.mu) guards everything below; never held while a client runs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "status.h"

#include "client.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKETS 1024
/* Ids per squeue or sacct call: "ID,ID,..." is one argument, and Linux
 * takes at most 128 KiB in one (MAX_ARG_STRLEN); 4000 ids of up to 20
 * digits stay well under it. */
#define CHUNK 4000
#define WAIT_SLICE_MS 50 /* a waiting check looks at its cancellation this often */

typedef struct entry {
    struct entry *next; /* in its bucket */
    char id[SLURM_ID_MAX];
    unsigned refs;
    slurm_job_info info;
    uint64_t as_of_ns; /* when the look that gave info began; 0: never looked */
    int ended;         /* info is an end state (with its exit code): no need to ask again */
} entry;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a look ended */
    entry *buckets[NBUCKETS];
    size_t n;               /* followed jobs */
    int looking;            /* a look is under way */
    uint64_t fail_start_ns; /* the last failed look began then (0: none) */
    char fail_msg[900];
} C = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

slurm_state_class slurm__classify(const char *state)
{
    static const char *const live[] = {"PENDING",   "CONFIGURING",  "RUNNING",       "COMPLETING",    "SUSPENDED",
                                       "REQUEUED",  "REQUEUE_HOLD", "REQUEUE_FED",   "RESIZING",      "SIGNALING",
                                       "STAGE_OUT", "STOPPED",      "RESV_DEL_HOLD", "POWER_UP_NODE", NULL};
    static const char *const failed[] = {"FAILED",    "TIMEOUT",  "OUT_OF_MEMORY", "NODE_FAIL",    "CANCELLED",
                                         "BOOT_FAIL", "DEADLINE", "PREEMPTED",     "SPECIAL_EXIT", "REVOKED",
                                         NULL};
    if (strcmp(state, "COMPLETED") == 0)
        return S_DONE;
    for (size_t i = 0; live[i]; i++)
        if (strcmp(state, live[i]) == 0)
            return S_LIVE;
    for (size_t i = 0; failed[i]; i++)
        if (strcmp(state, failed[i]) == 0)
            return S_FAILED;
    return S_UNKNOWN;
}

static size_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

static entry **slot_of(const char *id)
{
    entry **p = &C.buckets[hash(id, strlen(id)) % NBUCKETS];
    while (*p && strcmp((*p)->id, id) != 0)
        p = &(*p)->next;
    return p;
}

int slurm__status_follow(const char *id, const char *known_state)
{
    if (strlen(id) >= SLURM_ID_MAX)
        return -1;
    pthread_mutex_lock(&C.mu);
    entry **p = slot_of(id), *e = *p;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            pthread_mutex_unlock(&C.mu);
            return -1;
        }
        snprintf(e->id, sizeof e->id, "%s", id);
        *p = e;
        C.n++;
    }
    e->refs++;
    if (known_state) {
        memset(&e->info, 0, sizeof e->info);
        snprintf(e->info.state, sizeof e->info.state, "%s", known_state);
        e->info.found = 1;
        e->as_of_ns = slurm__now_ns();
        e->ended = 0;
    }
    pthread_mutex_unlock(&C.mu);
    return 0;
}

void slurm__status_unfollow(const char *id)
{
    pthread_mutex_lock(&C.mu);
    entry **p = slot_of(id), *e = *p;
    if (e && --e->refs == 0) {
        *p = e->next;
        free(e);
        C.n--;
    }
    pthread_mutex_unlock(&C.mu);
}

void slurm__status_fini(void)
{
    pthread_mutex_lock(&C.mu);
    for (size_t b = 0; b < NBUCKETS; b++)
        while (C.buckets[b]) {
            entry *e = C.buckets[b];
            C.buckets[b] = e->next;
            free(e);
        }
    C.n = 0;
    pthread_mutex_unlock(&C.mu);
}

/* ------------------------------------------------------------------------ */
/* One look                                                                  */
/* ------------------------------------------------------------------------ */

/* What one look asks about and learns: ids[i] and what was seen of it. */
typedef struct look {
    size_t n;
    char (*ids)[SLURM_ID_MAX];
    slurm_job_info *info; /* found 0: not seen (yet) */
    size_t *index;        /* open addressing over ids: slot -> i + 1 (0: empty) */
    size_t index_cap;     /* a power of two, at least 2n */
    uint64_t until_ms;    /* the look ends by then (slurm__now_ms; 0: no bound) */
    int cut;              /* it was cut there */
} look;

/* When a call bounded by ctx should end what it does to answer within its
 * context's time (0: no bound): a tenth of it early, at least 100 ms and
 * at most 2 s, or half way when under 200 ms are left. */
static uint64_t probe_until_ms(dp_plugin_ctx *ctx)
{
    int64_t left = ctx ? slurm__host->remaining_ms(ctx) : -1;
    if (left < 0)
        return 0;
    int64_t early = left / 10;
    if (early < 100)
        early = left >= 200 ? 100 : left / 2;
    if (early > 2000)
        early = 2000;
    return slurm__now_ms() + (uint64_t)(left - early);
}

/* A client's time cap within the look's bound: 0 with *cap, or -1 when the
 * bound has passed (the look is cut). */
static int look_cap(look *l, uint64_t *cap)
{
    *cap = SLURM_QUERY_CAP_MS;
    if (!l->until_ms)
        return 0;
    uint64_t now = slurm__now_ms();
    if (now >= l->until_ms) {
        l->cut = 1;
        return -1;
    }
    if (l->until_ms - now < *cap)
        *cap = l->until_ms - now;
    return 0;
}

/* After a client run with cap: whether the look's bound (not the client's
 * own cap) killed it. */
static int cut_short(look *l, uint64_t cap, const slurm_client_out *r)
{
    if (r->timed_out && cap < SLURM_QUERY_CAP_MS)
        l->cut = 1;
    return l->cut;
}

static size_t look_find(const look *l, const char *id, size_t len)
{
    for (size_t s = hash(id, len) & (l->index_cap - 1);; s = (s + 1) & (l->index_cap - 1)) {
        size_t v = l->index[s];
        if (!v)
            return (size_t)-1;
        if (strlen(l->ids[v - 1]) == len && memcmp(l->ids[v - 1], id, len) == 0)
            return v - 1;
    }
}

/* Copies field `idx` of a '|'-separated line into buf. */
static void field(const char *line, int idx, char *buf, size_t cap)
{
    const char *p = line;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    size_t n = 0;
    if (p)
        while (p[n] && p[n] != '|' && p[n] != '\n')
            n++;
    if (n >= cap)
        n = cap - 1;
    if (p)
        memcpy(buf, p, n);
    buf[n] = '\0';
}

/* Runs `argv... ID,ID,...` for the ids of l that `want` selects, CHUNK at a
 * time, and hands each output line whose first field is one of them to
 * take. 0; -1 when a client could not run or was cancelled (r says how),
 * or when one failed and must_succeed (r says how). */
static int ask(dp_plugin_ctx *ctx, look *l, char *const *argv_head, size_t nhead, int (*want)(const look *, size_t),
               void (*take)(look *, size_t, const char *line), int must_succeed, slurm_client_out *r)
{
    char *argv[16];
    size_t next = 0;
    for (;;) {
        while (next < l->n && !want(l, next))
            next++;
        if (next >= l->n)
            return 0;
        /* "ID,ID,..." of the next CHUNK wanted ids. */
        size_t cap = 0, k = 0, first = next;
        for (size_t i = first; i < l->n && k < CHUNK; i++)
            if (want(l, i)) {
                cap += strlen(l->ids[i]) + 1;
                k++;
            }
        char *list = malloc(cap + 1);
        if (!list) {
            snprintf(r->spawn_error, sizeof r->spawn_error, "out of memory");
            r->spawned = 0;
            return -1;
        }
        size_t o = 0;
        k = 0;
        for (; next < l->n && k < CHUNK; next++)
            if (want(l, next)) {
                if (o)
                    list[o++] = ',';
                size_t len = strlen(l->ids[next]);
                memcpy(list + o, l->ids[next], len);
                o += len;
                k++;
            }
        list[o] = '\0';
        size_t a = 0;
        for (; a < nhead; a++)
            argv[a] = argv_head[a];
        argv[a++] = list;
        argv[a] = NULL;
        uint64_t time_cap;
        if (look_cap(l, &time_cap) != 0) {
            free(list);
            return -1;
        }
        int rc = slurm__run_client(ctx, argv, NULL, time_cap, 0, r);
        free(list);
        if (rc != 0 || r->cancelled || cut_short(l, time_cap, r))
            return -1;
        /* An older squeue refuses a list of only unknown ids ("Invalid
         * job id specified"): it knows none of them, which is an answer. */
        if (!r->exited || (r->status != 0 && !strstr(r->err, "Invalid job id"))) {
            if (must_succeed)
                return -1;
            continue;
        }
        for (const char *p = r->out; p && *p;) {
            size_t len = strcspn(p, "|\n");
            if (p[len] == '|') {
                size_t i = look_find(l, p, len);
                if (i != (size_t)-1)
                    take(l, i, p);
            }
            p = strchr(p, '\n');
            if (p)
                p++;
        }
    }
}

static int want_all(const look *l, size_t i)
{
    (void)l;
    (void)i;
    return 1;
}

static int want_unseen(const look *l, size_t i)
{
    return !l->info[i].found;
}

static void take_squeue(look *l, size_t i, const char *line)
{
    slurm_job_info *in = &l->info[i];
    field(line, 1, in->state, sizeof in->state);
    field(line, 2, in->reason, sizeof in->reason);
    if (strcmp(in->reason, "None") == 0)
        in->reason[0] = '\0';
    field(line, 3, in->start, sizeof in->start);
    in->found = 1;
}

static void take_sacct(look *l, size_t i, const char *line)
{
    slurm_job_info *in = &l->info[i];
    field(line, 1, in->state, sizeof in->state);
    in->state[strcspn(in->state, " ")] = '\0'; /* "CANCELLED by 0" */
    field(line, 2, in->exit_code, sizeof in->exit_code);
    in->found = 1;
}

/* `scontrol show job -o ID`: "... ExitCode=3:0 ..." into info->exit_code. */
static int read_exit_code(dp_plugin_ctx *ctx, look *l, const char *id, slurm_job_info *info, slurm_client_out *r)
{
    char *argv[] = {"scontrol", "show", "job", "-o", slurm__arg(id), NULL};
    uint64_t cap;
    if (look_cap(l, &cap) != 0 || slurm__run_client(ctx, argv, NULL, cap, 0, r) != 0 || r->cancelled ||
        cut_short(l, cap, r))
        return -1;
    if (!r->exited || r->status != 0)
        return 0;
    for (const char *p = r->out; (p = strstr(p, "ExitCode=")) != NULL; p++) {
        if (p != r->out && p[-1] != ' ')
            continue; /* DerivedExitCode= */
        p += strlen("ExitCode=");
        size_t n = strcspn(p, " \n");
        if (n >= sizeof info->exit_code)
            n = sizeof info->exit_code - 1;
        memcpy(info->exit_code, p, n);
        info->exit_code[n] = '\0';
        break;
    }
    return 0;
}

/*
 * Asks the clients about every id of l: squeue (it knows live jobs and,
 * with -t all, those finished less than MinJobAge ago), then sacct for the
 * ones it did not show: the accounting database, then the completion file.
 * Returns 0 (l->info filled; found 0: nobody knows the job), or -1 with
 * msg: a client failed (squeue's failure is one only for the jobs sacct
 * does not know either: *partial set, the others are filled) or ctx ended
 * (*cancelled).
 */
static int ask_all(dp_plugin_ctx *ctx, look *l, int *cancelled, int *partial, char *msg, size_t msglen)
{
    slurm_client_out *r = slurm__client_new();
    if (!r) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    int rc = -1;
    char sq_err[800] = "";
    char *sq[] = {"squeue", "-h", "-t", "all", "-o", "%i|%T|%r|%S", "-j"};
    if (ask(ctx, l, sq, sizeof sq / sizeof *sq, want_all, take_squeue, 1, r) != 0) {
        if (!r->spawned || r->cancelled || l->cut)
            goto client_failed;
        slurm__client_failure("squeue", r, sq_err, sizeof sq_err);
    }
    /* Exit codes of the jobs squeue shows failed (a job fails once: one
     * scontrol each, as before the cache). */
    for (size_t i = 0; i < l->n; i++) {
        slurm_job_info *in = &l->info[i];
        slurm_state_class c = in->found ? slurm__classify(in->state) : S_LIVE;
        if ((c == S_FAILED || c == S_UNKNOWN) && !in->exit_code[0] && read_exit_code(ctx, l, l->ids[i], in, r) != 0)
            goto client_failed;
    }
    char *sa[] = {"sacct", "-n", "-P", "-o", "JobID,State,ExitCode", "-j"};
    char *sc[] = {"sacct", "-c", "-n", "-P", "-o", "JobID,State,ExitCode", "-j"};
    if (ask(ctx, l, sa, sizeof sa / sizeof *sa, want_unseen, take_sacct, 0, r) != 0 ||
        ask(ctx, l, sc, sizeof sc / sizeof *sc, want_unseen, take_sacct, 0, r) != 0)
        goto client_failed;
    if (sq_err[0]) {
        *partial = 1;
        snprintf(msg, msglen, "%s", sq_err);
        goto out;
    }
    rc = 0;
    goto out;

client_failed:
    if (l->cut) {
        snprintf(msg, msglen,
                 "Slurm's clients (squeue, sacct, scontrol) did not answer within the time left to this call "
                 "(a readiness probe's probe_timeout, or in run the job's timeout; a busy or slow controller); give "
                 "the job a longer readiness probe_timeout (or timeout)");
    } else if (r->cancelled) {
        *cancelled = 1;
        snprintf(msg, msglen, "cancelled while reading the state of Slurm jobs");
    } else {
        slurm__client_failure(r->spawned ? "squeue/sacct" : "", r, msg, msglen);
    }
out:
    slurm__client_free(r);
    return rc;
}

/* A look at every followed job that has not ended, made by the calling
 * check (C.mu held on entry and on return; released while the clients
 * run). Jobs that have ended are as good as looked at. */
static void refresh(dp_plugin_ctx *ctx, uint64_t until_ms, int *cancelled)
{
    uint64_t start = slurm__now_ns();
    C.looking = 1;
    look l = {.until_ms = until_ms};
    size_t want = 0;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (entry *e = C.buckets[b]; e; e = e->next)
            want += !e->ended;
    char msg[900] = "";
    int failed = 0, partial = 0;
    l.index_cap = 16;
    while (l.index_cap < 2 * want)
        l.index_cap *= 2;
    l.ids = malloc((want ? want : 1) * sizeof *l.ids);
    l.info = calloc(want ? want : 1, sizeof *l.info);
    l.index = calloc(l.index_cap, sizeof *l.index);
    if (!l.ids || !l.info || !l.index) {
        snprintf(msg, sizeof msg, "out of memory");
        failed = 1;
    } else {
        for (size_t b = 0; b < NBUCKETS; b++)
            for (entry *e = C.buckets[b]; e; e = e->next)
                if (!e->ended) {
                    memcpy(l.ids[l.n], e->id, SLURM_ID_MAX);
                    size_t s = hash(e->id, strlen(e->id)) & (l.index_cap - 1);
                    while (l.index[s])
                        s = (s + 1) & (l.index_cap - 1);
                    l.index[s] = ++l.n;
                } else {
                    e->as_of_ns = start;
                }
        pthread_mutex_unlock(&C.mu);
        if (l.n)
            failed = ask_all(ctx, &l, cancelled, &partial, msg, sizeof msg) != 0;
        if (ctx && l.n)
            slurm__host->log(ctx, DP_PLUGIN_LOG_DEBUG, "looked at %zu Slurm job(s) with one squeue%s", l.n,
                             l.cut    ? " (cut short: the probe's time)"
                             : failed ? " (failed)"
                                      : "");
        pthread_mutex_lock(&C.mu);
    }
    /* What was learnt: every job asked about, unless the look failed (a
     * squeue failure leaves out only the jobs sacct did not know). */
    for (size_t i = 0; i < l.n && (!failed || partial); i++) {
        if (partial && !l.info[i].found)
            continue;
        entry *e = *slot_of(l.ids[i]);
        if (!e || e->as_of_ns >= start)
            continue; /* unfollowed meanwhile, or followed again since */
        e->info = l.info[i];
        e->as_of_ns = start;
        e->ended = e->info.found && slurm__classify(e->info.state) != S_LIVE;
    }
    if (failed && !*cancelled) {
        C.fail_start_ns = start;
        snprintf(C.fail_msg, sizeof C.fail_msg, "%s", msg);
    }
    free(l.ids);
    free(l.info);
    free(l.index);
    C.looking = 0;
    pthread_cond_broadcast(&C.cv);
}

int slurm__status_get(dp_plugin_ctx *ctx, const char *id, uint64_t not_before_ns, slurm_job_info *info, int *cancelled,
                      char *msg, size_t msglen)
{
    *cancelled = 0;
    memset(info, 0, sizeof *info);
    uint64_t until = probe_until_ms(ctx);
    pthread_mutex_lock(&C.mu);
    for (;;) {
        entry *e = *slot_of(id);
        if (!e) {
            pthread_mutex_unlock(&C.mu);
            snprintf(msg, msglen, "Slurm job %s is not followed (a bug in the slurm plugin)", id);
            return -1;
        }
        if (e->as_of_ns && e->as_of_ns >= not_before_ns) {
            *info = e->info;
            pthread_mutex_unlock(&C.mu);
            return 0;
        }
        if (C.fail_start_ns && C.fail_start_ns >= not_before_ns && e->as_of_ns < C.fail_start_ns) {
            snprintf(msg, msglen, "cannot read the state of Slurm job %s: %s", id, C.fail_msg);
            pthread_mutex_unlock(&C.mu);
            return -1;
        }
        if (ctx && slurm__host->is_cancelled(ctx)) {
            *cancelled = 1;
            pthread_mutex_unlock(&C.mu);
            snprintf(msg, msglen, "cancelled while reading the state of Slurm job %s", id);
            return -1;
        }
        if (!C.looking) {
            refresh(ctx, until, cancelled);
            if (*cancelled) {
                pthread_mutex_unlock(&C.mu);
                snprintf(msg, msglen, "cancelled while reading the state of Slurm job %s", id);
                return -1;
            }
            continue;
        }
        /* A look is under way: wait for it (in slices, to see a
         * cancellation), then see whether it does; not past this call's
         * bound, where it is left unanswered. */
        uint64_t now = slurm__now_ms(), slice = WAIT_SLICE_MS;
        if (until && now >= until) {
            pthread_mutex_unlock(&C.mu);
            snprintf(msg, msglen,
                     "the state of Slurm job %s is not known yet: the look at Slurm's jobs under way did not end "
                     "within the time left to this call (a readiness probe's probe_timeout, or in run the job's "
                     "timeout; a busy or slow controller); give the job a longer readiness probe_timeout (or "
                     "timeout)",
                     id);
            return -1;
        }
        if (until && until - now < slice)
            slice = until - now;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)slice * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&C.cv, &C.mu, &ts);
    }
}

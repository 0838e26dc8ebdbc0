/* metrics.c - the Prometheus series of `watch --listen` (metrics.h).
 *
 * The runs' series are counted and rendered by the loop's thread only, once
 * a run, so a scrape never walks the jobs: it copies the text of the last
 * run. The reload counters change on the reloader's thread, between runs,
 * and the process figures at every moment: both are rendered at the scrape
 * (a few lines), under a lock of their own that no run ever takes. */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hash.h"

/* The buckets of daggerpool_run_duration_seconds: from a run of no-ops to
 * one of an hour. */
static const double bucket_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,    2.5,
                                   5,     10,   30,    60,   120, 300,  600, 1800, 3600};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

/* What an attempt ended with: retries follow errors only, so of a job's
 * attempts all but the last were errors, and the last is its status. */
enum { ATT_SUCCESS, ATT_NOT_READY, ATT_ERROR, ATT_CANCELLED, NATT };
static const char *const att_name[NATT] = {"success", "not_ready", "error", "cancelled"};

static const dp_run_outcome_t outcomes[] = {DP_RUN_SUCCESS, DP_RUN_FAILED, DP_RUN_NOT_READY, DP_RUN_TIMEOUT,
                                            DP_RUN_CANCELLED};
#define NOUTCOMES (sizeof outcomes / sizeof outcomes[0])
#define NSTATUS (DP_STATUS_FAILED + 1)

typedef struct job_count {
    char *name; /* NULL: a free slot */
    uint64_t att[NATT];
} job_count_t;

typedef struct reload_count {
    char *plugin;
    uint64_t ok, refused;
} reload_count_t;

struct svc_metrics {
    bool per_job;
    /* The loop's thread only. */
    uint64_t runs[NOUTCOMES];
    uint64_t buckets[NBUCKETS];
    uint64_t count;
    double sum;
    bool any_run;
    double last_end_s, last_duration_s, next_s, next_at_s;
    unsigned generation;
    size_t status[NSTATUS];
    job_count_t *jobs; /* open addressing on the name's hash */
    size_t jobs_cap, jobs_used;
    /* Under lock: the reloader's thread writes, scrapes read. */
    pthread_mutex_t lock;
    reload_count_t *reloads;
    size_t nreloads;
    double start_s; /* the process's start, Unix time */
};

/* The process's start from /proc: boot time plus its start in clock ticks. */
static double process_start(void)
{
    double btime = 0;
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lf", &btime) == 1)
            break;
    if (f)
        fclose(f);
    unsigned long long start = 0;
    if ((f = fopen("/proc/self/stat", "r"))) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        char *p = strrchr(buf, ')');
        /* Field 22 (starttime); p points at field 2's end. */
        if (p)
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &start);
    }
    long tck = sysconf(_SC_CLK_TCK);
    return btime + (tck > 0 ? (double)start / (double)tck : 0);
}

svc_metrics_t *svc_metrics_new(bool per_job)
{
    svc_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->per_job = per_job;
    m->next_s = NAN;
    pthread_mutex_init(&m->lock, NULL);
    m->start_s = process_start();
    return m;
}

void svc_metrics_free(svc_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->jobs_cap; i++)
        free(m->jobs[i].name);
    free(m->jobs);
    for (size_t i = 0; i < m->nreloads; i++)
        free(m->reloads[i].plugin);
    free(m->reloads);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* The counters of the job named name, made on first sight; NULL when out
 * of memory. */
static job_count_t *job_slot(svc_metrics_t *m, const char *name)
{
    if ((m->jobs_used + 1) * 2 > m->jobs_cap) {
        size_t cap = m->jobs_cap ? m->jobs_cap * 2 : 64;
        job_count_t *grown = calloc(cap, sizeof *grown);
        if (!grown)
            return NULL;
        for (size_t i = 0; i < m->jobs_cap; i++) {
            if (!m->jobs[i].name)
                continue;
            size_t k = (size_t)dp__hash_fnv1a(m->jobs[i].name) & (cap - 1);
            while (grown[k].name)
                k = (k + 1) & (cap - 1);
            grown[k] = m->jobs[i];
        }
        free(m->jobs);
        m->jobs = grown;
        m->jobs_cap = cap;
    }
    size_t k = (size_t)dp__hash_fnv1a(name) & (m->jobs_cap - 1);
    while (m->jobs[k].name && strcmp(m->jobs[k].name, name) != 0)
        k = (k + 1) & (m->jobs_cap - 1);
    if (!m->jobs[k].name) {
        if (!(m->jobs[k].name = strdup(name)))
            return NULL;
        m->jobs_used++;
    }
    return &m->jobs[k];
}

void svc_metrics_add_run(svc_metrics_t *m, const dp_result_t *r, double end_s, double next_s, unsigned generation)
{
    dp_run_outcome_t oc = dp_result_outcome(r);
    for (size_t i = 0; i < NOUTCOMES; i++)
        if (outcomes[i] == oc)
            m->runs[i]++;
    double d = (double)dp_result_duration_ms(r) / 1000.0;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (d <= bucket_le[i])
            m->buckets[i]++;
    m->count++;
    m->sum += d;
    m->any_run = true;
    m->last_end_s = end_s;
    m->last_duration_s = d;
    m->next_s = next_s;
    m->next_at_s = end_s + next_s;
    m->generation = generation;
    memset(m->status, 0, sizeof m->status);
    size_t n = dp_result_job_count(r);
    for (size_t id = 0; id < n; id++) {
        dp_status_t st = dp_result_status(r, id);
        if ((unsigned)st < NSTATUS)
            m->status[st]++;
        if (!m->per_job)
            continue;
        const dp_job_result_t *j = dp_result_job(r, id);
        if (!j || !j->attempts)
            continue;
        job_count_t *c = job_slot(m, j->name);
        if (!c)
            continue;
        int last = st == DP_STATUS_SUCCESS     ? ATT_SUCCESS
                   : st == DP_STATUS_NOT_READY ? ATT_NOT_READY
                   : st == DP_STATUS_FAILED    ? ATT_ERROR
                                               : ATT_CANCELLED;
        c->att[ATT_ERROR] += j->attempts - 1;
        c->att[last]++;
    }
}

/* A label value: backslash, double quote and newline escaped (the text
 * format's rule). */
static void put_label(FILE *f, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', f);
        if (*p == '\n') {
            fputs("\\n", f);
            continue;
        }
        fputc(*p, f);
    }
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* open_memstream's text, or NULL (freed) when a write failed. */
static char *finish(FILE *f, char **buf)
{
    bool ok = !ferror(f);
    if (fclose(f) != 0 || !ok) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

char *svc_metrics_render_runs(svc_metrics_t *m, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    head(f, "daggerpool_runs_total", "counter", "Runs of the workflow that ended, by outcome.");
    for (size_t i = 0; i < NOUTCOMES; i++)
        fprintf(f, "daggerpool_runs_total{outcome=\"%s\"} %llu\n", dp_run_outcome_name(outcomes[i]),
                (unsigned long long)m->runs[i]);
    head(f, "daggerpool_run_duration_seconds", "histogram", "Wall time of each run.");
    for (size_t i = 0; i < NBUCKETS; i++)
        fprintf(f, "daggerpool_run_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[i],
                (unsigned long long)m->buckets[i]);
    fprintf(f,
            "daggerpool_run_duration_seconds_bucket{le=\"+Inf\"} %llu\ndaggerpool_run_duration_seconds_sum %.9g\n"
            "daggerpool_run_duration_seconds_count %llu\n",
            (unsigned long long)m->count, m->sum, (unsigned long long)m->count);
    head(f, "daggerpool_jobs", "gauge", "Jobs of the last run, by their status at its end.");
    for (int s = 0; s < (int)NSTATUS; s++)
        fprintf(f, "daggerpool_jobs{status=\"%s\"} %zu\n", dp_status_name((dp_status_t)s), m->status[s]);
    head(f, "daggerpool_workflow_generation", "gauge", "1 + the workflow reloads taken, of the last run's workflow.");
    fprintf(f, "daggerpool_workflow_generation %u\n", m->generation ? m->generation : 1);
    if (m->any_run) {
        head(f, "daggerpool_last_run_timestamp_seconds", "gauge", "When the last run ended (Unix time).");
        fprintf(f, "daggerpool_last_run_timestamp_seconds %.3f\n", m->last_end_s);
        head(f, "daggerpool_last_run_duration_seconds", "gauge", "Wall time of the last run.");
        fprintf(f, "daggerpool_last_run_duration_seconds %.9g\n", m->last_duration_s);
        head(f, "daggerpool_requeue_after_seconds", "gauge",
             "The pause the loop took after the last run: the interval, or the result's sooner requeue hint.");
        fprintf(f, "daggerpool_requeue_after_seconds %.9g\n", m->next_s);
        head(f, "daggerpool_next_run_timestamp_seconds", "gauge", "When the next run is due (Unix time).");
        fprintf(f, "daggerpool_next_run_timestamp_seconds %.3f\n", m->next_at_s);
    }
    head(f, "daggerpool_job_attempts_total", "counter",
         "Attempts of each job over all runs, by how they ended (success, not_ready, error, cancelled).");
    for (size_t i = 0; m->per_job && i < m->jobs_cap; i++) {
        const job_count_t *c = &m->jobs[i];
        for (int a = 0; c->name && a < NATT; a++) {
            if (!c->att[a])
                continue;
            fputs("daggerpool_job_attempts_total{job=\"", f);
            put_label(f, c->name);
            fprintf(f, "\",result=\"%s\"} %llu\n", att_name[a], (unsigned long long)c->att[a]);
        }
    }
    return finish(f, &buf);
}

void svc_metrics_reload(svc_metrics_t *m, const char *plugin, bool ok)
{
    pthread_mutex_lock(&m->lock);
    size_t i = 0;
    while (i < m->nreloads && strcmp(m->reloads[i].plugin, plugin ? plugin : "") != 0)
        i++;
    if (i == m->nreloads) {
        reload_count_t *grown = realloc(m->reloads, (m->nreloads + 1) * sizeof *grown);
        char *name = strdup(plugin ? plugin : "");
        if (!grown || !name) {
            free(name);
            if (grown)
                m->reloads = grown;
            pthread_mutex_unlock(&m->lock);
            return;
        }
        m->reloads = grown;
        m->reloads[m->nreloads++] = (reload_count_t){.plugin = name};
    }
    if (ok)
        m->reloads[i].ok++;
    else
        m->reloads[i].refused++;
    pthread_mutex_unlock(&m->lock);
}

/* Open file descriptors: the entries of /proc/self/fd, less the one that
 * reads it. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

char *svc_metrics_render_live(svc_metrics_t *m, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    head(f, "daggerpool_plugin_reloads_total", "counter",
         "Plugin reloads since the start, by plugin and result (success: swapped; refused: the old version "
         "stays).");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nreloads; i++) {
        for (int ok = 1; ok >= 0; ok--) {
            fputs("daggerpool_plugin_reloads_total{plugin=\"", f);
            put_label(f, m->reloads[i].plugin);
            fprintf(f, "\",result=\"%s\"} %llu\n", ok ? "success" : "refused",
                    (unsigned long long)(ok ? m->reloads[i].ok : m->reloads[i].refused));
        }
    }
    pthread_mutex_unlock(&m->lock);

    /* /proc/self/stat: utime, stime (14, 15), num_threads (20), vsize (23),
     * rss in pages (24). */
    unsigned long long ut = 0, st = 0, vsize = 0;
    long threads = 0, rss = 0;
    FILE *p = fopen("/proc/self/stat", "r");
    if (p) {
        char sbuf[1024];
        size_t n = fread(sbuf, 1, sizeof sbuf - 1, p);
        sbuf[n] = '\0';
        fclose(p);
        char *q = strrchr(sbuf, ')');
        if (q)
            sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld %*d %*u %llu %ld",
                   &ut, &st, &threads, &vsize, &rss);
    }
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    head(f, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
    fprintf(f, "process_cpu_seconds_total %.2f\n", tck > 0 ? (double)(ut + st) / (double)tck : 0.0);
    head(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    fprintf(f, "process_resident_memory_bytes %lld\n", (long long)rss * (long long)(page > 0 ? page : 4096));
    head(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    fprintf(f, "process_virtual_memory_bytes %llu\n", vsize);
    head(f, "process_open_fds", "gauge", "Open file descriptors.");
    fprintf(f, "process_open_fds %ld\n", open_fds());
    head(f, "process_max_fds", "gauge", "The limit of open file descriptors.");
    fprintf(f, "process_max_fds %.0f\n", rl.rlim_cur == RLIM_INFINITY ? 1e19 : (double)rl.rlim_cur);
    head(f, "process_threads", "gauge", "Threads of the process.");
    fprintf(f, "process_threads %ld\n", threads);
    head(f, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.");
    fprintf(f, "process_start_time_seconds %.2f\n", m->start_s);
    return finish(f, &buf);
}

/* readiness_bench.c - many jobs waiting on readiness at once.
 *
 *   readiness_bench [-j JOBS] [-p PERIOD_MS] [-w WAIT_MS] [-t]
 *
 * JOBS check-only jobs (default 1000), max_concurrent_jobs = JOBS, each
 * polling readiness every PERIOD_MS (default 100). Their checks answer "not
 * ready" until the benchmark lets them be ready. Once every job has been
 * probed at least once (all are waiting), the process's CPU time (getrusage,
 * all threads) is taken over WAIT_MS of wall time (default 3000): that is
 * what the waiting costs. Then the checks turn ready and the run must end
 * promptly with every job success after one attempt.
 *
 * Reports: time for the pool to start every job, CPU over the wait as a
 * percentage of one core, probes per second, threads in the process, time
 * from "ready" to the run's return (the pool stopping), peak RSS.
 *
 * -t: every job also has probe thresholds (success_threshold 2,
 * failure_threshold 3: dp_readiness_ext_t), as a job written like a
 * Kubernetes probe; the checks answer as before, so the probes are the
 * same, and the run ends a period later (two ready probes in a row).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "daggerpool/daggerpool.h"

static atomic_uint first_probes; /* jobs probed at least once */
static atomic_ulong probes;      /* all probes */
static atomic_bool ready;

typedef struct jobstate {
    atomic_bool seen;
} jobstate_t;

static dp_outcome_t check(dp_job_t *job, void *user)
{
    (void)job;
    jobstate_t *js = user;
    if (!atomic_exchange(&js->seen, true))
        atomic_fetch_add(&first_probes, 1);
    atomic_fetch_add(&probes, 1);
    return atomic_load(&ready) ? DP_READY : DP_NOT_READY;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Threads in this process (/proc/self/status), -1 if unknown. */
static int threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            n = atoi(line + 8);
    fclose(f);
    return n;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

typedef struct runner {
    dp_graph_t *g;
    dp_run_opts_t opts;
    dp_result_t *res;
    char err[256];
    double returned_at;
} runner_t;

static void *run_thread(void *p)
{
    runner_t *r = p;
    r->res = dp_graph_run(r->g, &r->opts, r->err, sizeof r->err);
    r->returned_at = now_s();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned njobs = 1000, period = 100, wait_ms = 3000;
    bool thresholds = false;
    int c;
    while ((c = getopt(argc, argv, "j:p:w:t")) != -1) {
        switch (c) {
        case 'j': njobs = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'p': period = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'w': wait_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 't': thresholds = true; break;
        default: fprintf(stderr, "usage: readiness_bench [-j JOBS] [-p PERIOD_MS] [-w WAIT_MS] [-t]\n"); return 2;
        }
    }
    if (njobs < 1)
        return 2;

    char err[256];
    dp_graph_t *g = dp_graph_new();
    jobstate_t *st = calloc(njobs, sizeof *st);
    for (unsigned i = 0; i < njobs; i++) {
        char name[32];
        snprintf(name, sizeof name, "wait%05u", i);
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = name;
        spec.check = check;
        spec.user = &st[i];
        spec.readiness.period_ms = period;
        spec.readiness.timeout_ms = 600000;
        if (thresholds) {
#ifdef DP_HAVE_JOB_WAITS
            spec.readiness_ext.success_threshold = 2;
            spec.readiness_ext.failure_threshold = 3;
#else
            fprintf(stderr, "readiness_bench: -t needs a library with dp_readiness_ext_t\n");
            return 2;
#endif
        }
        if (dp_graph_add_job(g, &spec, err, sizeof err) != DP_OK) {
            fprintf(stderr, "readiness_bench: %s\n", err);
            return 1;
        }
    }

    runner_t r;
    memset(&r, 0, sizeof r);
    r.g = g;
    dp_run_opts_init(&r.opts);
    r.opts.max_concurrent_jobs = njobs;
    r.opts.timeout_ms = 600000;

    double t_start = now_s();
    pthread_t th;
    if (pthread_create(&th, NULL, run_thread, &r) != 0) {
        fprintf(stderr, "readiness_bench: pthread_create failed\n");
        return 1;
    }
    while (atomic_load(&first_probes) < njobs && now_s() - t_start < 60)
        usleep(1000);
    double t_all = now_s();
    if (atomic_load(&first_probes) < njobs) {
        fprintf(stderr, "readiness_bench: only %u of %u jobs started within 60 s\n", atomic_load(&first_probes), njobs);
        return 1;
    }

    /* The wait: only the jobs' polls (and this thread's sleep) run. */
    unsigned long p0 = atomic_load(&probes);
    double c0 = cpu_s(), w0 = now_s();
    usleep(wait_ms * 1000u);
    double c1 = cpu_s(), w1 = now_s();
    unsigned long p1 = atomic_load(&probes);
    int nthreads = threads_now();

    atomic_store(&ready, true);
    double t_ready = now_s();
    pthread_join(th, NULL);
    if (!r.res) {
        fprintf(stderr, "readiness_bench: run failed: %s\n", r.err);
        return 1;
    }
    size_t ok = 0, one_attempt = 0;
    for (size_t j = 0; j < dp_result_job_count(r.res); j++) {
        const dp_job_result_t *jr = dp_result_job(r.res, j);
        ok += jr->status == DP_STATUS_SUCCESS;
        one_attempt += jr->attempts == 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_pct = (c1 - c0) / (w1 - w0) * 100.0;
    printf("jobs %u, period %u ms, max_concurrent_jobs %u%s\n", njobs, period, njobs,
           thresholds ? ", success_threshold 2, failure_threshold 3" : "");
    printf("pool start: every job probed after %.0f ms\n", (t_all - t_start) * 1e3);
    printf("wait: %.2f s wall, %.3f s CPU = %.2f%% of one core; %.0f probes/s (expected %.0f)\n", w1 - w0, c1 - c0,
           cpu_pct, (double)(p1 - p0) / (w1 - w0), njobs * 1000.0 / period);
    printf("threads: %d in the process during the wait\n", nthreads);
    printf("stop: run returned %.0f ms after the checks turned ready (at most one period; two with -t)\n",
           (r.returned_at - t_ready) * 1e3);
    printf("result: %s, %zu/%u success, %zu after one attempt\n", dp_run_outcome_name(dp_result_outcome(r.res)), ok,
           njobs, one_attempt);
    printf("peak RSS %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    int rc = dp_result_is_ready(r.res) && ok == njobs ? 0 : 1;
    dp_result_free(r.res);
    dp_graph_free(g);
    free(st);
    printf("target: CPU < 1%% of one core: %s\n", cpu_pct < 1.0 ? "met" : "NOT met");
    return rc;
}

/*
 * soak.c - runs one large workflow many times in one process and checks
 * every result, and that memory and file descriptors stay flat.
 *
 *   dp_soak --plugin-dir DIR [--runs 1000] [--jobs 1000] [--seed N]
 *           [--isolated 0.01] [--workers 8] [--quiet]
 *
 * The graph: --jobs faults.chaos jobs (tests/faults), each depending on up
 * to three earlier ones; per attempt a job fails (0.06%), is not ready
 * (0.04%) or hangs until its timeout (0.06%; 50 ms, 1 s for isolated jobs), else sleeps up to 2 ms
 * and is ready (so runs end in every outcome);
 * a third of the jobs have retries. A fraction of the jobs (--isolated)
 * run in a child process. Runs alternate keep-going and fail-fast, and
 * every tenth has a global timeout short enough to cut it.
 *
 * Each result is checked against the semantics of DESIGN.md: every job has
 * a status and the counts add up; success, failed and not_ready jobs ran
 * with all their dependencies successful; a skipped job has a dependency
 * that did not succeed and never started; with keep-going and no timeout
 * nothing is left unknown and everything downstream of a job that did not
 * succeed is skipped; the outcome, first_error and first_not_ready agree
 * with the statuses; attempts never exceed retries + 1.
 *
 * RSS and the number of open fds are sampled after each run; after a
 * warm-up they must stay within bounds (fds exactly, RSS within 16 MiB).
 * Exit 0 when everything held, 1 otherwise. Prints the figures.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daggerpool/daggerpool.h"

static unsigned errors;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            if (errors++ < 20) {                                                                                       \
                fprintf(stderr, "run %u: check failed: %s: ", run_no, #cond);                                          \
                fprintf(stderr, __VA_ARGS__);                                                                          \
                fputc('\n', stderr);                                                                                   \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n - 1; /* the DIR's own */
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct counts {
    unsigned long status[5];
    unsigned long outcome[5];
    unsigned long attempts, timeouts_seen;
} counts_t;

static int outcome_index(dp_run_outcome_t o)
{
    switch (o) {
    case DP_RUN_SUCCESS: return 0;
    case DP_RUN_FAILED: return 1;
    case DP_RUN_NOT_READY: return 2;
    case DP_RUN_TIMEOUT: return 3;
    default: return 4;
    }
}

static void check_result(unsigned run_no, const dp_graph_t *g, const dp_result_t *r, const unsigned *retries,
                         bool fail_fast, bool global_timeout, counts_t *c)
{
    size_t n = dp_graph_job_count(g);
    CHECK(dp_result_job_count(r) == n, "%zu jobs in the result, %zu in the graph", dp_result_job_count(r), n);
    unsigned long per[5] = {0};
    bool any_failed = false, any_not_ready = false;
    bool cut = dp_result_timed_out(r) || dp_result_cancelled(r);
    for (size_t i = 0; i < n; i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        CHECK(j->status <= DP_STATUS_FAILED, "job %s has status %d", j->name, (int)j->status);
        if (j->status > DP_STATUS_FAILED)
            continue;
        per[j->status]++;
        c->attempts += j->attempts;
        CHECK(j->attempts <= retries[i] + 1, "job %s: %u attempts, %u retries", j->name, j->attempts, retries[i]);
        const uint32_t *deps;
        size_t nd = dp_graph_deps(g, i, &deps);
        bool deps_ok = true, dep_bad = false;
        for (size_t k = 0; k < nd; k++) {
            dp_status_t ds = dp_result_job(r, deps[k])->status;
            deps_ok = deps_ok && ds == DP_STATUS_SUCCESS;
            dep_bad = dep_bad || ds == DP_STATUS_FAILED || ds == DP_STATUS_NOT_READY || ds == DP_STATUS_SKIPPED;
        }
        switch (j->status) {
        case DP_STATUS_SUCCESS:
            CHECK(deps_ok && j->attempts >= 1, "job %s succeeded with deps_ok=%d attempts=%u", j->name, deps_ok,
                  j->attempts);
            break;
        case DP_STATUS_FAILED:
            any_failed = true;
            CHECK(deps_ok && j->attempts >= 1 && j->error, "job %s failed: deps_ok=%d attempts=%u", j->name, deps_ok,
                  j->attempts);
            if (j->error && strstr(j->error, "timed out after"))
                c->timeouts_seen++;
            break;
        case DP_STATUS_NOT_READY:
            any_not_ready = true;
            CHECK(deps_ok && j->attempts >= 1, "job %s not ready: deps_ok=%d attempts=%u", j->name, deps_ok,
                  j->attempts);
            break;
        case DP_STATUS_SKIPPED:
            CHECK(dep_bad && j->attempts == 0, "job %s skipped: dep_bad=%d attempts=%u", j->name, dep_bad, j->attempts);
            break;
        case DP_STATUS_UNKNOWN:
            /* Only a cut run (fail-fast after a failure, or the timeout)
             * leaves jobs unknown. */
            CHECK(cut || (fail_fast && dp_result_is_failed(r)), "job %s unknown in an uncut run (fail_fast=%d)",
                  j->name, fail_fast);
            break;
        }
        if (!cut && !fail_fast) {
            /* Keep-going, nothing cut: every job ends, and the status of
             * a job follows from its dependencies. */
            CHECK(j->status != DP_STATUS_UNKNOWN, "job %s unknown with keep-going", j->name);
            if (dep_bad)
                CHECK(j->status == DP_STATUS_SKIPPED, "job %s is %s below a job that did not succeed", j->name,
                      dp_status_name(j->status));
        }
    }
    unsigned long total = 0;
    for (int s = 0; s < 5; s++) {
        total += per[s];
        c->status[s] += per[s];
    }
    CHECK(total == n, "statuses add up to %lu of %zu", total, n);

    dp_run_outcome_t o = dp_result_outcome(r);
    c->outcome[outcome_index(o)]++;
    if (dp_result_timed_out(r))
        CHECK(o == DP_RUN_TIMEOUT, "timed out but outcome %s", dp_run_outcome_name(o));
    else if (any_failed)
        CHECK(o == DP_RUN_FAILED, "a job failed but outcome %s", dp_run_outcome_name(o));
    else if (any_not_ready)
        CHECK(o == DP_RUN_NOT_READY, "a job is not ready but outcome %s", dp_run_outcome_name(o));
    else if (!cut)
        CHECK(o == DP_RUN_SUCCESS && per[DP_STATUS_SUCCESS] == n, "outcome %s, %lu of %zu success",
              dp_run_outcome_name(o), per[DP_STATUS_SUCCESS], n);
    CHECK(!global_timeout || cut || o != DP_RUN_TIMEOUT, "outcome timeout without timed_out");
    CHECK((dp_result_first_error(r) != NULL) == (any_failed || dp_result_timed_out(r)),
          "first_error %s with any_failed=%d", dp_result_first_error(r) ? "set" : "NULL", any_failed);
    long fnr = dp_result_first_not_ready(r);
    CHECK((fnr >= 0) == any_not_ready, "first_not_ready %ld with any_not_ready=%d", fnr, any_not_ready);
    if (fnr >= 0)
        CHECK(dp_result_job(r, (size_t)fnr)->status == DP_STATUS_NOT_READY, "first_not_ready %ld is %s", fnr,
              dp_status_name(dp_result_job(r, (size_t)fnr)->status));

    /* Frontiers: not success, and failed, not_ready or all deps success. */
    const dp_frontier_t *fr;
    size_t nf = dp_result_frontiers(r, &fr), want = 0;
    for (size_t i = 0; i < n; i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        if (j->status == DP_STATUS_SUCCESS)
            continue;
        const uint32_t *deps;
        size_t nd = dp_graph_deps(g, i, &deps);
        bool deps_ok = true;
        for (size_t k = 0; k < nd; k++)
            deps_ok = deps_ok && dp_result_job(r, deps[k])->status == DP_STATUS_SUCCESS;
        if (j->status == DP_STATUS_FAILED || j->status == DP_STATUS_NOT_READY || deps_ok)
            want++;
    }
    CHECK(nf == want, "%zu frontiers, expected %zu", nf, want);
}

int main(int argc, char **argv)
{
    const char *plugin_dir = NULL;
    unsigned runs = 1000, njobs = 1000, workers = 8;
    double isolated = 0.01;
    uint64_t seed = (uint64_t)time(NULL);
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--plugin-dir") && i + 1 < argc)
            plugin_dir = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
            njobs = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            workers = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--isolated") && i + 1 < argc)
            isolated = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--quiet"))
            quiet = true;
        else {
            fprintf(stderr, "usage: dp_soak --plugin-dir DIR [--runs N] [--jobs N] [--workers N] "
                            "[--seed N] [--isolated FRACTION] [--quiet]\n");
            return 2;
        }
    }
    if (!plugin_dir || njobs == 0 || workers == 0) {
        fprintf(stderr, "dp_soak: --plugin-dir is required (where faults.so is)\n");
        return 2;
    }
    rng_state = seed;
    printf("soak: %u runs of %u jobs, %u workers, %.1f%% isolated, seed %" PRIu64 "\n", runs, njobs, workers,
           isolated * 100, seed);

    char err[4096];
    dp_plugins_t *pl = dp_plugins_new();
    dp_store_t *store = dp_store_new();
    dp_graph_t *g = dp_graph_new();
    dp_params_t *params = dp_params_new();
    unsigned *retries_by_name = calloc(njobs, sizeof(unsigned));
    unsigned *retries = calloc(njobs, sizeof(unsigned));
    if (!pl || !store || !g || !params || !retries || !retries_by_name)
        return 2;
    dp_plugins_add_path(pl, plugin_dir);
    dp_plugins_set_store(pl, store);
    dp_params_set_float(params, "fail", 0.0006);
    dp_params_set_float(params, "not_ready", 0.0004);
    dp_params_set_float(params, "hang", 0.0006);
    dp_params_set_int(params, "max_sleep", 2);
    unsigned nisolated = 0;
    for (unsigned i = 0; i < njobs; i++) {
        char name[32];
        snprintf(name, sizeof name, "j%05u", i);
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = name;
        spec.timeout_ms = 50;
        spec.retries = rnd() % 3 == 0 ? 1 + (unsigned)(rnd() % 2) : 0;
        spec.backoff.initial_ms = 1;
        spec.backoff.max_ms = 2;
        retries_by_name[i] = spec.retries;
        if ((double)(rnd() >> 11) / 9007199254740992.0 < isolated) {
            /* A process start on a busy machine can take tens of ms. */
            spec.isolation = DP_ISOLATION_PROCESS;
            spec.timeout_ms = 1000;
            nisolated++;
        }
        if (dp_plugins_add_job(pl, g, &spec, "faults.chaos", params, err, sizeof err) != DP_OK) {
            fprintf(stderr, "dp_soak: %s\n", err);
            return 2;
        }
        unsigned ndeps = i ? (unsigned)(rnd() % 4) : 0;
        for (unsigned k = 0; k < ndeps; k++) {
            char dep[32];
            /* Mostly recent jobs: long chains and wide fans both occur. */
            unsigned back = 1 + (unsigned)(rnd() % (i < 50 ? i : 50));
            snprintf(dep, sizeof dep, "j%05u", i - back);
            dp_graph_add_dep(g, name, dep); /* a repeat is harmless */
        }
    }
    if (dp_graph_validate(g, err, sizeof err) != DP_OK) {
        fprintf(stderr, "dp_soak: %s\n", err);
        return 2;
    }
    /* Ids are in name order, names j00000.. in add order: the same. */
    for (unsigned i = 0; i < njobs; i++)
        retries[i] = retries_by_name[i];
    printf("soak: graph ready, %u isolated jobs\n", nisolated);

    counts_t c = {0};
    long rss0 = 0, rss_min = 0, rss_max = 0, rss_last = 0;
    int fd0 = 0, fd_min = 0, fd_max = 0, fd_last = 0;
    unsigned warmup = runs < 20 ? 1 : 10;
    double t0 = now_s(), slowest = 0;
    for (unsigned run_no = 0; run_no < runs; run_no++) {
        dp_run_opts_t opts;
        dp_run_opts_init(&opts);
        opts.max_concurrent_jobs = workers;
        opts.fail_fast = run_no % 2 == 1;
        bool global_timeout = run_no % 10 == 7;
        opts.timeout_ms = global_timeout ? 20 : 0;
        opts.store = store;
        opts.seed = rnd() | 1;
        double ts = now_s();
        dp_result_t *r = dp_graph_run(g, &opts, err, sizeof err);
        double took = now_s() - ts;
        if (took > slowest)
            slowest = took;
        if (!r) {
            fprintf(stderr, "run %u: dp_graph_run: %s\n", run_no, err);
            errors++;
            continue;
        }
        check_result(run_no, g, r, retries, opts.fail_fast, global_timeout, &c);
        dp_result_free(r);
        rss_last = rss_kib();
        fd_last = fd_count();
        if (run_no + 1 == warmup) {
            rss0 = rss_min = rss_max = rss_last;
            fd0 = fd_min = fd_max = fd_last;
        } else if (run_no + 1 > warmup) {
            rss_min = rss_last < rss_min ? rss_last : rss_min;
            rss_max = rss_last > rss_max ? rss_last : rss_max;
            fd_min = fd_last < fd_min ? fd_last : fd_min;
            fd_max = fd_last > fd_max ? fd_last : fd_max;
        }
        if (!quiet && (run_no + 1) % 50 == 0)
            printf("soak: %u runs, %.1fs, rss %ld KiB, fds %d, %u check failures\n", run_no + 1, now_s() - t0, rss_last,
                   fd_last, errors);
        fflush(stdout);
    }
    double total = now_s() - t0;
    printf("soak: %u runs in %.1fs (%.3fs per run, slowest %.3fs)\n", runs, total, runs ? total / runs : 0, slowest);
    printf("soak: job statuses: success %lu, not_ready %lu, skipped %lu, failed %lu (%lu timed "
           "out), unknown %lu; attempts %lu\n",
           c.status[DP_STATUS_SUCCESS], c.status[DP_STATUS_NOT_READY], c.status[DP_STATUS_SKIPPED],
           c.status[DP_STATUS_FAILED], c.timeouts_seen, c.status[DP_STATUS_UNKNOWN], c.attempts);
    printf("soak: outcomes: success %lu, failed %lu, not_ready %lu, timeout %lu, cancelled %lu\n", c.outcome[0],
           c.outcome[1], c.outcome[2], c.outcome[3], c.outcome[4]);
    printf("soak: rss after warm-up %ld KiB, then min %ld max %ld last %ld (growth %ld KiB)\n", rss0, rss_min, rss_max,
           rss_last, rss_last - rss0);
    printf("soak: fds after warm-up %d, then min %d max %d last %d\n", fd0, fd_min, fd_max, fd_last);
    unsigned run_no = runs;
    if (runs > warmup) {
        /* With isolated jobs the host holds the warm runner's spares, each
         * with its socket, received when an attempt takes one: between 0
         * and 2 at a run's end depending on timing; and a socket per idle
         * zygote, one per isolated attempt that ran at once (at most one
         * per worker), ended after 30 s unused (docs/isolation.md). A leak
         * grows past that; without isolated jobs nothing may move. */
        int slack = nisolated ? 2 + (int)(workers < 8 ? workers : 8) : 0;
        CHECK(fd_min >= fd0 - slack && fd_max <= fd0 + slack, "fd count moved: %d..%d from %d (%d allowed)", fd_min,
              fd_max, fd0, slack);
        CHECK(rss_max - rss0 < 16 * 1024, "rss grew by %ld KiB", rss_max - rss0);
    }
    dp_graph_free(g);
    dp_params_free(params);
    dp_plugins_free(pl);
    dp_store_free(store);
    free(retries);
    free(retries_by_name);
    printf("soak: %s (%u check failures)\n", errors ? "FAILED" : "ok", errors);
    return errors ? 1 : 0;
}

/* first_run.c - where a graph's first run spends more than its later ones:
 * builds one benchmark shape (through ids, or by names with --names),
 * validates it, then runs it four times (--runs K: K times), printing for
 * each step the page faults it took (getrusage) and its CPU and wall time
 * per job.
 *
 *   first_run SHAPE WORKERS [--names] [--runs K]      e.g. first_run chain 1
 *
 * --runs 1 in many processes against --runs K in one is how
 * bench/perf_first_run.sh profiles a first run against later ones.
 *
 * Built against a library without the id API it builds by names only. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "daggerpool/daggerpool.h"
#include "shapes.h"

static dp_outcome_t noop(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_READY;
}

static double now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static long faults(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_minflt + r.ru_majflt;
}

typedef struct mark {
    long f;
    double wall, cpu;
} mark_t;

static mark_t mark(void)
{
    return (mark_t){faults(), now(CLOCK_MONOTONIC), now(CLOCK_PROCESS_CPUTIME_ID)};
}

static void report(const char *what, mark_t m, uint32_t n)
{
    mark_t e = mark();
    printf("%-10s %6ld faults %8.1f wall %8.1f cpu ns/job\n", what, e.f - m.f, (e.wall - m.wall) / n,
           (e.cpu - m.cpu) / n);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: first_run SHAPE WORKERS [--names] [--runs K]\n");
        return 2;
    }
    int kind = bench_shape_parse(argv[1]);
    unsigned workers = (unsigned)atoi(argv[2]);
    int names = 0, runs = 4;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--names") == 0) {
            names = 1;
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0) {
            runs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "first_run: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    bench_shape_t s;
    if (kind < 0 || workers < 1 || bench_shape_make(&s, (bench_shape_kind_t)kind, 100000, 42) != 0) {
        fprintf(stderr, "first_run: bad shape or workers\n");
        return 2;
    }
    char err[256];
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = noop;
    char(*nm)[12] = malloc((size_t)s.n * 12);
    for (uint32_t j = 0; j < s.n; j++)
        snprintf(nm[j], 12, "j%07u", j);
#ifndef DP_HAVE_GRAPH_IDS
    names = 1;
#endif
    mark_t m = mark();
    dp_graph_t *g;
    if (names) {
        g = dp_graph_new();
        for (uint32_t j = 0; j < s.n; j++) {
            sp.name = nm[j];
            if (dp_graph_add_job(g, &sp, err, sizeof err) != DP_OK)
                return 1;
        }
        for (uint32_t j = 0; j < s.n; j++)
            for (uint32_t k = s.dep_off[j]; k < s.dep_off[j + 1]; k++)
                dp_graph_add_dep(g, nm[j], nm[s.dep_ids[k]]);
    } else {
#ifdef DP_HAVE_GRAPH_IDS
        g = dp_graph_new_hint(s.n, s.nedges);
        for (uint32_t j = 0; j < s.n; j++) {
            uint32_t id;
            if (dp_graph_add_job_id(g, &sp, &id, err, sizeof err) != DP_OK)
                return 1;
        }
        for (uint32_t j = 0; j < s.n; j++)
            for (uint32_t k = s.dep_off[j]; k < s.dep_off[j + 1]; k++)
                dp_graph_add_dep_ids(g, j, s.dep_ids[k]);
#endif
    }
    report(names ? "add (names)" : "add (ids)", m, s.n);
    m = mark();
    if (dp_graph_validate(g, err, sizeof err) != DP_OK)
        return 1;
    report("validate", m, s.n);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = workers;
    for (int r = 0; r < runs; r++) {
        m = mark();
        dp_result_t *res = dp_graph_run(g, &o, err, sizeof err);
        if (!res || !dp_result_is_ready(res))
            return 1;
        dp_result_free(res);
        char what[16];
        snprintf(what, sizeof what, "run %d", r + 1);
        report(what, m, s.n);
    }
    dp_graph_free(g);
    bench_shape_free(&s);
    free(nm);
    return 0;
}

/* sched_bench.c - scheduler overhead: no-op jobs on the benchmark shapes,
 * run by libdaggerpool (dp_graph_run), by the lower bound (a single-threaded
 * Kahn traversal calling each job through a function pointer) and by the
 * peers in peers/ (Intel oneTBB flow_graph), in one invocation so that the
 * ratios to the lower bound hold on a noisy machine.
 *
 *   sched_bench [-n N] [-r RUNS] [-k ROUNDS] [-s SHAPE,...] [--seed S] [--no-peer]
 *
 * Every (system, shape, workers) is measured in a fresh child process (this
 * program re-executed with --child, or the peer's program), so that its peak
 * RSS (getrusage of the child, from wait4) is that system's alone and not
 * the high-water mark of whatever ran before it in the same process. A child
 * generates the shape, builds its graph (timed: "build"), then runs it RUNS
 * times after one warm-up run and reports the median ("run", per job). With
 * ROUNDS > 1 the whole sweep repeats, interleaved, and each figure is the
 * median over the rounds.
 *
 * Child protocol (the peers speak it too): argv
 *   --child SYSTEM SHAPE WORKERS N RUNS SEED
 * and one line on stdout:
 *   RESULT n edges build_ns median_run_ns min_run_ns median_cpu_ns
 *          [first_run_ns first_cpu_ns [status_ns]]
 * (median_cpu_ns: CPU time of the process, all threads, over one run;
 * first_run_ns: the first run of the built graph in the process, the
 * warm-up, which is what a one-shot command pays; status_ns: reading every
 * job's status from a result, median over the runs.)
 *
 * Systems: "lower", "daggerpool" (the graph built through ids where the
 * library has them: dp_graph_add_job_id, dp_graph_add_dep_ids), "dp-names"
 * (built through names: dp_graph_add_job, dp_graph_add_dep), "dp-exec"
 * (built through ids, run on one dp_executor_t kept across the runs),
 * "dp-pool" (built through ids, every job in one pool of WORKERS slots: what
 * a pool costs a job when it does not bound the run, which is then not
 * scheduled at all (prio.h, dp__sched_needed); only through --child,
 * e.g. AB_SYSTEM=dp-pool bench/ab.sh), "dp-pool-bound" (the same, but job
 * 0 asks for all WORKERS slots, so that with 2 or more workers the pool
 * could bound the run and every job goes through the pool's scheduler:
 * what that costs a job; only through --child), "dp-prio" (built through ids, job 0
 * of priority 1, the others 0: no pool, but every ready job goes through
 * the ordered ready queue, which is what honouring priorities among queued
 * jobs costs today; only through --child), and the peer's "tbb".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daggerpool/daggerpool.h"
#include "shapes.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process (every thread), in ns. */
static uint64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t median_u64(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double median_d(double *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k && v[k - 1] > v[k]; k--) {
            double t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
    fprintf(stderr, "sched_bench: %s\n", what);
    exit(1);
}

/* ---------------------------------------------------------------------- */
/* The lower bound                                                          */
/* ---------------------------------------------------------------------- */

typedef void (*lb_job_fn)(uint32_t id, void *user);

static void lb_noop(uint32_t id, void *user)
{
    (void)id;
    (void)user;
}

/* Volatile, so the compiler cannot see through the pointer and inline the
 * no-op away: every job costs one indirect call, as in a real scheduler. */
static lb_job_fn volatile lb_fn = lb_noop;

/* Per-run state of the lower bound, allocated and touched once per process
 * (outside the timed runs): on this kind of VM a first-touch page fault costs
 * tens of microseconds, and the bound must not be padded with faults that a
 * scheduler keeping its buffers would not take. */
static uint32_t *lb_remaining, *lb_queue;

/* One run: Kahn's traversal. The per-run work a scheduler must do is inside:
 * resetting the remaining-dependency counts, finding the roots, and for
 * every job one indirect call and its successors' counts. Returns how many
 * jobs ran. */
static uint32_t lower_bound_run(const bench_shape_t *s)
{
    uint32_t n = s->n;
    uint32_t *remaining = lb_remaining, *queue = lb_queue;
    size_t head = 0, tail = 0;
    for (uint32_t j = 0; j < n; j++) {
        remaining[j] = s->dep_off[j + 1] - s->dep_off[j];
        if (!remaining[j])
            queue[tail++] = j;
    }
    lb_job_fn fn = lb_fn;
    while (head < tail) {
        uint32_t j = queue[head++];
        fn(j, NULL);
        for (uint32_t k = s->succ_off[j]; k < s->succ_off[j + 1]; k++)
            if (--remaining[s->succ_ids[k]] == 0)
                queue[tail++] = s->succ_ids[k];
    }
    return (uint32_t)tail;
}

/* ---------------------------------------------------------------------- */
/* libdaggerpool                                                            */
/* ---------------------------------------------------------------------- */

static dp_outcome_t dp_noop(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_READY;
}

/* Names sort like ids ("j0000042"), so the library's name-ordered ids are
 * the generator's ids and every system walks the same memory layout. Made
 * before the clock starts, 12 bytes each in one block (no pointer per name:
 * the child's peak RSS is the library's, not the benchmark's). */
#define NAME_LEN 12

static char *make_names(uint32_t n)
{
    char *b = malloc((size_t)n * NAME_LEN);
    if (!b)
        die("out of memory");
    for (uint32_t j = 0; j < n; j++)
        snprintf(b + (size_t)j * NAME_LEN, NAME_LEN, "j%07u", j);
    return b;
}

#define NAME(block, j) ((block) + (size_t)(j)*NAME_LEN)

/* Through names: add every job, every dependency by the two names, then
 * validate (which sorts the names, then resolves them). */
static dp_graph_t *dp_build_names(const bench_shape_t *s, const char *names)
{
    char err[256];
    dp_graph_t *g = dp_graph_new();
    if (!g)
        die("dp_graph_new");
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.run = dp_noop;
    for (uint32_t j = 0; j < s->n; j++) {
        spec.name = NAME(names, j);
        if (dp_graph_add_job(g, &spec, err, sizeof err) != DP_OK)
            die(err);
    }
    for (uint32_t j = 0; j < s->n; j++)
        for (uint32_t k = s->dep_off[j]; k < s->dep_off[j + 1]; k++)
            if (dp_graph_add_dep(g, NAME(names, j), NAME(names, s->dep_ids[k])) != DP_OK)
                die("dp_graph_add_dep");
    if (dp_graph_validate(g, err, sizeof err) != DP_OK)
        die(err);
    return g;
}

#ifdef DP_HAVE_GRAPH_IDS
/* Through ids, what a caller that has its own numbering does: a size hint,
 * jobs without names (the library names them "#ID"), dependencies by the
 * ids handed out, validate. The ids are the generator's. */
/* pool_slots > 0: every job in pool "p" of that many slots (the "dp-pool"
 * system: what a pool costs per job when it does not bound the run); bound:
 * job 0 asks for all of them ("dp-pool-bound"). */
static dp_graph_t *dp_build_ids(const bench_shape_t *s, unsigned pool_slots, bool bound, bool prio)
{
    char err[256];
    dp_graph_t *g = dp_graph_new_hint(s->n, s->nedges);
    if (!g)
        die("dp_graph_new_hint");
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.run = dp_noop;
#ifdef DP_HAVE_SCHEDULING
    if (pool_slots) {
        if (dp_graph_add_pool(g, "p", pool_slots, err, sizeof err) != DP_OK)
            die(err);
        spec.pool = "p";
    }
#else
    if (pool_slots)
        die("this library has no pools");
#endif
    for (uint32_t j = 0; j < s->n; j++) {
        uint32_t id;
#ifdef DP_HAVE_SCHEDULING
        spec.priority = prio && j == 0 ? 1 : 0;
        if (pool_slots)
            spec.pool_slots = bound && j == 0 ? pool_slots : 1;
#else
        if (prio)
            die("this library has no priorities");
#endif
        if (dp_graph_add_job_id(g, &spec, &id, err, sizeof err) != DP_OK)
            die(err);
        if (id != j)
            die("dp_graph_add_job_id: ids are not insertion order");
    }
    for (uint32_t j = 0; j < s->n; j++)
        for (uint32_t k = s->dep_off[j]; k < s->dep_off[j + 1]; k++)
            if (dp_graph_add_dep_ids(g, j, s->dep_ids[k]) != DP_OK)
                die("dp_graph_add_dep_ids");
    if (dp_graph_validate(g, err, sizeof err) != DP_OK)
        die(err);
    return g;
}
#endif

/* Reads every job's status from a result; returns how many succeeded. */
static uint32_t read_statuses(const dp_result_t *res, uint32_t n)
{
    uint32_t ok = 0;
#ifdef DP_HAVE_GRAPH_IDS
    for (uint32_t j = 0; j < n; j++)
        ok += dp_result_status(res, j) == DP_STATUS_SUCCESS;
#else
    for (uint32_t j = 0; j < n; j++)
        ok += dp_result_job(res, j)->status == DP_STATUS_SUCCESS;
#endif
    return ok;
}

static int child(int argc, char **argv)
{
    if (argc != 8)
        die("--child SYSTEM SHAPE WORKERS N RUNS SEED");
    const char *system = argv[2];
    int kind = bench_shape_parse(argv[3]);
    unsigned workers = (unsigned)strtoul(argv[4], NULL, 10);
    uint32_t n = (uint32_t)strtoul(argv[5], NULL, 10);
    unsigned runs = (unsigned)strtoul(argv[6], NULL, 10);
    uint64_t seed = strtoull(argv[7], NULL, 10);
    if (kind < 0 || workers < 1 || runs < 1)
        die("bad child arguments");

    bench_shape_t s;
    if (bench_shape_make(&s, (bench_shape_kind_t)kind, n, seed) != 0)
        die("out of memory");
    uint64_t *t = calloc(runs, sizeof *t);
    uint64_t *cpu = calloc(runs, sizeof *cpu);
    uint64_t build_ns = 0, first_ns = 0, first_cpu = 0, status_ns = 0;
    size_t nedges = s.nedges;
    uint32_t njobs = s.n;

    if (strcmp(system, "lower") == 0) {
        uint64_t t0 = now_ns();
        if (bench_shape_succ(&s) != 0)
            die("out of memory");
        build_ns = now_ns() - t0;
        lb_remaining = calloc(s.n, sizeof *lb_remaining);
        lb_queue = calloc(s.n, sizeof *lb_queue);
        if (!lb_remaining || !lb_queue)
            die("out of memory");
        memset(lb_remaining, 1, s.n * sizeof *lb_remaining);
        memset(lb_queue, 1, s.n * sizeof *lb_queue);
        for (unsigned r = 0; r <= runs; r++) {
            uint64_t c0 = cpu_ns();
            t0 = now_ns();
            uint32_t ran = lower_bound_run(&s);
            uint64_t dt = now_ns() - t0;
            uint64_t dc = cpu_ns() - c0;
            if (ran != s.n)
                die("lower bound: not every job ran");
            if (r) {
                t[r - 1] = dt;
                cpu[r - 1] = dc;
            } else {
                first_ns = dt;
                first_cpu = dc;
            }
        }
        free(lb_remaining);
        free(lb_queue);
    } else if (strcmp(system, "daggerpool") == 0 || strcmp(system, "dp-names") == 0 || strcmp(system, "dp-exec") == 0 ||
               strcmp(system, "dp-pool") == 0 || strcmp(system, "dp-pool-bound") == 0 ||
               strcmp(system, "dp-prio") == 0) {
        dp_graph_t *g;
        uint64_t t0;
#ifdef DP_HAVE_GRAPH_IDS
        if (strcmp(system, "dp-names") != 0) {
            t0 = now_ns();
            bool bound = strcmp(system, "dp-pool-bound") == 0;
            g = dp_build_ids(&s, bound || strcmp(system, "dp-pool") == 0 ? workers : 0, bound,
                             strcmp(system, "dp-prio") == 0);
            build_ns = now_ns() - t0;
        } else
#endif
        {
            char *names = make_names(s.n);
            t0 = now_ns();
            g = dp_build_names(&s, names);
            build_ns = now_ns() - t0;
            free(names); /* the library copied what it needs */
        }
        bench_shape_free(&s);
        dp_run_opts_t opts;
        dp_run_opts_init(&opts);
        opts.max_concurrent_jobs = workers;
        opts.seed = 1;
#ifdef DP_HAVE_EXECUTOR
        dp_executor_t *ex = NULL;
        if (strcmp(system, "dp-exec") == 0) {
            if (!(ex = dp_executor_new(workers)))
                die("dp_executor_new");
            opts.executor = ex;
        }
#else
        if (strcmp(system, "dp-exec") == 0)
            die("this library has no executor");
#endif
        char err[256];
        uint64_t *st = calloc(runs, sizeof *st);
        for (unsigned r = 0; r <= runs; r++) {
            uint64_t c0 = cpu_ns();
            t0 = now_ns();
            dp_result_t *res = dp_graph_run(g, &opts, err, sizeof err);
            if (!res)
                die(err);
            int ok = dp_result_is_ready(res);
            uint64_t dt = now_ns() - t0;
            uint64_t dc = cpu_ns() - c0;
            uint64_t s0 = now_ns();
            uint32_t nok = read_statuses(res, njobs);
            uint64_t ds = now_ns() - s0;
            uint64_t f0 = now_ns();
            dp_result_free(res);
            dt += now_ns() - f0;
            if (!ok || nok != njobs)
                die("daggerpool: run did not succeed");
            if (r) {
                t[r - 1] = dt;
                cpu[r - 1] = dc;
                st[r - 1] = ds;
            } else {
                first_ns = dt;
                first_cpu = dc;
            }
        }
        status_ns = median_u64(st, runs);
        free(st);
#ifdef DP_HAVE_EXECUTOR
        dp_executor_free(ex);
#endif
        dp_graph_free(g);
    } else {
        die("unknown system");
    }
    uint64_t med = median_u64(t, runs); /* sorts t */
    uint64_t cmed = median_u64(cpu, runs);
    printf("RESULT %u %zu %llu %llu %llu %llu %llu %llu %llu\n", njobs, nedges, (unsigned long long)build_ns,
           (unsigned long long)med, (unsigned long long)t[0], (unsigned long long)cmed, (unsigned long long)first_ns,
           (unsigned long long)first_cpu, (unsigned long long)status_ns);
    bench_shape_free(&s);
    free(t);
    free(cpu);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The driver                                                               */
/* ---------------------------------------------------------------------- */

typedef struct sysdef {
    const char *label;  /* as printed */
    const char *system; /* --child SYSTEM */
    unsigned workers;
    int peer; /* run the peer program instead of ourselves */
} sysdef_t;

static const sysdef_t systems[] = {
    {"lower bound", "lower", 1, 0},     {"daggerpool", "daggerpool", 1, 0},
    {"daggerpool", "daggerpool", 2, 0}, {"dp by names", "dp-names", 2, 0},
#ifdef DP_HAVE_EXECUTOR
    {"dp executor", "dp-exec", 2, 0},
#endif
    {"tbb flow_graph", "tbb", 2, 1},
};
#define NSYS (sizeof systems / sizeof systems[0])

typedef struct measure {
    int ok;
    uint32_t n;
    size_t edges;
    double build_ns, first_ns, ns_per_job, cpu_per_job, rss_mib, status_ns; /* per job */
    bool has_first, has_status;
} measure_t;

/* Runs one child; fills m from its RESULT line and its rusage. */
static void run_child(const char *prog, const char *system, const char *shape, unsigned workers, uint32_t n,
                      unsigned runs, uint64_t seed, measure_t *m)
{
    char wbuf[16], nbuf[16], rbuf[16], sbuf[32];
    snprintf(wbuf, sizeof wbuf, "%u", workers);
    snprintf(nbuf, sizeof nbuf, "%u", n);
    snprintf(rbuf, sizeof rbuf, "%u", runs);
    snprintf(sbuf, sizeof sbuf, "%llu", (unsigned long long)seed);
    int p[2];
    if (pipe(p) != 0)
        die("pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(prog, prog, "--child", system, shape, wbuf, nbuf, rbuf, sbuf, (char *)NULL);
        fprintf(stderr, "sched_bench: cannot run %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    char line[512] = "";
    FILE *f = fdopen(p[0], "r");
    char buf[512];
    while (f && fgets(buf, sizeof buf, f))
        if (strncmp(buf, "RESULT ", 7) == 0)
            snprintf(line, sizeof line, "%s", buf);
    if (f)
        fclose(f);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    memset(m, 0, sizeof *m);
    unsigned long long build, med, mn, cmed, first = 0, fcpu = 0, stat = 0;
    int got = sscanf(line, "RESULT %u %zu %llu %llu %llu %llu %llu %llu %llu", &m->n, &m->edges, &build, &med, &mn,
                     &cmed, &first, &fcpu, &stat);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && got >= 6 && m->n) {
        m->ok = 1;
        m->cpu_per_job = (double)cmed / (double)m->n;
        m->build_ns = (double)build / (double)m->n;
        m->ns_per_job = (double)med / (double)m->n;
        m->first_ns = (double)first / (double)m->n;
        m->has_first = got >= 7 && first > 0;
        m->status_ns = (double)stat / (double)m->n;
        m->has_status = got >= 9 && stat > 0;
        m->rss_mib = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: sched_bench [-n N] [-r RUNS] [-k ROUNDS] [-s SHAPE[,SHAPE...]] [--seed S]\n"
                    "                   [--no-peer] [--peer PATH]\n"
                    "  -n N      jobs per shape (default 100000; the grid rounds down to a square)\n"
                    "  -r RUNS   timed runs per child after one warm-up; the median counts (default 7)\n"
                    "  -k ROUNDS repeat the sweep, interleaved; medians over rounds (default 3)\n"
                    "  -s        shapes: chain,independent,fan,grid,random (default all)\n"
                    "  --peer    the oneTBB flow_graph program (default: tbb_flow beside this one)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child(argc, argv);

    uint32_t n = 100000;
    unsigned runs = 7, rounds = 3;
    uint64_t seed = 42;
    int use_peer = 1;
    int want[BENCH_NSHAPES] = {1, 1, 1, 1, 1};
    char self[PATH_MAX], peer[PATH_MAX + 16];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        die("cannot find my own program (/proc/self/exe)");
    self[len] = '\0';
    char dirbuf[PATH_MAX];
    snprintf(dirbuf, sizeof dirbuf, "%s", self);
    snprintf(peer, sizeof peer, "%s/tbb_flow", dirname(dirbuf));

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-n") == 0 && v) {
            n = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "-r") == 0 && v) {
            runs = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "-k") == 0 && v) {
            rounds = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--seed") == 0 && v) {
            seed = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "-s") == 0 && v) {
            memset(want, 0, sizeof want);
            char *list = strdup(v), *save = NULL;
            for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int k = bench_shape_parse(tok);
                if (k < 0)
                    usage();
                want[k] = 1;
            }
            free(list);
            i++;
        } else if (strcmp(a, "--no-peer") == 0) {
            use_peer = 0;
        } else if (strcmp(a, "--peer") == 0 && v) {
            snprintf(peer, sizeof peer, "%s", v);
            i++;
        } else {
            usage();
        }
    }
    if (n < 3 || runs < 1 || rounds < 1)
        usage();
    if (use_peer && access(peer, X_OK) != 0) {
        fprintf(stderr, "sched_bench: no peer program at %s (oneTBB missing?): peers skipped\n", peer);
        use_peer = 0;
    }

    /* m[shape][system][round] */
    static measure_t m[BENCH_NSHAPES][NSYS][64];
    if (rounds > 64)
        rounds = 64;
    for (unsigned r = 0; r < rounds; r++)
        for (int k = 0; k < BENCH_NSHAPES; k++) {
            if (!want[k])
                continue;
            for (size_t sy = 0; sy < NSYS; sy++) {
                if (systems[sy].peer && !use_peer)
                    continue;
                run_child(systems[sy].peer ? peer : self, systems[sy].system, bench_shape_name((bench_shape_kind_t)k),
                          systems[sy].workers, n, runs, seed, &m[k][sy][r]);
                if (!m[k][sy][r].ok)
                    fprintf(stderr, "sched_bench: %s on %s failed\n", systems[sy].label,
                            bench_shape_name((bench_shape_kind_t)k));
            }
        }

    printf("n=%u, %u timed runs per child (median), %u round%s (median), seed %llu\n", n, runs, rounds,
           rounds == 1 ? "" : "s", (unsigned long long)seed);
    printf("ns per job; x: ratio to the lower bound of the same shape. build: jobs + dependencies +\n"
           "validate (lower bound: its successor lists); first: the first run in the process;\n"
           "run: the median of the runs after it; status: reading every job's status\n");
    printf("%-12s %-15s %2s %9s %8s %6s %8s %7s %8s %7s %8s %7s %7s %6s %7s\n", "shape", "system", "w", "edges",
           "build", "x", "first", "x", "run", "x", "cpu", "x", "rss_MiB", "x", "status");
    for (int k = 0; k < BENCH_NSHAPES; k++) {
        if (!want[k])
            continue;
        double lower_b = 0, lower_ns = 0, lower_cpu = 0, lower_rss = 0;
        for (size_t sy = 0; sy < NSYS; sy++) {
            double b[64], f[64], t[64], c[64], rs[64], st[64];
            unsigned cnt = 0, nf = 0, ns = 0;
            size_t edges = 0;
            for (unsigned r = 0; r < rounds; r++) {
                const measure_t *x = &m[k][sy][r];
                if (!x->ok)
                    continue;
                b[cnt] = x->build_ns;
                t[cnt] = x->ns_per_job;
                c[cnt] = x->cpu_per_job;
                rs[cnt] = x->rss_mib;
                if (x->has_first)
                    f[nf++] = x->first_ns;
                if (x->has_status)
                    st[ns++] = x->status_ns;
                edges = x->edges;
                cnt++;
            }
            if (!cnt)
                continue;
            double bm = median_d(b, cnt), tm = median_d(t, cnt), cm = median_d(c, cnt), rm = median_d(rs, cnt);
            double fm = nf ? median_d(f, nf) : 0, sm = ns ? median_d(st, ns) : 0;
            if (sy == 0) {
                lower_b = bm;
                lower_ns = tm;
                lower_cpu = cm;
                lower_rss = rm;
            }
            char fbuf[16] = "-", fx[16] = "-", sbuf[16] = "-";
            if (nf) {
                snprintf(fbuf, sizeof fbuf, "%.1f", fm);
                snprintf(fx, sizeof fx, "%.2f", lower_ns > 0 ? fm / lower_ns : 0);
            }
            if (ns)
                snprintf(sbuf, sizeof sbuf, "%.2f", sm);
            printf("%-12s %-15s %2u %9zu %8.1f %6.1f %8s %7s %8.1f %7.2f %8.1f %7.2f %7.1f %6.2f "
                   "%7s\n",
                   bench_shape_name((bench_shape_kind_t)k), systems[sy].label, systems[sy].workers, edges, bm,
                   lower_b > 0 ? bm / lower_b : 0, fbuf, fx, tm, lower_ns > 0 ? tm / lower_ns : 0, cm,
                   lower_cpu > 0 ? cm / lower_cpu : 0, rm, lower_rss > 0 ? rm / lower_rss : 0, sbuf);
        }
    }
    return 0;
}

/* hs_measure.c - swap latency and a stress count, printed (a measurement,
 * not an assertion).
 *
 *   hs_measure [SWAPS [SETTLE_MS]]    (defaults 100 and the library's 50)
 *
 * A runner thread runs a graph of 8 hs.work jobs (1 ms each, 4 at once) over
 * and over while the main thread renames v2 and v1 alternately over hs.so,
 * SWAPS times, waiting for each swap. Per swap it measures, from the moment
 * rename(2) returned (the file is complete):
 *   complete  -> the watcher found it whole and began the reload
 *   complete  -> the new version serves (the swap under the registry lock)
 *   complete  -> the first job that started on the new version started
 * (the time is taken just before rename(2), so each figure is an upper
 * bound) and prints min / median / p90 / max, then the counts of swaps, runs and
 * jobs, and how many jobs failed (expected: 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hscommon.h"

#define MAX_SWAPS 10000

static struct {
    pthread_mutex_t mu;
    int stop;
    unsigned long runs, jobs, failed;
    /* per swap: the version it brought and when the first job on it started */
    char want[MAX_SWAPS];
    uint64_t renamed_ns[MAX_SWAPS], first_job_ns[MAX_SWAPS];
    unsigned nswaps; /* swaps started (renamed) */
} st = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *runner(void *arg)
{
    hs_fix_t *f = arg;
    dp_graph_t *g = hs_graph(f, 8, "hs.work", 1);
    for (;;) {
        pthread_mutex_lock(&st.mu);
        int stop = st.stop;
        pthread_mutex_unlock(&st.mu);
        if (stop)
            break;
        uint64_t t0 = hs_mono_ns();
        dp_result_t *r = hs_run(f, g, 4);
        pthread_mutex_lock(&st.mu);
        st.runs++;
        for (size_t i = 0; i < dp_result_job_count(r); i++) {
            const dp_job_result_t *j = dp_result_job(r, i);
            st.jobs++;
            if (j->status != DP_STATUS_SUCCESS) {
                st.failed++;
                continue;
            }
            uint64_t started = t0 + (uint64_t)j->start_ms * 1000000u;
            for (unsigned s = 0; s < st.nswaps; s++)
                if (!st.first_job_ns[s] && j->plugin_version[0] == st.want[s] &&
                    started + 1000000u >= st.renamed_ns[s] && (s + 1 == st.nswaps || started < st.renamed_ns[s + 1]))
                    st.first_job_ns[s] = started > st.renamed_ns[s] ? started : st.renamed_ns[s];
        }
        pthread_mutex_unlock(&st.mu);
        dp_result_free(r);
    }
    dp_graph_free(g);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_stat(const char *what, uint64_t *v, size_t n)
{
    if (!n) {
        printf("%-44s (no samples)\n", what);
        return;
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    printf("%-44s min %7.2f  median %7.2f  p90 %7.2f  max %7.2f ms  (n=%zu)\n", what, v[0] / 1e6, v[n / 2] / 1e6,
           v[n * 9 / 10] / 1e6, v[n - 1] / 1e6, n);
}

int main(int argc, char **argv)
{
    unsigned swaps = argc > 1 ? (unsigned)atoi(argv[1]) : 100;
    uint64_t settle = argc > 2 ? (uint64_t)atoll(argv[2]) : 0;
    if (swaps < 1 || swaps > MAX_SWAPS)
        swaps = 100;
    hs_fix_t *f = hs_fix_new(settle);
    if (dp_reloader_start(f->rl) != DP_OK)
        return 1;
    pthread_t th;
    pthread_create(&th, NULL, runner, f);
    uint64_t *found = calloc(swaps, sizeof(uint64_t)), *serving = calloc(swaps, sizeof(uint64_t)),
             *first = calloc(swaps, sizeof(uint64_t));
    size_t nfound = 0, nserving = 0, nfirst = 0;
    unsigned ok = 0;
    for (unsigned i = 0; i < swaps; i++) {
        const char *to = i % 2 == 0 ? "v2" : "v1";
        size_t before = hs_nevents(f);
        hs_install_rename(f, to);
        /* Taken just before rename(2): the file is complete from then on at
         * the latest, so the figures are upper bounds. */
        uint64_t t = f->renamed_ns;
        pthread_mutex_lock(&st.mu);
        st.want[i] = to[1];
        st.renamed_ns[i] = t;
        st.nswaps = i + 1;
        pthread_mutex_unlock(&st.mu);
        if (!hs_wait_events(f, before + 1, 10000)) {
            fprintf(stderr, "swap %u: no report within 10 s\n", i);
            break;
        }
        hs_event_t e = hs_event(f, before);
        if (e.status != DP_OK) {
            fprintf(stderr, "swap %u refused: %s\n", i, e.error);
            continue;
        }
        ok++;
        if (getenv("HS_DEBUG"))
            fprintf(stderr, "swap %u to %s: got %s, complete-rename %.2f ms\n", i, to, e.new_version,
                    ((double)e.complete_ns - (double)t) / 1e6);
        found[nfound++] = e.complete_ns - t;
        serving[nserving++] = e.swapped_ns - t;
        usleep(20000); /* jobs run on each version */
    }
    pthread_mutex_lock(&st.mu);
    st.stop = 1;
    pthread_mutex_unlock(&st.mu);
    pthread_join(th, NULL);
    for (unsigned i = 0; i < st.nswaps; i++)
        if (st.first_job_ns[i])
            first[nfirst++] = st.first_job_ns[i] - st.renamed_ns[i];
    dp_reloader_opts_t o;
    dp_reloader_opts_init(&o);
    printf("hot swap latency, file complete (rename done) -> ..., settle interval %llu ms:\n",
           (unsigned long long)(settle ? settle : o.settle_ms));
    print_stat("  watcher found it whole, reload began", found, nfound);
    print_stat("  new version serving (swap done)", serving, nserving);
    print_stat("  first job on the new version started", first, nfirst);
    printf("stress: %u swaps done of %u, %lu runs, %lu jobs, %lu failed; %u versions loaded at "
           "the end\n",
           ok, swaps, st.runs, st.jobs, st.failed, hs_nversions(f));
    free(found);
    free(serving);
    free(first);
    hs_fix_free(f);
    return st.failed || ok != swaps;
}

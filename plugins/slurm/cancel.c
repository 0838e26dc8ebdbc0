/*
 * cancel.c - scancel, many ids per call (cancel.h).
 *
 * A fail-fast or a Ctrl-C with 1 000 Slurm jobs in flight ends 1 000
 * attempts at once, on as many workers; each used to run its own scancel
 * (1 000 processes, 1 000 connections to the controller at once). Now an
 * attempt adds its id to a list and waits; the first one finding no scancel
 * under way gathers for GATHER_MS (the others' ids arrive meanwhile), then
 * runs `scancel ID ID ...` for everything listed (CHUNK ids a call), and
 * does it again while more ids came in. Every caller returns once a scancel
 * naming its id has ended, so "nothing left in the queue" holds when the
 * attempt ends, as it did with one scancel each.
 *
 * Per plugin copy (hot swap: each copy has its own list, freed by its
 * fini). One mutex; never held while scancel runs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cancel.h"

#include "client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GATHER_MS 20
#define CHUNK 500 /* ids per scancel call */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a scancel ended */
    char (*ids)[SLURM_ID_MAX];
    size_t n, cap;
    uint64_t asked; /* tickets handed out: the id of ticket t is the t-th listed */
    uint64_t done;  /* every ticket up to this one was in a scancel that ended */
    int busy;       /* a caller is running scancel */
} K = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Runs scancel for ids[0 .. n), CHUNK at a time; logs each call through ctx
 * when there is one (a failure to stderr when there is none). */
static void run_scancel(dp_plugin_ctx *ctx, char (*ids)[SLURM_ID_MAX], size_t n)
{
    slurm_client_out *r = slurm__client_new();
    char **argv = malloc((CHUNK + 2) * sizeof *argv);
    if (!r || !argv) {
        fprintf(stderr, "slurm: out of memory: %zu Slurm job(s) not cancelled\n", n);
        goto out;
    }
    for (size_t first = 0; first < n; first += CHUNK) {
        size_t k = n - first < CHUNK ? n - first : CHUNK, a = 0;
        argv[a++] = "scancel";
        for (size_t i = 0; i < k; i++)
            argv[a++] = ids[first + i];
        argv[a] = NULL;
        /* No ctx: the callers' contexts have ended, and scancel must run. */
        int rc = slurm__run_client(NULL, argv, NULL, SLURM_QUERY_CAP_MS, 0, r);
        char msg[800];
        if (rc != 0 || !r->exited || r->status != 0) {
            /* scancel goes on with the other ids when one has ended
             * already ("already completing or completed"): it says which. */
            slurm__client_failure("scancel", r, msg, sizeof msg);
            if (ctx)
                slurm__host->log(ctx, DP_PLUGIN_LOG_WARN, "scancel of %zu Slurm job(s) (%s ...) failed: %s", k,
                                 ids[first], msg);
            else
                fprintf(stderr, "slurm: scancel of %zu Slurm job(s) (%s ...) failed: %s\n", k, ids[first], msg);
        } else if (ctx) {
            slurm__host->log(ctx, DP_PLUGIN_LOG_INFO, "cancelled %zu Slurm job%s with one scancel (%s%s)", k,
                             k == 1 ? "" : "s", ids[first], k > 1 ? " ..." : "");
        }
    }
out:
    free(argv);
    slurm__client_free(r);
}

void slurm__cancel(dp_plugin_ctx *ctx, const char *id, const char *why)
{
    pthread_mutex_lock(&K.mu);
    if (K.n == K.cap) {
        size_t nc = K.cap ? 2 * K.cap : 64;
        void *p = realloc(K.ids, nc * sizeof *K.ids);
        if (!p) {
            pthread_mutex_unlock(&K.mu);
            /* Out of memory: alone, as before the lists. */
            char one[1][SLURM_ID_MAX];
            snprintf(one[0], sizeof one[0], "%s", id);
            run_scancel(ctx, one, 1);
            return;
        }
        K.ids = p;
        K.cap = nc;
    }
    snprintf(K.ids[K.n++], SLURM_ID_MAX, "%s", id);
    uint64_t mine = ++K.asked;
    while (K.done < mine) {
        if (K.busy) {
            pthread_cond_wait(&K.cv, &K.mu);
            continue;
        }
        K.busy = 1;
        pthread_mutex_unlock(&K.mu);
        struct timespec g = {0, GATHER_MS * 1000000L};
        nanosleep(&g, NULL);
        pthread_mutex_lock(&K.mu);
        /* Take the list: everything asked for until now. */
        char(*batch)[SLURM_ID_MAX] = K.ids;
        size_t n = K.n;
        uint64_t upto = K.asked;
        K.ids = NULL;
        K.n = K.cap = 0;
        pthread_mutex_unlock(&K.mu);
        run_scancel(ctx, batch, n);
        free(batch);
        pthread_mutex_lock(&K.mu);
        K.done = upto;
        K.busy = 0;
        pthread_cond_broadcast(&K.cv);
    }
    pthread_mutex_unlock(&K.mu);
    if (ctx)
        slurm__host->log(ctx, DP_PLUGIN_LOG_INFO, "cancelled Slurm job %s (%s)", id, why);
}

void slurm__cancel_fini(void)
{
    pthread_mutex_lock(&K.mu);
    free(K.ids);
    K.ids = NULL;
    K.n = K.cap = 0;
    pthread_mutex_unlock(&K.mu);
}

/*
 * trace.c - records a run's attempt events for the Chrome trace
 * (dp_render_trace). Events arrive on worker threads; a mutex guards the
 * growing array. Copies are taken because an event's strings live only
 * during the callback.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct trace_rec {
    pthread_mutex_t lock;
    dp_trace_event_t *ev;
    size_t n, cap;
    bool oom; /* an event was lost: the trace says less than it should */
};

trace_rec_t *trace_rec_new(void)
{
    trace_rec_t *t = calloc(1, sizeof *t);
    if (t)
        pthread_mutex_init(&t->lock, NULL);
    return t;
}

void trace_rec_free(trace_rec_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->ev[i].error);
    free(t->ev);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void trace_rec_event(trace_rec_t *t, const dp_event_t *ev)
{
    if (ev->kind != DP_EV_ATTEMPT_START && ev->kind != DP_EV_ATTEMPT_END)
        return;
    char *error = ev->error ? strdup(ev->error) : NULL;
    pthread_mutex_lock(&t->lock);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        dp_trace_event_t *grown = realloc(t->ev, cap * sizeof *grown);
        if (!grown) {
            t->oom = true;
            pthread_mutex_unlock(&t->lock);
            free(error);
            return;
        }
        t->ev = grown;
        t->cap = cap;
    }
    t->ev[t->n++] = (dp_trace_event_t){.kind = ev->kind,
                                       .job = ev->job,
                                       .attempt = ev->attempt,
                                       .worker = ev->worker,
                                       .time_ns = ev->time_ns,
                                       .status = ev->status,
                                       .error = error};
    pthread_mutex_unlock(&t->lock);
}

int trace_rec_write(trace_rec_t *t, FILE *out, const dp_graph_t *g, const char *workflow)
{
    pthread_mutex_lock(&t->lock);
    int rc = t->oom ? DP_ENOMEM : dp_render_trace(out, g, workflow, t->ev, t->n);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

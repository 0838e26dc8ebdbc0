/*
 * trace.c - writes a run's Chrome trace while it runs (dp__render_trace_*):
 * each attempt's span goes to the file when the attempt ends, so memory
 * stays what the workflow's size makes it (one open attempt per job, a
 * 1 MiB file buffer) whatever the number of attempts, which a trace held
 * whole did not (bench/README.md, "Traces"). Events arrive on worker
 * threads; a mutex serialises the writes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A job's attempt that started and has not ended yet. */
typedef struct open_attempt {
    uint64_t time_ns;
    unsigned attempt;
    unsigned worker;
    bool open;
} open_attempt_t;

struct trace_rec {
    pthread_mutex_t lock;
    dp__trace_out_t out;
    open_attempt_t *open; /* by job id */
    size_t njobs;
};

trace_rec_t *trace_rec_new(FILE *out, const dp_graph_t *g, const char *workflow)
{
    trace_rec_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->njobs = dp_graph_job_count(g);
    if (!(t->open = calloc(t->njobs ? t->njobs : 1, sizeof *t->open))) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    dp__render_trace_begin(&t->out, out, g, workflow);
    return t;
}

void trace_rec_free(trace_rec_t *t)
{
    if (!t)
        return;
    free(t->open);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static dp__trace_event_t start_of(uint32_t job, const open_attempt_t *a)
{
    return (dp__trace_event_t){.kind = DP_EV_ATTEMPT_START,
                               .job = job,
                               .attempt = a->attempt,
                               .worker = a->worker,
                               .time_ns = a->time_ns,
                               .status = DP_STATUS_UNKNOWN};
}

void trace_rec_event(trace_rec_t *t, const dp_event_t *ev)
{
    pthread_mutex_lock(&t->lock);
    dp__render_trace_saw(&t->out, ev->time_ns);
    if (ev->job < t->njobs) {
        open_attempt_t *a = &t->open[ev->job];
        if (ev->kind == DP_EV_ATTEMPT_START) {
            if (a->open) { /* its end never came: say so rather than lose it */
                dp__trace_event_t s = start_of(ev->job, a);
                dp__render_trace_span(&t->out, &s, NULL);
            }
            *a = (open_attempt_t){ev->time_ns, ev->attempt, ev->worker, true};
        } else if (ev->kind == DP_EV_ATTEMPT_END && a->open && a->attempt == ev->attempt) {
            dp__trace_event_t s = start_of(ev->job, a);
            dp__trace_event_t e = {.kind = ev->kind,
                                   .job = ev->job,
                                   .attempt = ev->attempt,
                                   .worker = ev->worker,
                                   .time_ns = ev->time_ns,
                                   .status = ev->status,
                                   .error = ev->error};
            dp__render_trace_span(&t->out, &s, &e);
            a->open = false;
        }
    }
    pthread_mutex_unlock(&t->lock);
}

int trace_rec_finish(trace_rec_t *t)
{
    pthread_mutex_lock(&t->lock);
    /* Attempts the run cut: they end at the last event seen. */
    for (size_t j = 0; j < t->njobs; j++)
        if (t->open[j].open) {
            dp__trace_event_t s = start_of((uint32_t)j, &t->open[j]);
            dp__render_trace_span(&t->out, &s, NULL);
            t->open[j].open = false;
        }
    int rc = dp__render_trace_end(&t->out);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void trace_rec_pool_waits(trace_rec_t *t, const dp_result_t *r)
{
    pthread_mutex_lock(&t->lock);
    dp__render_trace_pool_waits(&t->out, r);
    pthread_mutex_unlock(&t->lock);
}

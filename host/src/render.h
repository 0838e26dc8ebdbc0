/* render.h - a run's result and a workflow's DAG as text for people and
 * programs: the summary, the JSON result (DESIGN.md's keys), a Chrome
 * trace-event file, Graphviz DOT and Mermaid. Private to libdaggerpool;
 * the command is the user.
 *
 * Every renderer writes to a FILE* and returns 0, or a negative dp_err_t
 * (DP_ESYS when writing failed, DP_ENOMEM). None keeps state. */
#ifndef DP_RENDER_H
#define DP_RENDER_H

#include <stdio.h>

#include "daggerpool/daggerpool.h"
#include "jsonw.h"
#include "text.h"

/* The summary: one line per job (status, attempts, duration, plugin), and
 * when the run did not succeed the first error, the first not-ready job,
 * the frontiers and the boundary. */
int dp__render_summary(FILE *out, const dp_result_t *r, const char *workflow);

/* The JSON result as DESIGN.md pins it: workflow, outcome, timed_out,
 * first_error, first_not_ready, requeue_after_ms, duration_ms, jobs{...},
 * frontiers[...], boundary[...], written as members of the object w is
 * writing (watch adds its own members after them). */
void dp__render_result_members(dp__jsonw_t *w, const dp_result_t *r, const char *workflow);
/* The result as one document, indented, with a final newline. */
int dp__render_json(FILE *out, const dp_result_t *r, const char *workflow);

/* One event for the trace: what it needs of a dp_event_t (error may be
 * NULL). */
typedef struct dp__trace_event {
    dp_event_kind_t kind;
    uint32_t job;
    unsigned attempt;
    unsigned worker;
    uint64_t time_ns; /* from the run's start */
    dp_status_t status;
    const char *error;
} dp__trace_event_t;

/* Chrome trace-event JSON (loads in Perfetto and chrome://tracing): one
 * complete ("X") span per job attempt, from its ATTEMPT_START to its
 * ATTEMPT_END, on its worker's track; an attempt without an end (the run
 * was cut) ends at the last event and says so ("unfinished"). Names come
 * from g. Written as it goes (memory does not grow with the attempts):
 * begin, a span for each attempt (in any order), end. rc keeps the first
 * DP_ENOMEM; a write error is seen by end (DP_ESYS). */
typedef struct dp__trace_out {
    FILE *out;
    const dp_graph_t *g;
    dp__jsonw_t w;    /* streams to out; its err is the first failure */
    uint64_t last_ns; /* the latest event seen: where unfinished spans end */
    unsigned max_worker;
    bool any;
    size_t pool_tracks; /* pools whose track has a span (dp__render_trace_pool_waits) */
} dp__trace_out_t;

int dp__render_trace_begin(dp__trace_out_t *t, FILE *out, const dp_graph_t *g, const char *workflow);
/* An event at time_ns was seen (any kind): unfinished spans end no earlier. */
void dp__render_trace_saw(dp__trace_out_t *t, uint64_t time_ns);
/* The span of an attempt from start to end (NULL: unfinished). */
int dp__render_trace_span(dp__trace_out_t *t, const dp__trace_event_t *start, const dp__trace_event_t *end);
/* Each job's wait for its pool's slots (dp_result_pool_wait_ms, when not
 * 0) as a span "NAME waits for pool P" ending when the job started, on a
 * track of its own per pool ("pool P"). Milliseconds, as the result has
 * them. */
int dp__render_trace_pool_waits(dp__trace_out_t *t, const dp_result_t *r);
int dp__render_trace_end(dp__trace_out_t *t);
/* The whole trace of recorded events at once. */
int dp__render_trace(FILE *out, const dp_graph_t *g, const char *workflow, const dp__trace_event_t *events, size_t n);

/* How to draw the DAG: per job id (the graph's name order) its type and
 * status, either array may be NULL (no type line; no colours). A status
 * below 0 leaves that node uncoloured. */
typedef struct dp__graph_style {
    const char *const *types;
    const int *status;
} dp__graph_style_t;

int dp__render_dot(FILE *out, const dp_graph_t *g, const char *workflow, const dp__graph_style_t *style);
int dp__render_mermaid(FILE *out, const dp_graph_t *g, const dp__graph_style_t *style);

/* Reads the status of each job of g from a JSON result (as written by
 * `daggerpool run --json`), read from in (path names it in messages), into
 * status[id]; jobs the file does not mention get -1. DP_ECONFIG with err
 * "FILE:LINE: ..." when it is not such a file, or when not one of its jobs
 * is a job of g (another workflow's result). When only some match (the
 * workflow changed since), DP_OK and warn (may be NULL) says which jobs do
 * not, on both sides, and whether the result names another workflow
 * (workflow: g's name; may be NULL). */
int dp__render_statuses_read(FILE *in, const char *path, const dp_graph_t *g, const char *workflow, int *status,
                             char *warn, size_t warnlen, char *err, size_t errlen);
/* The same from the file at path, refused unless it is a regular file (a
 * FIFO would block the read forever); no warning. */
int dp__render_statuses_from_json(const char *path, const dp_graph_t *g, int *status, char *err, size_t errlen);

/* "success" -> DP_STATUS_SUCCESS and so on; -1 for anything else. */
int dp__status_from_name(const char *name);

#endif /* DP_RENDER_H */

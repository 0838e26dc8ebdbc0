/* status_page.c - the status page at / and /api/v1/status (status_page.h).
 *
 * Rendered per request from the snapshot, one page of the job table at a
 * time (SVC_PAGE_ROWS rows), so a workflow of 100 000 jobs loads as fast
 * as one of ten. The DAG is drawn only up to SVC_GRAPH_MAX_JOBS jobs; past
 * that the page says so. The colours are render.c's (`graph --result`). */
#include "status_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph_svg.h"
#include "jsonw.h"

static const struct {
    const char *fill, *stroke;
} colour[] = {
    {"#ffffff", "#6c757d"}, /* unknown */
    {"#b7e4c7", "#2d6a4f"}, /* success */
    {"#ffe8a1", "#b08900"}, /* not_ready */
    {"#e9ecef", "#adb5bd"}, /* skipped */
    {"#f5b7b1", "#c0392b"}, /* failed */
};

const char *svc_snapshot_svg(svc_snapshot_t *p, size_t *len)
{
    if (!p->dot)
        return NULL;
    pthread_mutex_lock(&p->svg_lock);
    if (!p->svg_done) {
        p->svg = svc_graph_svg(p->dot, &p->svg_len);
        p->svg_done = true;
    }
    pthread_mutex_unlock(&p->svg_lock);
    *len = p->svg_len;
    return p->svg;
}

/* s with &, <, >, " escaped. */
static void html(FILE *f, const char *s)
{
    for (const char *c = s ? s : ""; *c; c++) {
        switch (*c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*c, f);
        }
    }
}

static void utc(FILE *f, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char iso[32], text[32];
    gmtime_r(&t, &tm);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(f, "<time datetime=\"%s\">%s UTC</time>", iso, text);
}

static const char *outcome_class(int oc)
{
    return oc == DP_RUN_SUCCESS ? "success" : oc == DP_RUN_NOT_READY ? "not_ready" : "failed";
}

static const char style[] =
    "<style>\n"
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#212529}\n"
    "h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.2em 0 .4em}\n"
    ".badge{display:inline-block;padding:.1em .6em;border-radius:.4em;border:1px solid;font-weight:600}\n"
    "table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #dee2e6;padding:.2em .5em;"
    "text-align:left;vertical-align:top}th{background:#f1f3f5}\n"
    "dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}dd{margin:0}\n"
    ".graph{overflow:auto;max-height:70vh;border:1px solid #dee2e6;padding:.5em}.note{color:#6c757d}\n"
    ".err{font-family:monospace;white-space:pre-wrap;max-width:60em}\n";

static void status_css(FILE *f)
{
    for (int s = 0; s < 5; s++)
        fprintf(f, ".st-%s{background:%s;border-color:%s}\n", dp_status_name((dp_status_t)s), colour[s].fill,
                colour[s].stroke);
    fputs("</style>\n", f);
}

/* Reloads the page when a run starts or ends: /api/v1/status every 2 s. */
static const char script[] =
    "<script>\n"
    "(function(){var seen=document.body.dataset.state;\n"
    "function poll(){fetch('/api/v1/status',{cache:'no-store'}).then(function(r){return r.json();})"
    ".then(function(s){var now=s.run+':'+s.running+':'+s.last_run;"
    "if(now!==seen){location.reload();}}).catch(function(){}).finally(function(){setTimeout(poll,2000);});}\n"
    "setTimeout(poll,2000);})();\n"
    "</script>\n";

static void header(FILE *f, const svc_snapshot_t *p, const svc_live_t *live)
{
    fputs("<h1>", f);
    html(f, p->have_run ? p->workflow : "daggerpool watch");
    fputs("</h1>\n<dl>\n<dt>outcome</dt><dd>", f);
    if (p->have_run)
        fprintf(f, "<span id=\"outcome\" class=\"badge st-%s\">%s</span> (run %u, workflow generation %u)",
                outcome_class(p->outcome), dp_run_outcome_name((dp_run_outcome_t)p->outcome), p->run, p->generation);
    else
        fputs("<span id=\"outcome\" class=\"badge st-unknown\">no run has ended yet</span>", f);
    fputs("</dd>\n", f);
    if (live->running) {
        fprintf(f, "<dt>now</dt><dd id=\"running\">run %u under way since ", live->run);
        utc(f, live->run_started_ms);
        fputs("</dd>\n", f);
    }
    if (p->have_run) {
        fputs("<dt>last run</dt><dd id=\"last-run\">ended ", f);
        utc(f, p->ended_ms);
        fprintf(f, " after %.3f s</dd>\n<dt>next run</dt><dd id=\"next-run\">", (double)p->duration_ms / 1000.0);
        if (live->running)
            fputs("under way", f);
        else
            utc(f, p->next_run_ms);
        fputs("</dd>\n", f);
        fputs("<dt>jobs</dt><dd id=\"counts\">", f);
        for (int s = 0; s < 5; s++)
            fprintf(f, "%s<span class=\"badge st-%s\">%zu %s</span>", s ? " " : "", dp_status_name((dp_status_t)s),
                    p->status_count[s], dp_status_name((dp_status_t)s));
        fputs("</dd>\n", f);
        if (p->first_error) {
            fputs("<dt>first error</dt><dd class=\"err\" id=\"first-error\">", f);
            html(f, p->first_error);
            fputs("</dd>\n", f);
        }
        if (p->first_not_ready) {
            fputs("<dt>first not ready</dt><dd id=\"first-not-ready\">", f);
            html(f, p->first_not_ready);
            fputs("</dd>\n", f);
        }
    }
    fputs("</dl>\n", f);
}

static void frontiers(FILE *f, const svc_snapshot_t *p)
{
    if (!p->nfrontiers)
        return;
    fputs("<h2>Frontiers</h2>\n<table id=\"frontiers\"><tr><th>job</th><th>status</th><th>blocked by</th></tr>\n", f);
    size_t shown = p->nfrontiers < 100 ? p->nfrontiers : 100;
    for (size_t i = 0; i < shown; i++) {
        const svc_frontier_row_t *r = &p->frontiers[i];
        const char *st = dp_status_name((dp_status_t)r->status);
        fputs("<tr><td>", f);
        html(f, r->job);
        fprintf(f, "</td><td class=\"st-%s\">%s</td><td>", st, st);
        html(f, r->blocked_by && *r->blocked_by ? r->blocked_by : "-");
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    if (shown < p->nfrontiers)
        fprintf(f, "<p class=\"note\">the first %zu of %zu frontiers (all in /api/v1/result)</p>\n", shown,
                p->nfrontiers);
}

static void graph(FILE *f, svc_snapshot_t *p)
{
    fputs("<h2>Graph</h2>\n", f);
    size_t len = 0;
    const char *svg = svc_snapshot_svg(p, &len);
    if (svg) {
        /* The SVG's prologue (XML declaration, doctype) has no place
         * inside HTML: from its <svg element on. */
        const char *at = strstr(svg, "<svg");
        fputs("<div class=\"graph\" id=\"graph\">\n", f);
        fwrite(at ? at : svg, 1, at ? len - (size_t)(at - svg) : len, f);
        fputs("</div>\n", f);
    } else if (p->njobs > SVC_GRAPH_MAX_JOBS) {
        fprintf(f,
                "<p class=\"note\" id=\"graph-note\">The graph has %zu jobs, more than the %d this page draws; "
                "the table below lists them (<code>daggerpool graph</code> draws it offline).</p>\n",
                p->njobs, SVC_GRAPH_MAX_JOBS);
    } else {
        fputs("<p class=\"note\" id=\"graph-note\">The graph could not be drawn.</p>\n", f);
    }
}

static void duration(FILE *f, int64_t ms)
{
    if (ms < 0)
        fputs("-", f);
    else
        fprintf(f, "%.3f s", (double)ms / 1000.0);
}

static void pager(FILE *f, unsigned page, unsigned pages)
{
    if (pages <= 1)
        return;
    fprintf(f, "<p class=\"pager\">page %u of %u:", page, pages);
    if (page > 1)
        fprintf(f, " <a href=\"/?page=1\">first</a> <a href=\"/?page=%u\" rel=\"prev\">previous</a>", page - 1);
    if (page < pages)
        fprintf(f, " <a href=\"/?page=%u\" rel=\"next\">next</a> <a href=\"/?page=%u\">last</a>", page + 1, pages);
    fputs("</p>\n", f);
}

static void jobs(FILE *f, const svc_snapshot_t *p, unsigned page)
{
    fputs("<h2>Jobs</h2>\n", f);
    unsigned pages = (unsigned)((p->njobs + SVC_PAGE_ROWS - 1) / SVC_PAGE_ROWS);
    if (page < 1)
        page = 1;
    if (pages && page > pages)
        page = pages;
    size_t from = (size_t)(page - 1) * SVC_PAGE_ROWS, to = from + SVC_PAGE_ROWS;
    if (to > p->njobs)
        to = p->njobs;
    if (pages > 1)
        fprintf(f, "<p class=\"note\">jobs %zu to %zu of %zu</p>\n", from + 1, to, p->njobs);
    pager(f, page, pages);
    fputs("<table id=\"jobs\"><thead><tr><th>job</th><th>status</th><th>attempts</th><th>duration</th>"
          "<th>plugin</th><th>version</th><th>error</th></tr></thead><tbody>\n",
          f);
    for (size_t i = from; i < to; i++) {
        const svc_job_row_t *r = &p->jobs[i];
        const char *st = dp_status_name((dp_status_t)r->status);
        fputs("<tr class=\"job\" data-job=\"", f);
        html(f, r->name);
        fprintf(f, "\" data-status=\"%s\"><td>", st);
        html(f, r->name);
        fprintf(f, "</td><td class=\"status st-%s\">%s</td><td>%u</td><td>", st, st, r->attempts);
        duration(f, r->duration_ms);
        fputs("</td><td>", f);
        html(f, r->plugin);
        fputs("</td><td>", f);
        html(f, r->plugin_version);
        fputs("</td><td class=\"err\">", f);
        html(f, r->error);
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
    pager(f, page, pages);
}

char *svc_status_page(svc_snapshot_t *p, const svc_live_t *live, unsigned page, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>", f);
    html(f, p->have_run ? p->workflow : "daggerpool watch");
    fputs(" - daggerpool</title>\n", f);
    fputs(style, f);
    status_css(f);
    fprintf(f, "</head>\n<body data-state=\"%u:%s:%llu\">\n", p->have_run ? p->run : 0,
            live->running ? "true" : "false", (unsigned long long)(p->have_run ? p->ended_ms : 0));
    header(f, p, live);
    if (p->have_run) {
        frontiers(f, p);
        graph(f, p);
        jobs(f, p, page);
    }
    fputs("<p class=\"note\">Read-only. Also: <a href=\"/metrics\">/metrics</a>, <a href=\"/healthz\">/healthz</a>, "
          "<a href=\"/readyz\">/readyz</a>, <a href=\"/api/v1/result\">/api/v1/result</a>.</p>\n",
          f);
    fputs(script, f);
    fputs("</body></html>\n", f);
    bool ok = !ferror(f);
    if (fclose(f) != 0 || !ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *svc_status_json(const svc_snapshot_t *p, const svc_live_t *live, size_t *len)
{
    dp__jsonw_t w;
    dp__jsonw_init(&w, NULL, 0);
    dp__jsonw_object_open(&w);
    dp__jsonw_key_lit(&w, "workflow");
    if (p->have_run)
        dp__jsonw_string(&w, p->workflow);
    else
        dp__jsonw_null(&w);
    dp__jsonw_key_lit(&w, "run");
    dp__jsonw_int(&w, p->have_run ? p->run : 0);
    dp__jsonw_key_lit(&w, "running");
    dp__jsonw_bool(&w, live->running);
    dp__jsonw_key_lit(&w, "running_run");
    dp__jsonw_int_or_null(&w, live->running ? (int64_t)live->run : -1);
    dp__jsonw_key_lit(&w, "outcome");
    if (p->have_run)
        dp__jsonw_string(&w, dp_run_outcome_name((dp_run_outcome_t)p->outcome));
    else
        dp__jsonw_null(&w);
    dp__jsonw_key_lit(&w, "last_run");
    dp__jsonw_int_or_null(&w, p->have_run ? (int64_t)p->ended_ms : -1);
    dp__jsonw_key_lit(&w, "next_run");
    dp__jsonw_int_or_null(&w, p->have_run && !live->running ? (int64_t)p->next_run_ms : -1);
    dp__jsonw_key_lit(&w, "jobs");
    dp__jsonw_object_open(&w);
    for (int s = 0; s < 5; s++) {
        dp__jsonw_key(&w, dp_status_name((dp_status_t)s));
        dp__jsonw_int(&w, (int64_t)p->status_count[s]);
    }
    dp__jsonw_object_close(&w);
    dp__jsonw_object_close(&w);
    char *out = dp__jsonw_finish(&w) == 0 ? dp__jsonw_take(&w, len) : NULL;
    dp__jsonw_discard(&w);
    return out;
}

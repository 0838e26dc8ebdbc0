/* json_writers.c - what writing a large JSON result costs with each writer
 * that could serve as daggerpool's one JSON writer (issue 14): the
 * project's streaming writer (jsonw.c, through dp__render_json), jansson's
 * tree (build + json_dumpf + free, as render.c once did), and yajl_gen
 * (streaming; built only when Debian's libyajl-dev is installed). Each
 * writes the same document, the JSON result of an N-job run, to
 * /dev/null through a 1 MiB stdio buffer; the best of R runs is printed.
 *   json_writers [-n JOBS] [-r RUNS]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#ifdef DP_HAVE_YAJL
#include <yajl/yajl_gen.h>
#endif

#include "daggerpool/daggerpool.h"
#include "render.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static dp_outcome_t noop(dp_job_t *job, void *user)
{
    (void)user;
    dp_job_set_version(job, "1.0.0"); /* as a plugin's job reports it */
    return DP_READY;
}

static dp_result_t *run_jobs(size_t n, dp_graph_t **gp)
{
    dp_graph_t *g = dp_graph_new();
    char name[32], err[256];
    for (size_t i = 0; i < n; i++) {
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        snprintf(name, sizeof name, "j%07zu", i);
        spec.name = name;
        spec.run = noop;
        spec.plugin = "core";
        if (dp_graph_add_job(g, &spec, err, sizeof err) != DP_OK) {
            fprintf(stderr, "json_writers: %s\n", err);
            exit(1);
        }
    }
    if (dp_graph_validate(g, err, sizeof err) != DP_OK) {
        fprintf(stderr, "json_writers: %s\n", err);
        exit(1);
    }
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof err);
    if (!r) {
        fprintf(stderr, "json_writers: %s\n", err);
        exit(1);
    }
    *gp = g;
    return r;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The tree render.c built before jsonw.c (same keys, same order). */
static void with_jansson(FILE *out, const dp_result_t *r)
{
    json_t *root = json_object();
    json_object_set_new(root, "workflow", json_string("bench"));
    json_object_set_new(root, "outcome", json_string(dp_run_outcome_name(dp_result_outcome(r))));
    json_object_set_new(root, "timed_out", json_boolean(dp_result_timed_out(r)));
    json_object_set_new(root, "first_error", str_or_null(dp_result_first_error(r)));
    json_object_set_new(root, "first_not_ready", json_null());
    json_object_set_new(root, "requeue_after_ms", json_null());
    json_object_set_new(root, "duration_ms", json_integer(dp_result_duration_ms(r)));
    json_t *jobs = json_object();
    for (size_t i = 0; i < dp_result_job_count(r); i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string(dp_status_name(j->status)));
        json_object_set_new(o, "error", str_or_null(j->error));
        json_object_set_new(o, "attempts", json_integer(j->attempts));
        json_object_set_new(o, "start_ms", json_integer(j->start_ms));
        json_object_set_new(o, "duration_ms", json_integer(j->duration_ms));
        json_object_set_new(o, "plugin", str_or_null(j->plugin));
        json_object_set_new(o, "plugin_version", str_or_null(j->plugin_version));
        json_object_set_new(jobs, j->name, o);
    }
    json_object_set_new(root, "jobs", jobs);
    json_object_set_new(root, "frontiers", json_array());
    json_object_set_new(root, "boundary", json_array());
    json_dumpf(root, out, JSON_INDENT(2));
    fputc('\n', out);
    json_decref(root);
}

#ifdef DP_HAVE_YAJL
static void ystr(yajl_gen g, const char *s)
{
    if (s)
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
    else
        yajl_gen_null(g);
}

static void flush_yajl(yajl_gen g, FILE *out)
{
    const unsigned char *b;
    size_t len;
    yajl_gen_get_buf(g, &b, &len);
    fwrite(b, 1, len, out);
    yajl_gen_clear(g);
}

/* The same document through yajl_gen, beautified (its layout differs from
 * jansson's in empty containers, so it could not have kept the output). */
static void with_yajl(FILE *out, const dp_result_t *r)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_config(g, yajl_gen_indent_string, "  ");
    yajl_gen_map_open(g);
    ystr(g, "workflow");
    ystr(g, "bench");
    ystr(g, "outcome");
    ystr(g, dp_run_outcome_name(dp_result_outcome(r)));
    ystr(g, "jobs");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < dp_result_job_count(r); i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        ystr(g, j->name);
        yajl_gen_map_open(g);
        ystr(g, "status");
        ystr(g, dp_status_name(j->status));
        ystr(g, "error");
        ystr(g, j->error);
        ystr(g, "attempts");
        yajl_gen_integer(g, j->attempts);
        ystr(g, "start_ms");
        yajl_gen_integer(g, j->start_ms);
        ystr(g, "duration_ms");
        yajl_gen_integer(g, j->duration_ms);
        ystr(g, "plugin");
        ystr(g, j->plugin);
        ystr(g, "plugin_version");
        ystr(g, j->plugin_version);
        yajl_gen_map_close(g);
        if (i % 1024 == 1023)
            flush_yajl(g, out);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    flush_yajl(g, out);
    yajl_gen_free(g);
}
#endif

static void with_jsonw(FILE *out, const dp_result_t *r)
{
    dp__render_json(out, r, "bench");
}

static void measure(const char *what, void (*fn)(FILE *, const dp_result_t *), const dp_result_t *r, int runs)
{
    static char buf[1 << 20];
    double best = 0;
    for (int i = 0; i < runs; i++) {
        FILE *out = fopen("/dev/null", "w");
        setvbuf(out, buf, _IOFBF, sizeof buf);
        double t0 = now_ms();
        fn(out, r);
        fflush(out);
        double t = now_ms() - t0;
        fclose(out);
        if (i == 0 || t < best)
            best = t;
    }
    printf("%-34s %8.1f ms  (best of %d)\n", what, best, runs);
}

int main(int argc, char **argv)
{
    size_t n = 100000;
    int runs = 5, c;
    while ((c = getopt(argc, argv, "n:r:")) != -1) {
        if (c == 'n')
            n = strtoul(optarg, NULL, 10);
        else if (c == 'r')
            runs = atoi(optarg);
        else {
            fprintf(stderr, "usage: json_writers [-n JOBS] [-r RUNS]\n");
            return 2;
        }
    }
    dp_graph_t *g;
    dp_result_t *r = run_jobs(n, &g);
    dp_result_job(r, 0); /* the records are made on first use: not timed */
    printf("JSON result of %zu jobs to /dev/null:\n", n);
    measure("jsonw (streaming, dp__render_json)", with_jsonw, r, runs);
    measure("jansson (tree, dump, free)", with_jansson, r, runs);
#ifdef DP_HAVE_YAJL
    measure("yajl_gen (streaming)", with_yajl, r, runs);
#else
    printf("%-34s skipped: libyajl-dev not installed\n", "yajl_gen (streaming)");
#endif
    dp_result_free(r);
    dp_graph_free(g);
    return 0;
}

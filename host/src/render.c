/*
 * render.c - results and DAGs as text (see render.h).
 *
 * JSON is written through jsonw.c, the one JSON writer (job names and
 * error messages are arbitrary text; it escapes them); jansson only reads
 * a result back (dp__render_statuses_from_json). DOT and Mermaid have their
 * own quoting rules, handled by dot_quoted() and mermaid_label().
 */
#include "render.h"

#include "jsonw.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static int write_status(FILE *out)
{
    return fflush(out) == 0 && !ferror(out) ? DP_OK : DP_ESYS;
}

static const char *job_name(const dp_result_t *r, uint32_t id)
{
    return dp_graph_job_name(dp_result_graph(r), id);
}

/* Whether dp__text_escape leaves s as it is (printable ASCII); its length. */
static bool text_plain(const char *s, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            return false;
    *len = (size_t)(p - (const unsigned char *)s);
    return true;
}

static const char spaces[] = "                                        "; /* 40, the widest column */

/* n spaces (n may be 0). */
static void put_spaces(FILE *out, size_t n)
{
    while (n) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        fwrite(spaces, 1, k, out);
        n -= k;
    }
}

/* Prints s padded to width with control bytes and invalid UTF-8 escaped
 * (\n, \xNN): job names, errors and versions may hold any bytes, and a
 * summary must not let them forge lines or send terminal escapes. */
static void put_text(FILE *out, const char *s, int width)
{
    size_t len;
    if (text_plain(s ? s : "", &len)) { /* nothing to escape: no copy, no printf */
        fwrite(s ? s : "", 1, len, out);
        if ((int)len < width)
            put_spaces(out, (size_t)width - len);
        return;
    }
    char *e = dp__text_escape(s ? s : "");
    fprintf(out, "%-*s", width, e ? e : "?");
    free(e);
}

/* "1.5s", or "-" for a job that never started. */
static const char *fmt_ms(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        return "-";
    return dp_duration_format((uint64_t)ms, buf, len);
}

int dp__status_from_name(const char *name)
{
    static const dp_status_t all[] = {DP_STATUS_UNKNOWN, DP_STATUS_SUCCESS, DP_STATUS_NOT_READY, DP_STATUS_SKIPPED,
                                      DP_STATUS_FAILED};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, dp_status_name(all[i])) == 0)
            return (int)all[i];
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Summary                                                                   */
/* ------------------------------------------------------------------------ */

static void print_names(FILE *out, const dp_result_t *r, const dp_id_list_t *l)
{
    if (!l || l->count == 0) {
        fputs("-", out);
        return;
    }
    for (size_t i = 0; i < l->count; i++) {
        if (i)
            fputs(", ", out);
        put_text(out, job_name(r, l->ids[i]), 0);
    }
}

/* A row's middle, as "  %-9s  %8u  %9s  " would print it, into row
 * (96 bytes: the status is at most 9 bytes, the attempts 10 digits, the
 * duration under 32): one write a row instead of a printf, most of a
 * large summary's cost. Returns its length. */
static size_t row_middle(char *row, const char *status, unsigned attempts, const char *duration)
{
    size_t k = 0, len = strlen(status), dl = strlen(duration);
    char digits[12];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + attempts % 10);
        attempts /= 10;
    } while (attempts);
    row[k++] = ' ';
    row[k++] = ' ';
    memcpy(row + k, status, len);
    k += len;
    for (; len < 9; len++)
        row[k++] = ' ';
    row[k++] = ' ';
    row[k++] = ' ';
    for (size_t i = nd; i < 8; i++)
        row[k++] = ' ';
    while (nd)
        row[k++] = digits[--nd];
    row[k++] = ' ';
    row[k++] = ' ';
    for (size_t i = dl; i < 9; i++)
        row[k++] = ' ';
    memcpy(row + k, duration, dl);
    k += dl;
    row[k++] = ' ';
    row[k++] = ' ';
    return k;
}

/* A job's row in one write, when its name, plugin and version need no
 * escaping and the row fits in 512 bytes (most rows); false: nothing
 * written, the caller writes it piece by piece. */
static bool put_row_plain(FILE *out, const dp_job_result_t *j, int namew, const char *status, const char *dur)
{
    const char *plugin = j->plugin ? j->plugin : "-";
    size_t nl, pl, vl = 0;
    if (!text_plain(j->name, &nl) || !text_plain(plugin, &pl) ||
        (j->plugin_version && !text_plain(j->plugin_version, &vl)))
        return false;
    size_t pad = (int)nl < namew ? (size_t)namew - nl : 0;
    char line[512];
    if (2 + nl + pad + 96 + pl + 1 + vl + 1 > sizeof line)
        return false;
    size_t k = 0;
    line[k++] = ' ';
    line[k++] = ' ';
    memcpy(line + k, j->name, nl);
    k += nl;
    memset(line + k, ' ', pad);
    k += pad;
    k += row_middle(line + k, status, j->attempts, dur);
    memcpy(line + k, plugin, pl);
    k += pl;
    if (j->plugin_version) {
        line[k++] = ' ';
        memcpy(line + k, j->plugin_version, vl);
        k += vl;
    }
    line[k++] = '\n';
    fwrite(line, 1, k, out);
    return true;
}

int dp__render_summary(FILE *out, const dp_result_t *r, const char *workflow)
{
    size_t n = dp_result_job_count(r);
    size_t counts[5] = {0}, reused = 0;
    int namew = 3; /* "JOB" */
    for (size_t i = 0; i < n; i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        if ((unsigned)j->status < 5)
            counts[j->status]++;
        reused += j->reused;
        int len = (int)strlen(j->name);
        if (len > namew)
            namew = len;
    }
    if (namew > 40)
        namew = 40;

    char d[32];
    dp_run_outcome_t outcome = dp_result_outcome(r);
    fputs("workflow ", out);
    put_text(out, workflow ? workflow : "?", 0);
    fprintf(out, ": %s in %s (%zu jobs:", dp_run_outcome_name(outcome), fmt_ms(dp_result_duration_ms(r), d, sizeof d),
            n);
    /* Counts in the order a reader cares about: what worked, then what
     * stopped it. */
    static const dp_status_t order[] = {DP_STATUS_SUCCESS, DP_STATUS_FAILED, DP_STATUS_NOT_READY, DP_STATUS_SKIPPED,
                                        DP_STATUS_UNKNOWN};
    bool first = true;
    for (size_t k = 0; k < 5; k++)
        if (counts[order[k]]) {
            fprintf(out, "%s %zu %s", first ? "" : ",", counts[order[k]], dp_status_name(order[k]));
            if (order[k] == DP_STATUS_SUCCESS && reused)
                fprintf(out, " (%zu reused)", reused);
            first = false;
        }
    fputs(")\n\n", out);

    fprintf(out, "  %-*s  %-9s  %8s  %9s  %s\n", namew, "JOB", "STATUS", "ATTEMPTS", "DURATION", "PLUGIN");
    for (size_t i = 0; i < n; i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        /* A reused job is success; its row says it did not run. */
        const char *status = j->reused ? "reused" : dp_status_name(j->status);
        const char *dur = fmt_ms(j->duration_ms, d, sizeof d);
        if (!put_row_plain(out, j, namew, status, dur)) {
            char row[96];
            fputs("  ", out);
            put_text(out, j->name, namew);
            fwrite(row, 1, row_middle(row, status, j->attempts, dur), out);
            put_text(out, j->plugin ? j->plugin : "-", 0);
            if (j->plugin_version) {
                fputc(' ', out);
                put_text(out, j->plugin_version, 0);
            }
            fputc('\n', out);
        }
        if (j->error && j->status != DP_STATUS_SUCCESS) {
            fprintf(out, "  %-*s  error: ", namew, "");
            put_text(out, j->error, 0);
            fputc('\n', out);
        }
        if (j->reason) {
            /* Why a trigger rule ran or skipped it. */
            fprintf(out, "  %-*s  why: %s", namew, "", j->reason);
            if (j->run_if != DP_RUN_IF_ALL_SUCCESS)
                fprintf(out, " (run_if %s)", dp_run_if_name(j->run_if));
            fputc('\n', out);
        }
    }

    if (outcome != DP_RUN_SUCCESS) {
        const char *fe = dp_result_first_error(r);
        long fnr = dp_result_first_not_ready(r);
        int64_t requeue = dp_result_requeue_after_ms(r);
        fputc('\n', out);
        if (fe) {
            /* Name the job it came from when one failed with it (a timeout
             * message belongs to no job). */
            const char *who = NULL;
            for (size_t i = 0; i < n && !who; i++) {
                const dp_job_result_t *j = dp_result_job(r, i);
                if (j->status == DP_STATUS_FAILED && j->error && strcmp(j->error, fe) == 0)
                    who = j->name;
            }
            fputs("first error: ", out);
            if (who) {
                put_text(out, who, 0);
                fputs(": ", out);
            }
            put_text(out, fe, 0);
            fputc('\n', out);
        }
        if (fnr >= 0) {
            fputs("first not ready: ", out);
            put_text(out, job_name(r, (uint32_t)fnr), 0);
            fputc('\n', out);
        }
        if (requeue >= 0)
            fprintf(out, "requeue after: %s\n", dp_duration_format((uint64_t)requeue, d, sizeof d));
        if (dp_result_cleanup_after(r))
            fprintf(out, "cleanup: the final jobs ran after %s cut the run\n",
                    strcmp(dp_result_cleanup_after(r), "fail_fast") == 0 ? "fail-fast"
                    : strcmp(dp_result_cleanup_after(r), "timeout") == 0 ? "the timeout"
                                                                         : "a cancellation");

        const dp_frontier_t *fr = NULL;
        size_t nf = dp_result_frontiers(r, &fr);
        fprintf(out, "frontiers:%s\n", nf ? "" : " -");
        for (size_t i = 0; i < nf; i++) {
            fputs("  ", out);
            put_text(out, job_name(r, fr[i].job), 0);
            fprintf(out, " (%s): blocked by ", dp_status_name(fr[i].status));
            print_names(out, r, &fr[i].blocked_by);
            fputs("; subtree ", out);
            print_names(out, r, &fr[i].subtree);
            fputc('\n', out);
        }
        fputs("boundary: ", out);
        print_names(out, r, dp_result_boundary(r));
        fputc('\n', out);
    }
    return write_status(out);
}

/* ------------------------------------------------------------------------ */
/* Strings in JSON                                                           */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* JSON result                                                               */
/* ------------------------------------------------------------------------ */

static void names_array(dp__jsonw_t *w, const dp_result_t *r, const dp_id_list_t *l)
{
    dp__jsonw_array_open(w);
    for (size_t i = 0; l && i < l->count; i++)
        dp__jsonw_string(w, job_name(r, l->ids[i]));
    dp__jsonw_array_close(w);
}

/* What decided a job's waits (1.2 settings), only for a job that had them:
 * a result without them prints as before, byte for byte. */
static void job_waits(dp__jsonw_t *w, const dp_job_waits_t *wt)
{
    if (wt->polled) {
        dp__jsonw_key_lit(w, "readiness");
        dp__jsonw_object_open(w);
        dp__jsonw_key_lit(w, "probes");
        dp__jsonw_int(w, wt->readiness.probes);
        dp__jsonw_key_lit(w, "consecutive_successes");
        dp__jsonw_int(w, wt->readiness.successes);
        dp__jsonw_key_lit(w, "consecutive_failures");
        dp__jsonw_int(w, wt->readiness.failures);
        dp__jsonw_key_lit(w, "period_ms");
        dp__jsonw_int(w, (int64_t)wt->readiness.period_ms);
        dp__jsonw_object_close(w);
    }
    if (wt->has_deadline) {
        dp__jsonw_key_lit(w, "deadline_hit");
        dp__jsonw_bool(w, wt->deadline_hit);
    }
    if (wt->retry_after_ms >= 0) {
        dp__jsonw_key_lit(w, "retry_after_ms");
        dp__jsonw_int(w, wt->retry_after_ms);
    }
}

/* What decided when job i started (prio.h), only where the workflow set
 * it, so that a result of a workflow without pools or priorities reads as
 * before: its pool, the slots it took, how long it waited for them (null:
 * it never became ready), its priority when not 0. */
static void sched_members(dp__jsonw_t *w, const dp_result_t *r, size_t i)
{
    const dp_graph_t *g = dp_result_graph(r);
    unsigned slots = 0;
    const char *pool = dp_graph_job_pool(g, i, &slots);
    if (pool) {
        int64_t wait = dp_result_pool_wait_ms(r, i);
        dp__jsonw_key_lit(w, "pool");
        dp__jsonw_string(w, pool);
        dp__jsonw_key_lit(w, "pool_slots");
        dp__jsonw_int(w, slots);
        dp__jsonw_key_lit(w, "pool_wait_ms");
        dp__jsonw_int_or_null(w, wait);
    }
    int prio = dp_graph_job_priority(g, i);
    if (prio) {
        dp__jsonw_key_lit(w, "priority");
        dp__jsonw_int(w, prio);
    }
}

/* Whether s goes into a JSON string as it is (printable ASCII, no quote
 * or backslash); its length. */
static bool json_plain(const char *s, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
            return false;
    *len = (size_t)(p - (const unsigned char *)s);
    return true;
}

/* What the plain job records of a result share, laid out once for the
 * writer's indent and depth: each of the first five members' separator,
 * newline, indent and key; and the plugin's two members with the closing
 * brace, kept for the last plugin and version seen (a run's jobs share a
 * few). */
enum { RECORD_KEYS = 5, RECORD_PAD_MAX = 32 };

typedef struct records {
    bool ok; /* the writer's indent fits the layout */
    char key[RECORD_KEYS][64];
    size_t keylen[RECORD_KEYS];
    bool spaced;                  /* ": " (indented) or ":" (compact) */
    const char *plugin, *version; /* whose members tail holds, when tail_set */
    bool tail_set, tail_plain;
    char tail[320];
    size_t taillen;
} records_t;

static char *lay_member(char *p, const records_t *rs, const char *key, size_t pad)
{
    if (pad) {
        *p++ = '\n';
        memset(p, ' ', pad);
        p += pad;
    }
    *p++ = '"';
    memcpy(p, key, strlen(key));
    p += strlen(key);
    *p++ = '"';
    *p++ = ':';
    if (rs->spaced)
        *p++ = ' ';
    return p;
}

static void records_init(records_t *rs, const dp__jsonw_t *w)
{
    static const char *const keys[RECORD_KEYS] = {"status", "error", "attempts", "start_ms", "duration_ms"};
    size_t pad = (size_t)w->indent * (w->depth + 1);
    memset(rs, 0, sizeof *rs);
    rs->ok = pad <= RECORD_PAD_MAX;
    rs->spaced = w->indent != 0;
    for (size_t k = 0; rs->ok && k < RECORD_KEYS; k++) {
        char *p = rs->key[k];
        *p++ = k ? ',' : '{';
        rs->keylen[k] = (size_t)(lay_member(p, rs, keys[k], pad) - rs->key[k]);
    }
}

static char *lay_str(char *p, const char *s, size_t len)
{
    if (!s) {
        memcpy(p, "null", 4);
        return p + 4;
    }
    *p++ = '"';
    memcpy(p, s, len);
    p += len;
    *p++ = '"';
    return p;
}

/* v in decimal, or null when negative (as dp__jsonw_int_or_null). */
static char *lay_int(char *p, int64_t v)
{
    if (v < 0) {
        memcpy(p, "null", 4);
        return p + 4;
    }
    char num[24], *e = num + sizeof num, *q = e;
    uint64_t u = (uint64_t)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    memcpy(p, q, (size_t)(e - q));
    return p + (e - q);
}

/* The members "plugin" and "plugin_version" and the closing brace, laid
 * out in rs->tail; false when either needs escaping or they do not fit. */
static bool records_tail(records_t *rs, const dp__jsonw_t *w, const char *plugin, const char *version)
{
    if (rs->tail_set && plugin == rs->plugin && version == rs->version)
        return rs->tail_plain;
    size_t pad = (size_t)w->indent * (w->depth + 1), pl = 0, vl = 0;
    rs->tail_set = true;
    rs->plugin = plugin;
    rs->version = version;
    rs->tail_plain = (!plugin || json_plain(plugin, &pl)) && (!version || json_plain(version, &vl)) &&
                     pl + vl + 2 * (pad + 24) + pad + 8 <= sizeof rs->tail;
    if (!rs->tail_plain)
        return false;
    char *p = rs->tail;
    *p++ = ',';
    p = lay_str(lay_member(p, rs, "plugin", pad), plugin, pl);
    *p++ = ',';
    p = lay_str(lay_member(p, rs, "plugin_version", pad), version, vl);
    if (w->indent) { /* the closing brace at the member's own indent */
        *p++ = '\n';
        memset(p, ' ', pad - (size_t)w->indent);
        p += pad - (size_t)w->indent;
    }
    *p++ = '}';
    rs->taillen = (size_t)(p - rs->tail);
    return true;
}

/* Job i's record as one member, when it has only the members every job
 * has (no reuse, waits, pool, priority, rule or reason) and its strings
 * need no escaping (most jobs of a large run): the same bytes as the calls
 * a member each in dp__render_result_members, in one copy. False: nothing
 * written. */
static bool job_record_plain(dp__jsonw_t *w, records_t *rs, const dp_result_t *r, size_t i, const dp_job_result_t *j)
{
    const dp_graph_t *g = dp_result_graph(r);
    unsigned slots;
    size_t nl, el = 0;
    if (!rs->ok || j->reused || j->run_if != DP_RUN_IF_ALL_SUCCESS || j->continue_on_failure || j->reason ||
        dp_result_job_waits(r, i) || dp_graph_job_pool(g, i, &slots) || dp_graph_job_priority(g, i) ||
        !records_tail(rs, w, j->plugin, j->plugin_version) || !json_plain(j->name, &nl) ||
        (j->error && !json_plain(j->error, &el)))
        return false;
    char text[1024];
    const char *status = dp_status_name(j->status);
    size_t sl = strlen(status);
    if (nl + sl + el + sizeof rs->key + 3 * 24 + rs->taillen + 8 > sizeof text)
        return false;
    char *p = lay_str(text, j->name, nl);
    *p++ = ':';
    if (rs->spaced)
        *p++ = ' ';
    memcpy(p, rs->key[0], rs->keylen[0]);
    p = lay_str(p + rs->keylen[0], status, sl);
    memcpy(p, rs->key[1], rs->keylen[1]);
    p = lay_str(p + rs->keylen[1], j->error, el);
    memcpy(p, rs->key[2], rs->keylen[2]);
    p = lay_int(p + rs->keylen[2], j->attempts);
    memcpy(p, rs->key[3], rs->keylen[3]);
    p = lay_int(p + rs->keylen[3], j->start_ms);
    memcpy(p, rs->key[4], rs->keylen[4]);
    p = lay_int(p + rs->keylen[4], j->duration_ms);
    memcpy(p, rs->tail, rs->taillen);
    p += rs->taillen;
    dp__jsonw_member_text(w, text, (size_t)(p - text));
    return true;
}

void dp__render_result_members(dp__jsonw_t *w, const dp_result_t *r, const char *workflow)
{
    long fnr = dp_result_first_not_ready(r);
    dp__jsonw_key_lit(w, "workflow");
    dp__jsonw_string(w, workflow);
    dp__jsonw_key_lit(w, "outcome");
    dp__jsonw_string(w, dp_run_outcome_name(dp_result_outcome(r)));
    dp__jsonw_key_lit(w, "timed_out");
    dp__jsonw_bool(w, dp_result_timed_out(r));
    dp__jsonw_key_lit(w, "first_error");
    dp__jsonw_string(w, dp_result_first_error(r));
    dp__jsonw_key_lit(w, "first_not_ready");
    dp__jsonw_string(w, fnr >= 0 ? job_name(r, (uint32_t)fnr) : NULL);
    dp__jsonw_key_lit(w, "requeue_after_ms");
    dp__jsonw_int_or_null(w, dp_result_requeue_after_ms(r));
    dp__jsonw_key_lit(w, "duration_ms");
    dp__jsonw_int(w, dp_result_duration_ms(r));
    if (dp_result_cleanup_after(r)) {
        /* Only when final jobs ran after the run was cut. */
        dp__jsonw_key_lit(w, "cleanup_after");
        dp__jsonw_string(w, dp_result_cleanup_after(r));
    }

    dp__jsonw_key_lit(w, "jobs");
    dp__jsonw_object_open(w);
    records_t rs;
    records_init(&rs, w);
    for (size_t i = 0; i < dp_result_job_count(r); i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        if (!j) { /* the records could not be made */
            dp__jsonw_fail(w, DP_ENOMEM);
            break;
        }
        if (job_record_plain(w, &rs, r, i, j))
            continue;
        dp__jsonw_key(w, j->name);
        dp__jsonw_object_open(w);
        dp__jsonw_key_lit(w, "status");
        dp__jsonw_string(w, dp_status_name(j->status));
        dp__jsonw_key_lit(w, "error");
        dp__jsonw_string(w, j->error);
        dp__jsonw_key_lit(w, "attempts");
        dp__jsonw_int(w, j->attempts);
        /* A job that never started has no start or duration: null, not a
         * sentinel a script could mistake for a time. */
        dp__jsonw_key_lit(w, "start_ms");
        dp__jsonw_int_or_null(w, j->start_ms);
        dp__jsonw_key_lit(w, "duration_ms");
        dp__jsonw_int_or_null(w, j->duration_ms);
        dp__jsonw_key_lit(w, "plugin");
        dp__jsonw_string(w, j->plugin);
        dp__jsonw_key_lit(w, "plugin_version");
        dp__jsonw_string(w, j->plugin_version);
        /* Only on a reused job: a run without reuse writes what it always
         * wrote, byte for byte. */
        if (j->reused) {
            dp__jsonw_key_lit(w, "reused");
            dp__jsonw_bool(w, true);
        }
        const dp_job_waits_t *wt = dp_result_job_waits(r, i);
        if (wt)
            job_waits(w, wt);
        sched_members(w, r, i);
        /* Trigger rules: only where set, so that a workflow without them
         * keeps the same document. */
        if (j->run_if != DP_RUN_IF_ALL_SUCCESS) {
            dp__jsonw_key_lit(w, "run_if");
            dp__jsonw_string(w, dp_run_if_name(j->run_if));
        }
        if (j->continue_on_failure) {
            dp__jsonw_key_lit(w, "continue_on_failure");
            dp__jsonw_bool(w, true);
        }
        if (j->reason) {
            dp__jsonw_key_lit(w, "reason");
            dp__jsonw_string(w, j->reason);
        }
        dp__jsonw_object_close(w);
    }
    dp__jsonw_object_close(w);

    dp__jsonw_key_lit(w, "frontiers");
    dp__jsonw_array_open(w);
    const dp_frontier_t *fr = NULL;
    size_t nf = dp_result_frontiers(r, &fr);
    for (size_t i = 0; i < nf; i++) {
        dp__jsonw_object_open(w);
        dp__jsonw_key_lit(w, "job");
        dp__jsonw_string(w, job_name(r, fr[i].job));
        dp__jsonw_key_lit(w, "status");
        dp__jsonw_string(w, dp_status_name(fr[i].status));
        dp__jsonw_key_lit(w, "blocked_by");
        names_array(w, r, &fr[i].blocked_by);
        dp__jsonw_key_lit(w, "subtree");
        names_array(w, r, &fr[i].subtree);
        dp__jsonw_object_close(w);
    }
    dp__jsonw_array_close(w);
    dp__jsonw_key_lit(w, "boundary");
    names_array(w, r, dp_result_boundary(r));
}

int dp__render_json(FILE *out, const dp_result_t *r, const char *workflow)
{
    dp__jsonw_t w;
    dp__jsonw_init(&w, out, 2);
    dp__jsonw_object_open(&w);
    dp__render_result_members(&w, r, workflow);
    dp__jsonw_object_close(&w);
    int rc = dp__jsonw_finish(&w);
    if (rc == DP_OK && fputc('\n', out) == EOF)
        rc = DP_ESYS;
    return rc == DP_OK ? write_status(out) : rc;
}

/* ------------------------------------------------------------------------ */
/* Trace                                                                     */
/* ------------------------------------------------------------------------ */

/* Written as it goes, one span per attempt when the attempt ends, so that
 * memory does not grow with the number of attempts (a trace held whole
 * took many times its own size: bench/README.md, "Traces"). The layout is
 * compact JSON: {"traceEvents":[process_name, span, span, ...,
 * thread_name, ...], "displayTimeUnit":"ms"}. Timestamps are microseconds;
 * whole ones, since a double's shortest decimal form is noisy and nothing
 * here is sub-µs. */

static void metadata(dp__jsonw_t *w, const char *what, unsigned tid, const char *name)
{
    dp__jsonw_object_open(w);
    dp__jsonw_key_lit(w, "name");
    dp__jsonw_string(w, what);
    dp__jsonw_key_lit(w, "ph");
    dp__jsonw_string(w, "M");
    dp__jsonw_key_lit(w, "pid");
    dp__jsonw_int(w, 1);
    dp__jsonw_key_lit(w, "tid");
    dp__jsonw_int(w, tid);
    dp__jsonw_key_lit(w, "args");
    dp__jsonw_object_open(w);
    dp__jsonw_key_lit(w, "name");
    dp__jsonw_string(w, name);
    dp__jsonw_object_close(w);
    dp__jsonw_object_close(w);
}

int dp__render_trace_begin(dp__trace_out_t *t, FILE *out, const dp_graph_t *g, const char *workflow)
{
    memset(t, 0, sizeof *t);
    t->out = out;
    t->g = g;
    dp__jsonw_init(&t->w, out, 0);
    dp__jsonw_object_open(&t->w);
    dp__jsonw_key_lit(&t->w, "traceEvents");
    dp__jsonw_array_open(&t->w);
    size_t len = strlen(workflow ? workflow : "");
    char *title = malloc(len + 12);
    if (!title) {
        dp__jsonw_fail(&t->w, DP_ENOMEM);
        return DP_ENOMEM;
    }
    snprintf(title, len + 12, "daggerpool %s", workflow ? workflow : "");
    metadata(&t->w, "process_name", 0, title);
    free(title);
    return t->w.err;
}

void dp__render_trace_saw(dp__trace_out_t *t, uint64_t time_ns)
{
    if (time_ns > t->last_ns)
        t->last_ns = time_ns;
}

int dp__render_trace_span(dp__trace_out_t *t, const dp__trace_event_t *start, const dp__trace_event_t *end)
{
    dp__jsonw_t *w = &t->w;
    const char *name = dp_graph_job_name(t->g, start->job);
    uint64_t end_ns = end ? end->time_ns : t->last_ns;
    dp__render_trace_saw(t, start->time_ns);
    if (start->worker > t->max_worker)
        t->max_worker = start->worker;
    t->any = true;
    dp__jsonw_object_open(w);
    dp__jsonw_key_lit(w, "name");
    dp__jsonw_string(w, name);
    dp__jsonw_key_lit(w, "cat");
    dp__jsonw_string(w, "attempt");
    dp__jsonw_key_lit(w, "ph");
    dp__jsonw_string(w, "X");
    dp__jsonw_key_lit(w, "ts");
    dp__jsonw_int(w, (int64_t)(start->time_ns / 1000u));
    dp__jsonw_key_lit(w, "dur");
    dp__jsonw_int(w, (int64_t)((end_ns >= start->time_ns ? end_ns - start->time_ns : 0) / 1000u));
    dp__jsonw_key_lit(w, "pid");
    dp__jsonw_int(w, 1);
    dp__jsonw_key_lit(w, "tid");
    dp__jsonw_int(w, (int64_t)start->worker + 1);
    dp__jsonw_key_lit(w, "args");
    dp__jsonw_object_open(w);
    dp__jsonw_key_lit(w, "job");
    dp__jsonw_string(w, name);
    dp__jsonw_key_lit(w, "attempt");
    dp__jsonw_int(w, start->attempt);
    dp__jsonw_key_lit(w, "status");
    const char *status = end ? dp_status_name(end->status) : "unfinished";
    dp__jsonw_string(w, status ? status : "?");
    if (end && end->error) {
        dp__jsonw_key_lit(w, "error");
        dp__jsonw_string(w, end->error);
    }
    dp__jsonw_object_close(w);
    dp__jsonw_object_close(w);
    return w->err;
}

/* Pool tracks come after the workers' (tids 1..), far enough not to meet
 * them. */
#define POOL_TID0 100000u

int dp__render_trace_pool_waits(dp__trace_out_t *t, const dp_result_t *r)
{
    dp__jsonw_t *w = &t->w;
    const dp_graph_t *g = dp_result_graph(r);
    size_t np = dp_graph_pool_count(g);
    for (size_t i = 0; i < dp_result_job_count(r) && np; i++) {
        int64_t wait = dp_result_pool_wait_ms(r, i);
        const dp_job_result_t *j = dp_result_job(r, i);
        const char *pool = dp_graph_job_pool(g, i, NULL);
        if (wait <= 0 || !j || j->start_ms < 0 || !pool)
            continue;
        size_t p = 0;
        while (p < np && strcmp(dp_graph_pool_name(g, p, NULL), pool) != 0)
            p++;
        if (p < 64)
            t->pool_tracks |= (size_t)1 << p;
        int64_t start = j->start_ms - wait;
        char label[512];
        snprintf(label, sizeof label, "%s waits for pool %s", j->name, pool);
        dp__jsonw_object_open(w);
        dp__jsonw_key_lit(w, "name");
        dp__jsonw_string(w, label);
        dp__jsonw_key_lit(w, "cat");
        dp__jsonw_string(w, "pool_wait");
        dp__jsonw_key_lit(w, "ph");
        dp__jsonw_string(w, "X");
        dp__jsonw_key_lit(w, "ts");
        dp__jsonw_int(w, (start > 0 ? start : 0) * 1000);
        dp__jsonw_key_lit(w, "dur");
        dp__jsonw_int(w, wait * 1000);
        dp__jsonw_key_lit(w, "pid");
        dp__jsonw_int(w, 1);
        dp__jsonw_key_lit(w, "tid");
        dp__jsonw_int(w, (int64_t)(POOL_TID0 + p));
        dp__jsonw_key_lit(w, "args");
        dp__jsonw_object_open(w);
        dp__jsonw_key_lit(w, "job");
        dp__jsonw_string(w, j->name);
        dp__jsonw_key_lit(w, "pool");
        dp__jsonw_string(w, pool);
        dp__jsonw_key_lit(w, "pool_wait_ms");
        dp__jsonw_int(w, wait);
        dp__jsonw_object_close(w);
        dp__jsonw_object_close(w);
    }
    return w->err;
}

int dp__render_trace_end(dp__trace_out_t *t)
{
    dp__jsonw_t *w = &t->w;
    for (unsigned k = 0; t->any && k <= t->max_worker; k++) {
        char tn[32];
        snprintf(tn, sizeof tn, "worker %u", k);
        metadata(w, "thread_name", k + 1, tn);
    }
    for (size_t p = 0; p < 64; p++)
        if (t->pool_tracks & ((size_t)1 << p)) {
            char tn[300];
            const char *pname = dp_graph_pool_name(t->g, p, NULL);
            snprintf(tn, sizeof tn, "pool %s", pname ? pname : "?");
            metadata(w, "thread_name", POOL_TID0 + (unsigned)p, tn);
        }
    dp__jsonw_array_close(w);
    dp__jsonw_key_lit(w, "displayTimeUnit");
    dp__jsonw_string(w, "ms");
    dp__jsonw_object_close(w);
    int rc = dp__jsonw_finish(w);
    if (rc == DP_OK && fputc('\n', t->out) == EOF)
        rc = DP_ESYS;
    return rc == DP_OK ? write_status(t->out) : rc;
}

int dp__render_trace(FILE *out, const dp_graph_t *g, const char *workflow, const dp__trace_event_t *events, size_t n)
{
    dp__trace_out_t t;
    dp__render_trace_begin(&t, out, g, workflow);
    for (size_t i = 0; i < n; i++)
        dp__render_trace_saw(&t, events[i].time_ns);
    /* Pair each start with the first later end of the same job and
     * attempt. Events come in time order per job, so a forward scan is
     * enough; quadratic only in the number of attempts, which is small
     * next to the work they stand for. */
    for (size_t i = 0; i < n; i++) {
        if (events[i].kind != DP_EV_ATTEMPT_START)
            continue;
        const dp__trace_event_t *end = NULL;
        for (size_t k = i + 1; k < n && !end; k++)
            if (events[k].kind == DP_EV_ATTEMPT_END && events[k].job == events[i].job &&
                events[k].attempt == events[i].attempt)
                end = &events[k];
        dp__render_trace_span(&t, &events[i], end);
    }
    return dp__render_trace_end(&t);
}

/* ------------------------------------------------------------------------ */
/* DOT and Mermaid                                                           */
/* ------------------------------------------------------------------------ */

/* Fill and border per status; "unknown" stays white so it reads as "never
 * got there". */
static const struct {
    const char *fill, *stroke;
} palette[] = {
    [DP_STATUS_UNKNOWN] = {"#ffffff", "#6c757d"},   [DP_STATUS_SUCCESS] = {"#b7e4c7", "#2d6a4f"},
    [DP_STATUS_NOT_READY] = {"#ffe8a1", "#b08900"}, [DP_STATUS_SKIPPED] = {"#e9ecef", "#adb5bd"},
    [DP_STATUS_FAILED] = {"#f5b7b1", "#c0392b"},
};

static int node_status(const dp__graph_style_t *style, size_t id)
{
    if (!style || !style->status)
        return -1;
    int s = style->status[id];
    return s >= 0 && s <= DP_STATUS_FAILED ? s : -1;
}

/* s as label text: control characters and invalid UTF-8 escaped as the
 * summary escapes them (dp__text_escape: \n, \xNN), so a name can neither
 * break the DOT or Mermaid syntax nor put raw control bytes in the file.
 * s itself when nothing needs escaping, else a copy in *owned (the caller
 * frees); NULL when out of memory. */
static const char *label_text(const char *s, char **owned)
{
    size_t len;
    *owned = NULL;
    return text_plain(s, &len) ? s : (*owned = dp__text_escape(s));
}

/* s as the text of a DOT string: label_text with quotes and backslashes
 * escaped. */
static int dot_text(FILE *out, const char *s)
{
    char *e;
    const char *t = label_text(s, &e);
    if (!t)
        return DP_ENOMEM;
    for (const char *p = t; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    free(e);
    return DP_OK;
}

/* A DOT double-quoted string of s. */
static int dot_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    int rc = dot_text(out, s);
    fputc('"', out);
    return rc;
}

int dp__render_dot(FILE *out, const dp_graph_t *g, const char *workflow, const dp__graph_style_t *style)
{
    size_t n = dp_graph_job_count(g);
    fputs("digraph ", out);
    int rc = dot_quoted(out, workflow ? workflow : "workflow");
    fputs(" {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", "
          "fontname=\"Helvetica\"];\n  edge [color=\"#495057\"];\n",
          out);
    /* The pools and their slots, as the graph's label. */
    if (dp_graph_pool_count(g) && rc == DP_OK) {
        fputs("  label=\"pools:", out);
        for (size_t p = 0; p < dp_graph_pool_count(g) && rc == DP_OK; p++) {
            unsigned slots;
            const char *pname = dp_graph_pool_name(g, p, &slots);
            fputc(' ', out);
            rc = dot_text(out, pname);
            fprintf(out, "=%u", slots);
        }
        fputs("\";\n  labelloc=t;\n", out);
    }
    for (size_t i = 0; i < n && rc == DP_OK; i++) {
        const char *name = dp_graph_job_name(g, i);
        const char *type = style && style->types ? style->types[i] : NULL;
        int st = node_status(style, i);
        /* The label is "name\ntype\nstatus", with DOT's \n between the
         * parts. */
        fputs("  ", out);
        rc = dot_quoted(out, name);
        fputs(" [label=\"", out);
        if (rc == DP_OK)
            rc = dot_text(out, name);
        if (type && rc == DP_OK) {
            fputs("\\n", out);
            rc = dot_text(out, type);
        }
        unsigned slots = 0;
        const char *pool = dp_graph_job_pool(g, i, &slots);
        if (pool && rc == DP_OK) {
            fputs("\\npool ", out);
            rc = dot_text(out, pool);
            if (slots > 1)
                fprintf(out, " x%u", slots);
        }
        if (dp_graph_job_priority(g, i))
            fprintf(out, "\\npriority %d", dp_graph_job_priority(g, i));
        if (st >= 0)
            fprintf(out, "\\n%s", dp_status_name((dp_status_t)st));
        if (dp_graph_job_continue_on_failure(g, i))
            fputs("\\ncontinue_on_failure", out);
        fputc('"', out);
        if (st >= 0)
            fprintf(out, ", fillcolor=\"%s\", color=\"%s\"%s", palette[st].fill, palette[st].stroke,
                    st == DP_STATUS_SKIPPED ? ", style=\"rounded,filled,dashed\"" : "");
        fputs("];\n", out);
    }
    /* Edges point the way work flows: dependency -> dependent. */
    for (size_t i = 0; i < n && rc == DP_OK; i++) {
        const uint32_t *succ;
        size_t ns = dp_graph_succs(g, i, &succ);
        for (size_t k = 0; k < ns && rc == DP_OK; k++) {
            fputs("  ", out);
            rc = dot_quoted(out, dp_graph_job_name(g, i));
            fputs(" -> ", out);
            if (rc == DP_OK)
                rc = dot_quoted(out, dp_graph_job_name(g, succ[k]));
            /* An edge into a job with a trigger rule is dashed and says
             * the rule (red for a handler). */
            dp_run_if_t rule = dp_graph_job_run_if(g, succ[k]);
            if (rule != DP_RUN_IF_ALL_SUCCESS)
                fprintf(out, " [style=dashed, label=\"%s\"%s]", dp_run_if_name(rule),
                        rule == DP_RUN_IF_ANY_FAILED ? ", color=\"#c0392b\", fontcolor=\"#c0392b\"" : "");
            fputs(";\n", out);
        }
    }
    if (rc != DP_OK)
        return rc;
    fputs("}\n", out);
    return write_status(out);
}

/* Mermaid labels live in "...": the text escaped as the summary escapes it
 * (dp__text_escape), then the characters that would end or confuse a label
 * as Mermaid's entity codes. */
static int mermaid_label(FILE *out, const char *s)
{
    char *e;
    const char *t = label_text(s, &e);
    if (!t)
        return DP_ENOMEM;
    for (const char *p = t; *p; p++) {
        switch (*p) {
        case '"': fputs("#quot;", out); break;
        case '<': fputs("#lt;", out); break;
        case '>': fputs("#gt;", out); break;
        case '#': fputs("#35;", out); break;
        default: fputc(*p, out);
        }
    }
    free(e);
    return DP_OK;
}

int dp__render_mermaid(FILE *out, const dp_graph_t *g, const dp__graph_style_t *style)
{
    size_t n = dp_graph_job_count(g);
    bool used[DP_STATUS_FAILED + 1] = {false};
    fputs("graph TD\n", out);
    /* Node ids are n0, n1, ...: job names may hold characters that Mermaid
     * ids cannot. */
    for (size_t i = 0; i < n; i++) {
        const char *type = style && style->types ? style->types[i] : NULL;
        fprintf(out, "    n%zu[\"", i);
        if (mermaid_label(out, dp_graph_job_name(g, i)) != DP_OK)
            return DP_ENOMEM;
        if (type) {
            fputs("<br/>", out);
            if (mermaid_label(out, type) != DP_OK)
                return DP_ENOMEM;
        }
        unsigned slots = 0;
        const char *pool = dp_graph_job_pool(g, i, &slots);
        if (pool) {
            fputs("<br/>pool ", out);
            if (mermaid_label(out, pool) != DP_OK)
                return DP_ENOMEM;
            if (slots > 1)
                fprintf(out, " x%u", slots);
        }
        if (dp_graph_job_priority(g, i))
            fprintf(out, "<br/>priority %d", dp_graph_job_priority(g, i));
        int st = node_status(style, i);
        if (st >= 0) {
            fputs("<br/>", out);
            fputs(dp_status_name((dp_status_t)st), out);
            used[st] = true;
        }
        if (dp_graph_job_continue_on_failure(g, i))
            fputs("<br/>continue_on_failure", out);
        fputs("\"]\n", out);
    }
    for (size_t i = 0; i < n; i++) {
        const uint32_t *succ;
        size_t ns = dp_graph_succs(g, i, &succ);
        for (size_t k = 0; k < ns; k++) {
            /* Into a job with a trigger rule: a dotted link naming it. */
            dp_run_if_t rule = dp_graph_job_run_if(g, succ[k]);
            if (rule != DP_RUN_IF_ALL_SUCCESS)
                fprintf(out, "    n%zu -. %s .-> n%" PRIu32 "\n", i, dp_run_if_name(rule), succ[k]);
            else
                fprintf(out, "    n%zu --> n%" PRIu32 "\n", i, succ[k]);
        }
    }
    for (int s = 0; s <= DP_STATUS_FAILED; s++) {
        if (!used[s])
            continue;
        fprintf(out, "    classDef %s fill:%s,stroke:%s%s\n", dp_status_name((dp_status_t)s), palette[s].fill,
                palette[s].stroke, s == DP_STATUS_SKIPPED ? ",stroke-dasharray:4" : "");
        bool first = true;
        for (size_t i = 0; i < n; i++)
            if (node_status(style, i) == s) {
                fprintf(out, "%sn%zu", first ? "    class " : ",", i);
                first = false;
            }
        fprintf(out, " %s\n", dp_status_name((dp_status_t)s));
    }
    return write_status(out);
}

/* Appends ", name" (the first: "name") to a list of at most LIST_NAMES in
 * buf, then " and N more" once (finish_names). */
#define LIST_NAMES 10
typedef struct name_list {
    char buf[1024];
    size_t len, count;
} name_list_t;

static void list_name(name_list_t *l, const char *name)
{
    if (l->count++ < LIST_NAMES && l->len < sizeof l->buf) {
        int n = snprintf(l->buf + l->len, sizeof l->buf - l->len, "%s%s", l->len ? ", " : "", name);
        if (n > 0)
            l->len += (size_t)n < sizeof l->buf - l->len ? (size_t)n : sizeof l->buf - l->len - 1;
    }
}

static const char *finish_names(name_list_t *l)
{
    if (l->count > LIST_NAMES && l->len < sizeof l->buf)
        snprintf(l->buf + l->len, sizeof l->buf - l->len, " and %zu more", l->count - LIST_NAMES);
    return l->buf;
}

int dp__render_statuses_read(FILE *in, const char *path, const dp_graph_t *g, const char *workflow, int *status,
                             char *warn, size_t warnlen, char *err, size_t errlen)
{
    size_t n = dp_graph_job_count(g);
    for (size_t i = 0; i < n; i++)
        status[i] = -1;
    if (warn && warnlen)
        warn[0] = '\0';
    json_error_t je;
    json_t *root = json_loadf(in, 0, &je);
    if (!root) {
        if (err && errlen)
            snprintf(err, errlen,
                     "%s:%d: not a JSON result: %s; expected the file written by "
                     "`daggerpool run --json FILE`",
                     path, je.line, je.text);
        return DP_ECONFIG;
    }
    json_t *jobs = json_object_get(root, "jobs");
    if (!json_is_object(jobs)) {
        if (err && errlen)
            snprintf(err, errlen,
                     "%s: no \"jobs\" object; expected the file written by "
                     "`daggerpool run --json FILE`",
                     path);
        json_decref(root);
        return DP_ECONFIG;
    }
    const char *name;
    json_t *job;
    int rc = DP_OK;
    name_list_t *extra = calloc(1, sizeof *extra), *missing = calloc(1, sizeof *missing);
    if (!extra || !missing) {
        free(extra);
        free(missing);
        json_decref(root);
        return DP_ENOMEM;
    }
    size_t matched = 0;
    json_object_foreach(jobs, name, job)
    {
        long id = dp_graph_job_id(g, name);
        if (id < 0) {
            list_name(extra, name); /* the workflow changed since, or another one's */
            continue;
        }
        int st = dp__status_from_name(json_string_value(json_object_get(job, "status")));
        if (st < 0) {
            if (err && errlen)
                snprintf(err, errlen,
                         "%s: job \"%s\" has no valid \"status\" (one of success, not_ready, "
                         "skipped, failed, unknown)",
                         path, name);
            rc = DP_ECONFIG;
            break;
        }
        status[id] = st;
        matched++;
    }
    for (size_t i = 0; rc == DP_OK && i < n; i++)
        if (status[i] < 0)
            list_name(missing, dp_graph_job_name(g, i));
    const char *theirs = json_string_value(json_object_get(root, "workflow"));
    bool other_name = theirs && workflow && strcmp(theirs, workflow) != 0;
    char of[512] = "";
    if (other_name)
        snprintf(of, sizeof of, " (it is a result of workflow '%s')", theirs);
    if (rc == DP_OK && n && json_object_size(jobs) && !matched) {
        /* Nothing to colour: surely the wrong file. */
        if (err && errlen)
            snprintf(err, errlen,
                     "%s: none of its %zu job(s) is a job of workflow '%s'%s; expected a result of "
                     "this workflow, written by `daggerpool run WORKFLOW --json FILE`",
                     path, json_object_size(jobs), workflow ? workflow : "?", of);
        rc = DP_ECONFIG;
    } else if (rc == DP_OK && (extra->count || missing->count || other_name) && warn && warnlen) {
        /* The workflow changed since the run: what still matches is
         * coloured, and the rest said. */
        size_t w = (size_t)snprintf(warn, warnlen, "%s: the result does not match workflow '%s'%s", path,
                                    workflow ? workflow : "?", of);
        if (extra->count && w < warnlen)
            w += (size_t)snprintf(warn + w, warnlen - w, "; %zu job(s) of the result are not in the workflow: %s",
                                  extra->count, finish_names(extra));
        if (missing->count && w < warnlen)
            w += (size_t)snprintf(warn + w, warnlen - w,
                                  "; %zu job(s) of the workflow are not in the result, drawn without a status: %s",
                                  missing->count, finish_names(missing));
    }
    free(extra);
    free(missing);
    json_decref(root);
    return rc;
}

int dp__render_statuses_from_json(const char *path, const dp_graph_t *g, int *status, char *err, size_t errlen)
{
    /* O_NONBLOCK: a FIFO put at path cannot block the open; then only a
     * regular file is read. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s; expected the file written by `daggerpool run --json FILE`", path,
                     fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return DP_ECONFIG;
    }
    FILE *in = fdopen(fd, "r");
    if (!in) {
        close(fd);
        return DP_ENOMEM;
    }
    int rc = dp__render_statuses_read(in, path, g, NULL, status, NULL, 0, err, errlen);
    fclose(in);
    return rc;
}

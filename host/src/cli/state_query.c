/* state_query.c - reading the state: the jobs --resume reuses, history,
 * show; and writing a manual mark. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "jsonw.h"
#include "state_int.h"
#include "text.h"

size_t cli_state_reuse_set(cli_state_t *st, const dp_workflow_t *wf, const dp_graph_t *g, bool *reused)
{
    size_t n = dp_graph_job_count(g);
    memset(reused, 0, n * sizeof *reused);
    if (!st || !n)
        return 0;
    /* Candidates: last end success (or marked so), same definition. */
    bool *cand = calloc(n, sizeof *cand);
    uint32_t *order = malloc(n * sizeof *order), *left = calloc(n, sizeof *left);
    if (!cand || !order || !left) {
        free(cand);
        free(order);
        free(left);
        return 0;
    }
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT job, def_hash FROM job_last WHERE status = 'success'", -1, &s, NULL) ==
        SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            long id = dp_graph_job_id(g, (const char *)sqlite3_column_text(s, 0));
            if (id >= 0)
                cand[id] = (uint64_t)sqlite3_column_int64(s, 1) == cli_state_def_hash(st->def_hash, wf, g, (size_t)id);
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    /* Reused: a candidate whose dependencies are all reused (a changed job
     * and everything below it runs). Kahn's order, so each job is decided
     * after its dependencies. */
    size_t head = 0, tail = 0, count = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *d;
        left[i] = (uint32_t)dp_graph_deps(g, i, &d);
        if (!left[i])
            order[tail++] = (uint32_t)i;
    }
    while (head < tail) {
        uint32_t id = order[head++];
        const uint32_t *d;
        size_t nd = dp_graph_deps(g, id, &d);
        bool ok = cand[id];
        for (size_t k = 0; ok && k < nd; k++)
            ok = reused[d[k]];
        reused[id] = ok;
        count += ok;
        const uint32_t *su;
        size_t ns = dp_graph_succs(g, id, &su);
        for (size_t k = 0; k < ns; k++)
            if (--left[su[k]] == 0)
                order[tail++] = su[k];
    }
    free(cand);
    free(order);
    free(left);
    return count;
}

bool cli_state_resume_notes(cli_state_t *state, const dp_workflow_t *wf, console_t *con, cli_job_note_t **notes,
                            size_t *nnotes)
{
    if (!state) {
        if (con)
            console_logf(con, DP_LOG_WARN, "--resume: no state to resume from; every job runs");
        return true;
    }
    const dp_graph_t *g = dp__workflow_full_graph(wf);
    size_t n = dp_graph_job_count(g);
    bool *reused = calloc(n ? n : 1, sizeof *reused);
    if (!reused || !(*notes = calloc(n ? n : 1, sizeof **notes))) {
        free(reused);
        return false;
    }
    size_t k = cli_state_reuse_set(state, wf, g, reused);
    for (size_t i = 0; i < n; i++)
        if (reused[i])
            (*notes)[(*nnotes)++] = (cli_job_note_t){dp_graph_job_name(g, i), true, "succeeded before, unchanged"};
    free(reused);
    if (con)
        console_logf(con, DP_LOG_INFO, "--resume: %zu of %zu job(s) reused from %s", k, n, cli_state_path(state));
    return true;
}

int cli_state_mark(cli_state_t *st, const char *job, bool success, uint64_t hash, const char *who)
{
    uint64_t now = state_now_ms();
    pthread_mutex_lock(&st->mu);
    int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_stmt *s = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db, "INSERT INTO marks (at_ms, who, job, action, def_hash) VALUES (?, ?, ?, ?, ?)",
                                -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, (int64_t)now);
        sqlite3_bind_text(s, 2, who, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, job, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, success ? "success" : "clear", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, (int64_t)hash);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db,
                                success ? "INSERT INTO job_last (job, status, def_hash, run_id, marked_by, marked_ms)"
                                          " VALUES (?1, 'success', ?2, NULL, ?3, ?4) ON CONFLICT (job) DO UPDATE SET"
                                          " status = 'success', def_hash = ?2, run_id = NULL, marked_by = ?3,"
                                          " marked_ms = ?4"
                                        : "DELETE FROM job_last WHERE job = ?1",
                                -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, job, -1, SQLITE_STATIC);
        if (success) {
            sqlite3_bind_int64(s, 2, (int64_t)hash);
            sqlite3_bind_text(s, 3, who, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 4, (int64_t)now);
        }
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* "2026-12-03 13:05:14Z" of Unix ms. */
static const char *when(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", gmtime_r(&t, &tm));
    return buf;
}

int cli_state_history(cli_state_t *st, FILE *out, unsigned last)
{
    sqlite3_stmt *s = NULL;
    /* Newest last, as a log reads; `last` bounds it from the end. */
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT id, command, start_ms, end_ms, outcome, jobs, success, failed, not_ready,"
                                " skipped, unknown, reused FROM (SELECT * FROM runs ORDER BY id DESC LIMIT ?)"
                                " ORDER BY id",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(s, 1, last ? (int64_t)last : -1);
    char buf[64], d[32];
    fprintf(out, "%-6s %-20s %-9s %-9s %6s %7s %6s %9s %7s %7s %6s  %s\n", "RUN", "START", "DURATION", "OUTCOME",
            "JOBS", "SUCCESS", "FAILED", "NOT_READY", "SKIPPED", "UNKNOWN", "REUSED", "COMMAND");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t start = sqlite3_column_int64(s, 2);
        bool ended = sqlite3_column_type(s, 3) != SQLITE_NULL;
        const char *outcome = (const char *)sqlite3_column_text(s, 4);
        if (ended)
            dp_duration_format((uint64_t)(sqlite3_column_int64(s, 3) - start), d, sizeof d);
        fprintf(out, "%-6lld %-20s %-9s %-9s %6lld", (long long)sqlite3_column_int64(s, 0),
                when(start, buf, sizeof buf), ended ? d : "-", outcome ? outcome : "running",
                (long long)sqlite3_column_int64(s, 5));
        if (ended)
            fprintf(out, " %7lld %6lld %9lld %7lld %7lld %6lld", (long long)sqlite3_column_int64(s, 6),
                    (long long)sqlite3_column_int64(s, 7), (long long)sqlite3_column_int64(s, 8),
                    (long long)sqlite3_column_int64(s, 9), (long long)sqlite3_column_int64(s, 10),
                    (long long)sqlite3_column_int64(s, 11));
        else
            fprintf(out, " %7s %6s %9s %7s %7s %6s", "-", "-", "-", "-", "-", "-");
        fprintf(out, "  %s\n", (const char *)sqlite3_column_text(s, 1));
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return rc;
    rc = sqlite3_prepare_v2(st->db, "SELECT at_ms, who, job, action FROM marks ORDER BY id", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    bool first = true;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (first)
            fputs("\nMARKS\n", out);
        first = false;
        const char *action = (const char *)sqlite3_column_text(s, 3);
        char *job = dp__text_escape((const char *)sqlite3_column_text(s, 2));
        char *who = dp__text_escape((const char *)sqlite3_column_text(s, 1));
        fprintf(out, "%s  %s %s %s\n", when(sqlite3_column_int64(s, 0), buf, sizeof buf), who ? who : "?",
                strcmp(action, "success") == 0 ? "marked success:" : "cleared:", job ? job : "?");
        free(job);
        free(who);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int cli_state_show(cli_state_t *st, FILE *out, int64_t run, bool json)
{
    sqlite3_stmt *s = NULL;
    int rc;
    if (run <= 0) {
        rc = sqlite3_prepare_v2(st->db, "SELECT max(id) FROM runs", -1, &s, NULL);
        if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
            run = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        s = NULL;
        if (run <= 0)
            return SQLITE_NOTFOUND;
    }
    if (json) {
        /* version 1 kept the text itself; 2 a zstd frame of it where
         * encoding says 'zstd' */
        rc = sqlite3_prepare_v2(st->db,
                                st->version >= 2 ? "SELECT json, encoding, size FROM run_results WHERE run_id = ?"
                                                 : "SELECT json, NULL, NULL FROM run_results WHERE run_id = ?",
                                -1, &s, NULL);
        if (rc != SQLITE_OK)
            return rc;
        sqlite3_bind_int64(s, 1, run);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const void *data = sqlite3_column_blob(s, 0);
            size_t len = (size_t)sqlite3_column_bytes(s, 0);
            const char *enc = (const char *)sqlite3_column_text(s, 1);
            char *text = NULL;
            if (enc && strcmp(enc, "zstd") == 0) {
                int64_t size = sqlite3_column_int64(s, 2);
                text = size >= 0 ? state_decompress(data, len, (size_t)size) : NULL;
                data = text;
                len = (size_t)size;
                rc = text ? SQLITE_OK : SQLITE_CORRUPT;
            } else {
                rc = enc ? SQLITE_CORRUPT : SQLITE_OK; /* an encoding this daggerpool does not know */
            }
            if (rc == SQLITE_OK)
                rc = fwrite(data, 1, len, out) == len ? SQLITE_OK : SQLITE_IOERR;
            free(text);
        } else {
            rc = rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
        }
        sqlite3_finalize(s);
        return rc;
    }
    rc = sqlite3_prepare_v2(st->db,
                            "SELECT command, pid, host, start_ms, end_ms, outcome, first_error, jobs, success, failed,"
                            " not_ready, skipped, unknown, reused FROM runs WHERE id = ?",
                            -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(s, 1, run);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
    }
    char buf[64], d[32];
    int64_t start = sqlite3_column_int64(s, 3);
    bool ended = sqlite3_column_type(s, 4) != SQLITE_NULL;
    const char *outcome = (const char *)sqlite3_column_text(s, 5);
    fprintf(out, "run %lld (%s, pid %lld on %s)\n", (long long)run, (const char *)sqlite3_column_text(s, 0),
            (long long)sqlite3_column_int64(s, 1), (const char *)sqlite3_column_text(s, 2));
    fprintf(out, "started  %s\n", when(start, buf, sizeof buf));
    if (ended)
        fprintf(out, "duration %s\n", dp_duration_format((uint64_t)(sqlite3_column_int64(s, 4) - start), d, sizeof d));
    fprintf(out, "outcome  %s\n", outcome ? outcome : "running");
    if (ended)
        fprintf(out,
                "jobs     %lld: %lld success (%lld reused), %lld failed, %lld not_ready, %lld skipped, %lld "
                "unknown\n",
                (long long)sqlite3_column_int64(s, 7), (long long)sqlite3_column_int64(s, 8),
                (long long)sqlite3_column_int64(s, 13), (long long)sqlite3_column_int64(s, 9),
                (long long)sqlite3_column_int64(s, 10), (long long)sqlite3_column_int64(s, 11),
                (long long)sqlite3_column_int64(s, 12));
    if (sqlite3_column_type(s, 6) != SQLITE_NULL) {
        char *e = dp__text_escape((const char *)sqlite3_column_text(s, 6));
        fprintf(out, "first error: %s\n", e ? e : "?");
        free(e);
    }
    sqlite3_finalize(s);
    rc = sqlite3_prepare_v2(st->db,
                            "SELECT job, status, reused, attempts, duration_ms, error,"
                            " CASE WHEN reused THEN NULL ELSE coalesce(plugin_version, (SELECT version FROM"
                            " run_plugins p WHERE p.run_id = j.run_id AND p.plugin = j.plugin)) END"
                            " FROM run_jobs j WHERE run_id = ? ORDER BY job",
                            -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(s, 1, run);
    fputs("jobs recorded (a job not listed did not run):\n", out);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char *job = dp__text_escape((const char *)sqlite3_column_text(s, 0));
        fprintf(out, "  %-10s %s", sqlite3_column_int(s, 2) ? "reused" : (const char *)sqlite3_column_text(s, 1),
                job ? job : "?");
        free(job);
        if (!sqlite3_column_int(s, 2) && sqlite3_column_type(s, 4) != SQLITE_NULL)
            fprintf(out, " (%s, %d attempt%s)", dp_duration_format((uint64_t)sqlite3_column_int64(s, 4), d, sizeof d),
                    sqlite3_column_int(s, 3), sqlite3_column_int(s, 3) == 1 ? "" : "s");
        if (sqlite3_column_type(s, 6) != SQLITE_NULL)
            fprintf(out, " [%s]", (const char *)sqlite3_column_text(s, 6));
        if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
            char *e = dp__text_escape((const char *)sqlite3_column_text(s, 5));
            fprintf(out, ": %s", e ? e : "?");
            free(e);
        }
        fputc('\n', out);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

size_t cli_state_expected_durations(cli_state_t *st, const dp_workflow_t *wf, dp_graph_t *g)
{
    if (!st || !dp_graph_job_count(g))
        return 0;
    size_t n = 0, ng = dp_graph_job_count(g);
    /* The key of the files, kept for cli_state_run_begin, which comes next. */
    st->pre_keyed = state_run_key(st, wf, g, st->pre_key);
    st->pre_wf = wf;
    st->pre_g = g;
    unsigned char *cache = st->pre_keyed ? state_cache_read(st, st->pre_key, ng) : NULL;
    if (cache) { /* what the last run kept of its ends, by id (state_cache.c) */
        for (size_t i = 0; i < ng; i++) {
            uint64_t d = state_cache_duration(cache, i);
            if (d && dp_graph_set_expected_ms(g, i, d - 1) == DP_OK)
                n++;
        }
        free(cache);
        return n;
    }
    sqlite3_stmt *s = NULL;
    state_rec_t rec = {0};
    pthread_mutex_lock(&st->mu);
    /* The batches of the last run that ended, read here (state_ends.c):
     * the view (run_jobs) would parse each record again per column. */
    if (sqlite3_prepare_v2(st->db,
                           "SELECT ends FROM run_ends WHERE run_id = (SELECT max(id) FROM runs WHERE end_ms IS NOT "
                           "NULL) ORDER BY id",
                           -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            const char *p = (const char *)sqlite3_column_text(s, 0);
            const char *end = p + sqlite3_column_bytes(s, 0);
            while (p && (p = state_ends_next(p, end, &rec))) {
                if (rec.status != DP_STATUS_SUCCESS || rec.reused || rec.duration_ms < 0)
                    continue;
                long id = state_job_id(g, ng, rec.name.p, rec.id);
                if (id >= 0 && dp_graph_set_expected_ms(g, (size_t)id, (uint64_t)rec.duration_ms) == DP_OK)
                    n++;
            }
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    free(rec.name.p);
    return n;
}

char *cli_state_runs_json(cli_state_t *st, unsigned last, size_t *len)
{
    if (!st)
        return NULL;
    dp__jsonw_t w;
    dp__jsonw_init(&w, NULL, 0);
    dp__jsonw_object_open(&w);
    dp__jsonw_key_lit(&w, "runs");
    dp__jsonw_array_open(&w);
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->mu);
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT id, command, start_ms, end_ms, outcome, first_error, jobs, success, failed,"
                                " not_ready, skipped, unknown, reused FROM (SELECT * FROM runs ORDER BY id DESC"
                                " LIMIT ?) ORDER BY id",
                                -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, last ? (int64_t)last : -1);
        static const char *const counts[] = {"success", "failed", "not_ready", "skipped", "unknown", "reused"};
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            bool ended = sqlite3_column_type(s, 3) != SQLITE_NULL;
            int64_t start = sqlite3_column_int64(s, 2), end = sqlite3_column_int64(s, 3);
            dp__jsonw_object_open(&w);
            dp__jsonw_key_lit(&w, "id");
            dp__jsonw_int(&w, sqlite3_column_int64(s, 0));
            dp__jsonw_key_lit(&w, "command");
            dp__jsonw_string(&w, (const char *)sqlite3_column_text(s, 1));
            dp__jsonw_key_lit(&w, "start_ms");
            dp__jsonw_int(&w, start);
            dp__jsonw_key_lit(&w, "end_ms");
            dp__jsonw_int_or_null(&w, ended ? end : -1);
            dp__jsonw_key_lit(&w, "duration_ms");
            dp__jsonw_int_or_null(&w, ended ? end - start : -1);
            dp__jsonw_key_lit(&w, "outcome"); /* null while the run is under way */
            dp__jsonw_string(&w, (const char *)sqlite3_column_text(s, 4));
            dp__jsonw_key_lit(&w, "first_error");
            dp__jsonw_string(&w, (const char *)sqlite3_column_text(s, 5));
            dp__jsonw_key_lit(&w, "jobs");
            dp__jsonw_int(&w, sqlite3_column_int64(s, 6));
            for (int k = 0; k < 6; k++) {
                dp__jsonw_key(&w, counts[k]);
                dp__jsonw_int_or_null(
                    &w, sqlite3_column_type(s, 7 + k) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 7 + k));
            }
            dp__jsonw_object_close(&w);
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    dp__jsonw_array_close(&w);
    dp__jsonw_object_close(&w);
    char *text = rc == SQLITE_DONE && dp__jsonw_finish(&w) == 0 ? dp__jsonw_take(&w, len) : NULL;
    dp__jsonw_discard(&w);
    if (text) {
        text[*len] = '\n'; /* over the NUL: the writer reserved it */
        (*len)++;
    }
    return text;
}

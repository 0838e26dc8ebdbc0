/* state_cache.c - what a run of an unchanged workflow file reads instead of
 * job_last and the last run's ends (docs/state.md, "def_hashes").
 *
 * A run starts by reading two things by job name: job_last (the writer
 * writes a job's end there only where it changes the row) and the
 * durations of the last run's successes (they weight the critical path).
 * On the 100 000-job benchmark workflow that was 100 000 rows and 6 MB of
 * ends parsed, ~30 ms of a run's CPU (bench/README.md, "State"). At its end
 * a run of the file's whole graph keeps both, by job id, as one blob in
 * def_hashes, under a key that names everything they depend on:
 *
 *   "ends FILES RUN MARK"
 *
 * FILES the key of the workflow's files (cli_state_defs_key: the same
 * bytes give the same graph, the same ids), RUN the id of the run that
 * wrote it and MARK the id of the last `mark`. The next run reads it only
 * when RUN is still the state's last run and MARK its last mark: any
 * other run (a targeted one, a killed one whose ends were folded into
 * job_last, a refused one) or mark since, by this daggerpool or an older
 * one, changes the key it looks for, and it reads job_last and the ends
 * as before. Per job, CACHE_REC bytes: job_last's code (state_int.h:
 * `last`), its definition hash (8 bytes, little-endian), and 1 + the
 * duration in ms of the job's success in that run (8 bytes; 0: none, as
 * for a job reused, failed or not run). */
#include <stdlib.h>

#include "config.h"
#include "state_int.h"

#define CACHE_REC 17

/* The state's last run and last mark, as the key names them. */
static const char cache_key_sql[] =
    "'ends ' || ?1 || ' ' || ifnull((SELECT max(id) FROM runs), 0) || ' ' || ifnull((SELECT max(id) FROM marks), 0)";

bool state_run_key(const cli_state_t *st, const dp_workflow_t *wf, const dp_graph_t *g,
                   char key[CLI_STATE_DEFS_KEY_LEN + 1])
{
    return wf && g == dp__workflow_full_graph(wf) && cli_state_defs_key(st->def_hash, wf, dp_graph_job_count(g), key);
}

unsigned char *state_cache_read(cli_state_t *st, const char *key, size_t njobs)
{
    unsigned char *b = NULL;
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->mu);
    char sql[320];
    snprintf(sql, sizeof sql, "SELECT hashes FROM def_hashes WHERE key = (%s) AND jobs = ?2", cache_key_sql);
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)njobs);
        if (sqlite3_step(s) == SQLITE_ROW && (size_t)sqlite3_column_bytes(s, 0) == njobs * CACHE_REC && njobs &&
            (b = malloc(njobs * CACHE_REC)) != NULL)
            memcpy(b, sqlite3_column_blob(s, 0), njobs * CACHE_REC);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return b;
}

void state_cache_last(const unsigned char *cache, size_t id, unsigned char *last, uint64_t *hash)
{
    const unsigned char *p = cache + id * CACHE_REC;
    *last = p[0];
    *hash = state_get_le64(p + 1);
}

uint64_t state_cache_duration(const unsigned char *cache, size_t id)
{
    return state_get_le64(cache + id * CACHE_REC + 9);
}

int state_cache_keep(cli_state_t *st)
{
    if (!st->keyed || !st->njobs)
        return SQLITE_OK;
    unsigned char *b = malloc(st->njobs * CACHE_REC);
    if (!b)
        return SQLITE_OK; /* the next run reads job_last and the ends */
    for (size_t i = 0; i < st->njobs; i++) {
        unsigned char *p = b + i * CACHE_REC;
        p[0] = st->last[i];
        state_put_le64(p + 1, st->last_hash[i]);
        state_put_le64(p + 9, st->dur[i]);
    }
    /* One row of this kind: the key of the run before goes with it. */
    int rc = sqlite3_exec(st->db, "DELETE FROM def_hashes WHERE key LIKE 'ends %'", NULL, NULL, NULL);
    sqlite3_stmt *s = NULL;
    char sql[320];
    snprintf(sql, sizeof sql, "INSERT INTO def_hashes (key, jobs, hashes) VALUES ((%s), ?2, ?3)", cache_key_sql);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, st->key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)st->njobs);
        sqlite3_bind_blob64(s, 3, b, st->njobs * CACHE_REC, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
    }
    sqlite3_finalize(s);
    free(b);
    return rc;
}

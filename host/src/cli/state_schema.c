/* state_schema.c - the state file's schema and its migrations
 * (docs/state.md, "Schema").
 *
 * PRAGMA user_version is the schema version; migrations[v] takes a file
 * from version v to v + 1, all of them in one transaction, so that a file
 * is at one version or the next, never between. A file whose version is
 * newer than CLI_STATE_SCHEMA_VERSION was written by a newer daggerpool
 * and is refused unread (state.c). A new version is one more entry here,
 * its statements ALTER or CREATE only what it adds, and docs/state.md
 * describes it. */
#include <sqlite3.h>
#include <stdio.h>

#include "state_schema.h"

/* Version 0 (an empty file) to 1. Times are Unix milliseconds; job times
 * within a run are milliseconds from the run's start, as in the JSON. */
static const char v1[] =
    /* workflow_name, workflow_file: whose state this is (state.c checks
     * it); created_ms. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    /* The library's store, written through on every change. */
    "CREATE TABLE store (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
    /* One row per run; outcome NULL while the run is live, 'crashed' when
     * the process died without ending it (found at the next open). */
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY, command TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,"
    "  start_ms INTEGER NOT NULL, end_ms INTEGER, outcome TEXT, first_error TEXT,"
    "  jobs INTEGER NOT NULL, success INTEGER, failed INTEGER, not_ready INTEGER, skipped INTEGER,"
    "  unknown INTEGER, reused INTEGER NOT NULL DEFAULT 0);"
    /* The result's JSON text, as `run --json` wrote it (its own table: the
     * text is large, and history never reads it). */
    "CREATE TABLE run_results (run_id INTEGER PRIMARY KEY REFERENCES runs(id), json TEXT NOT NULL);"
    /* Each job that ended in a run (or was reused, or skipped); a job that
     * has no row in a run did not run there (unknown). A rowid table
     * appended to as jobs end (a run's rows are inserted in the order the
     * jobs ended), found by run through its index. plugin_version is NULL
     * where the run's run_plugins row gives it (every job of that plugin
     * ran one version); def_hash is the definition hash as a signed 64-bit
     * integer. */
    "CREATE TABLE run_jobs ("
    "  run_id INTEGER NOT NULL, job TEXT NOT NULL, status TEXT NOT NULL,"
    "  reused INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, start_ms INTEGER,"
    "  duration_ms INTEGER, error TEXT, plugin TEXT, plugin_version TEXT, def_hash INTEGER NOT NULL);"
    "CREATE INDEX run_jobs_run ON run_jobs (run_id);"
    /* The plugin versions a run's jobs ran on, one row per plugin whose
     * jobs all ran one version. */
    "CREATE TABLE run_plugins (run_id INTEGER NOT NULL, plugin TEXT NOT NULL, version TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, plugin)) WITHOUT ROWID;"
    /* Each job's last end (success, failed or not_ready) or manual mark:
     * what --resume reads. run_id: the run that last changed the row.
     * Kept whatever the retention removes. */
    "CREATE TABLE job_last ("
    "  job TEXT PRIMARY KEY, status TEXT NOT NULL, def_hash INTEGER NOT NULL, run_id INTEGER,"
    "  marked_by TEXT, marked_ms INTEGER) WITHOUT ROWID;"
    /* Manual overrides (`daggerpool mark`), for history. */
    "CREATE TABLE marks ("
    "  id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, who TEXT NOT NULL, job TEXT NOT NULL,"
    "  action TEXT NOT NULL, def_hash INTEGER);";

/* Version 1 to 2: a run's job ends as batches instead of a row per job
 * (bench/README.md, "State": 100 000 rows per run cost more CPU than the
 * run), and the result's JSON compressed.
 *
 * run_ends: one row per batch the writer committed (state_ends.c), in
 * the order committed; each a JSON array of records [job, status (the
 * dp_status_t value: 0 unknown, 1 success, 2 not_ready, 3 skipped, 4
 * failed), reused, attempts, start_ms, duration_ms, error, plugin,
 * def_hash]. run_job_versions: the version of each job of a plugin swapped
 * during the run (what run_jobs.plugin_version held). run_jobs stays, as a
 * view with version 1's columns, so that a query of version 1 reads the
 * same rows. run_results.encoding: NULL where json is the text itself
 * (every row of version 1), 'zstd' where it is a zstd frame of it;
 * size: the text's length. def_hashes: the definition hashes of the
 * workflow's jobs as last computed, under the key of the files they were
 * computed from (cli_state_defs_key): 8 bytes each, little-endian, in the
 * order of the file's graph; a run of an unchanged file reads them instead
 * of hashing every job again. */
static const char v2[] =
    "CREATE TABLE run_ends (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, ends TEXT NOT NULL);"
    "CREATE INDEX run_ends_run ON run_ends (run_id);"
    "CREATE TABLE run_job_versions (run_id INTEGER NOT NULL, job TEXT NOT NULL, version TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, job)) WITHOUT ROWID;"
    /* version 1's rows, each run's in the order they were inserted */
    "INSERT INTO run_ends (run_id, ends)"
    "  SELECT run_id, json_group_array(json_array(job,"
    "    CASE status WHEN 'success' THEN 1 WHEN 'not_ready' THEN 2 WHEN 'skipped' THEN 3"
    "      WHEN 'failed' THEN 4 ELSE 0 END,"
    "    reused, attempts, start_ms, duration_ms, error, plugin, def_hash))"
    "  FROM (SELECT * FROM run_jobs ORDER BY run_id, rowid) GROUP BY run_id ORDER BY run_id;"
    "INSERT OR REPLACE INTO run_job_versions (run_id, job, version)"
    "  SELECT run_id, job, plugin_version FROM run_jobs WHERE plugin_version IS NOT NULL;"
    "DROP TABLE run_jobs;"
    "CREATE VIEW run_jobs (run_id, job, status, reused, attempts, start_ms, duration_ms, error, plugin,"
    "  plugin_version, def_hash) AS"
    "  SELECT e.run_id, json_extract(j.value, '$[0]'),"
    "    CASE json_extract(j.value, '$[1]') WHEN 1 THEN 'success' WHEN 2 THEN 'not_ready'"
    "      WHEN 3 THEN 'skipped' WHEN 4 THEN 'failed' ELSE 'unknown' END,"
    "    json_extract(j.value, '$[2]'), json_extract(j.value, '$[3]'), json_extract(j.value, '$[4]'),"
    "    json_extract(j.value, '$[5]'), json_extract(j.value, '$[6]'), json_extract(j.value, '$[7]'),"
    "    (SELECT version FROM run_job_versions v WHERE v.run_id = e.run_id"
    "      AND v.job = json_extract(j.value, '$[0]')),"
    "    json_extract(j.value, '$[8]')"
    "  FROM run_ends e, json_each(e.ends) j;"
    "ALTER TABLE run_results ADD COLUMN encoding TEXT;"
    "ALTER TABLE run_results ADD COLUMN size INTEGER;"
    "CREATE TABLE def_hashes (key TEXT NOT NULL, jobs INTEGER NOT NULL, hashes BLOB NOT NULL);";

/* Version 2 to 3: meta `def_hash`, the definition hash version of the
 * file's hashes (state_hash.c). A file made before it keeps version 1,
 * so that its recorded hashes still match and --resume reuses what it
 * reused before; a new file gets CLI_STATE_DEF_HASH_NEW (state.c). */
static const char v3[] = "INSERT OR IGNORE INTO meta (key, value) VALUES ('def_hash', '1');";

static const char *const migrations[] = {v1, v2, v3};

_Static_assert(sizeof migrations / sizeof migrations[0] == CLI_STATE_SCHEMA_VERSION,
               "one migration per schema version");

int cli_state_schema_migrate(sqlite3 *db, int from, char *err, size_t errlen)
{
    if (from >= CLI_STATE_SCHEMA_VERSION)
        return SQLITE_OK;
    char *msg = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
    for (int v = from; rc == SQLITE_OK && v < CLI_STATE_SCHEMA_VERSION; v++)
        rc = sqlite3_exec(db, migrations[v], NULL, NULL, &msg);
    if (rc == SQLITE_OK) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d", CLI_STATE_APP_ID,
                 CLI_STATE_SCHEMA_VERSION);
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_free(msg);
    return rc;
}

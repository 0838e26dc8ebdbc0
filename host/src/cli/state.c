/* state.c - opening the command's state file (docs/state.md): its
 * location, the lock (state_lock.c), the checks that refuse a file that is
 * not ours to write (corrupt, foreign, newer, another workflow's), the
 * schema (state_schema.c), and the runs a killed process left open.
 *
 * What cannot be written (a read-only directory or file, a full disk) is
 * not the user's mistake in the run: one warning, and the run goes on
 * without state. What would be lost or misread if written (a file that is
 * not a daggerpool state, one of a newer schema, one of another workflow)
 * is refused before anything runs, naming the file and the fix, and left
 * as it is. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "state_int.h"
#include "state_lock.h"
#include "state_schema.h"

uint64_t state_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void warnf(cli_state_t *st, const char *cmd, console_t *con, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void warnf(cli_state_t *st, const char *cmd, console_t *con, const char *fmt, ...)
{
    (void)st;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (con)
        console_logf(con, DP_LOG_WARN, "%s", msg);
    else
        cli_errorf(cmd, "warning: %s", msg);
}

void state_broken(cli_state_t *st, const char *what, int rc)
{
    if (st->broken)
        return;
    st->broken = true;
    warnf(st, st->cmd, st->con, "state %s: cannot %s (%s); the rest of this run is not recorded", st->path, what,
          sqlite3_errstr(rc));
}

int cli_state_flag(const char *cmd, int opt, const char *arg, cli_state_flags_t *f)
{
    switch (opt) {
    case CLI_STATE_OPT_STATE:
        if (!*arg)
            return cli_usage_error(cmd, "--state '': name a file");
        f->path = arg;
        break;
    case CLI_STATE_OPT_NO_STATE: f->off = true; break;
    case CLI_STATE_OPT_WAIT: f->wait = true; break;
    case CLI_STATE_OPT_RESUME: f->resume = true; break;
    case CLI_STATE_OPT_KEEP_RUNS:
        if (!cli_parse_uint(arg, 0, 1000000000u, &f->keep_runs))
            return cli_usage_error(cmd, "--keep-runs %s: expected a number of runs (0: keep all)", arg);
        f->keep_set = true;
        break;
    }
    if (f->off && (f->path || f->resume))
        return cli_usage_error(cmd, "--no-state and %s: the one excludes the other", f->path ? "--state" : "--resume");
    return -1;
}

char *cli_state_default_path(const char *wf_file)
{
    const char *slash = strrchr(wf_file, '/');
    const char *base = slash ? slash + 1 : wf_file;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    /* The file's absolute name, hashed: two workflow files of one base
     * name in two directories, run from here, get a state each (neither
     * refused as the other's, nor locked out by it). */
    char *abs = realpath(wf_file, NULL);
    const char *key = abs ? abs : wf_file;
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    free(abs);
    size_t len = sizeof ".daggerpool/" + n + sizeof "-12345678.db";
    char *p = malloc(len);
    if (p)
        snprintf(p, len, ".daggerpool/%.*s-%08x.db", (int)n, base, (unsigned)h);
    return p;
}

int cli_state_def_hash_version(const cli_state_t *st)
{
    return st->def_hash;
}

const char *cli_state_path(const cli_state_t *st)
{
    return st ? st->path : NULL;
}

sqlite3 *cli_state_db(cli_state_t *st)
{
    return st ? st->db : NULL;
}

/* Errors of SQLite that mean "cannot write here" rather than "this file is
 * not what it should be". */
static bool unwritable(int rc)
{
    int prim = rc & 0xff;
    return prim == SQLITE_READONLY || prim == SQLITE_CANTOPEN || prim == SQLITE_IOERR || prim == SQLITE_FULL ||
           prim == SQLITE_PERM || prim == SQLITE_BUSY || prim == SQLITE_LOCKED;
}

static int64_t pragma_int(sqlite3 *db, const char *sql, int *rc)
{
    sqlite3_stmt *s = NULL;
    int64_t v = 0;
    *rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (*rc == SQLITE_OK) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        else if (step != SQLITE_DONE)
            *rc = step;
    }
    sqlite3_finalize(s);
    return v;
}

/* The value of meta key, malloc'd, or NULL. */
static char *meta_get(sqlite3 *db, const char *key)
{
    sqlite3_stmt *s = NULL;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            v = strdup((const char *)sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return v;
}

static int meta_set(sqlite3 *db, const char *key, const char *value)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    sqlite3_finalize(s);
    return rc;
}

/* What the first bytes of an existing, non-empty file say: true for an
 * SQLite database (or a file too short to tell). */
static bool looks_like_sqlite(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return true; /* unreadable: SQLite's open says why */
    char head[16];
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    return n <= 0 || (n == 16 && memcmp(head, "SQLite format 3", 16) == 0);
}

/* The workflow's file, absolute (realpath), or as given. malloc'd. */
static char *abs_file(const char *file)
{
    char *r = realpath(file, NULL);
    return r ? r : strdup(file);
}

enum { OPEN_OK = 0, OPEN_NONE = 1, OPEN_REFUSED = 2 };

/* What an opened file is, read without writing anything: an SQLite
 * database (else refused: corrupt or another kind of file), daggerpool's
 * (application_id) and of a schema this command reads. OPEN_*; said. */
static int check_kind(cli_state_t *st, const char *cmd, bool writer)
{
    sqlite3 *db = st->db;
    int rc;
    int64_t app = pragma_int(db, "PRAGMA application_id", &rc);
    int64_t tables = rc == SQLITE_OK ? pragma_int(db, "SELECT count(*) FROM sqlite_master", &rc) : 0;
    int64_t version = rc == SQLITE_OK ? pragma_int(db, "PRAGMA user_version", &rc) : 0;
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT) {
            cli_errorf(cmd,
                       "state %s: %s: not a readable SQLite database (corrupt, or another kind of file); it is "
                       "left as it is; fix: move it aside (mv %s %s.bad) to start a new state, or give another "
                       "file with --state PATH, or run with --no-state",
                       st->path, sqlite3_errstr(rc), st->path, st->path);
            return OPEN_REFUSED;
        }
        if (writer && unwritable(rc)) {
            warnf(st, cmd, st->con, "state %s cannot be used (%s); running without state", st->path,
                  sqlite3_errstr(rc));
            return OPEN_NONE;
        }
        cli_errorf(cmd, "state %s: %s", st->path, sqlite3_errstr(rc));
        return OPEN_REFUSED;
    }
    if (tables > 0 && app != CLI_STATE_APP_ID) {
        cli_errorf(cmd,
                   "state %s: an SQLite database of something else (application_id %lld, not daggerpool's "
                   "%d); it is left as it is; fix: give the state another file with --state PATH, or run "
                   "with --no-state",
                   st->path, (long long)app, CLI_STATE_APP_ID);
        return OPEN_REFUSED;
    }
    if (version > CLI_STATE_SCHEMA_VERSION) {
        cli_errorf(cmd,
                   "state %s: schema version %lld, written by a newer daggerpool (this one, %s, reads up to "
                   "version %d); it is left as it is; fix: use that newer daggerpool, or give this one another "
                   "file with --state PATH, or run with --no-state",
                   st->path, (long long)version, dp_version(), CLI_STATE_SCHEMA_VERSION);
        return OPEN_REFUSED;
    }
    return OPEN_OK;
}

/* After check_kind (and, for a writer, WAL): the schema brought up to date
 * and the identity checked (or, in a new file, recorded). OPEN_*; said. */
static int check_schema_identity(cli_state_t *st, const char *cmd, const char *wf_file, const char *wf_name,
                                 bool writer)
{
    sqlite3 *db = st->db;
    int rc;
    int64_t version = pragma_int(db, "PRAGMA user_version", &rc);
    st->version = (int)version;
    if (!writer && version == 0) {
        cli_errorf(cmd, "state %s: no daggerpool state in it yet; fix: run the workflow first", st->path);
        return OPEN_REFUSED;
    }
    /* A reader reads an older version as it is (it may not write; the
     * next writer migrates it); a writer migrates it first. */
    if (version < CLI_STATE_SCHEMA_VERSION && writer) {
        char err[512];
        rc = cli_state_schema_migrate(db, (int)version, err, sizeof err);
        if (rc != SQLITE_OK) {
            if (unwritable(rc)) {
                warnf(st, cmd, st->con, "state %s cannot be written (%s); running without state", st->path, err);
                return OPEN_NONE;
            }
            cli_errorf(cmd, "state %s: cannot update its schema from version %lld: %s", st->path, (long long)version,
                       err);
            return OPEN_REFUSED;
        }
        st->version = CLI_STATE_SCHEMA_VERSION;
    }
    /* Identity: the workflow's name and file. */
    char *name = meta_get(db, "workflow_name"), *file = meta_get(db, "workflow_file");
    char *mine = abs_file(wf_file);
    int out = OPEN_OK;
    if (!name) {
        if (writer) {
            char created[32];
            snprintf(created, sizeof created, "%llu", (unsigned long long)state_now_ms());
            rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
            if (rc == SQLITE_OK)
                rc = meta_set(db, "workflow_name", wf_name);
            if (rc == SQLITE_OK)
                rc = meta_set(db, "workflow_file", mine ? mine : wf_file);
            if (rc == SQLITE_OK)
                rc = meta_set(db, "created_ms", created);
            if (rc == SQLITE_OK) { /* a new file: the current hash version */
                char v[16];
                snprintf(v, sizeof v, "%d", CLI_STATE_DEF_HASH_NEW);
                rc = meta_set(db, "def_hash", v);
            }
            if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            if (rc != SQLITE_OK) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                warnf(st, cmd, st->con, "state %s cannot be written (%s); running without state", st->path,
                      sqlite3_errstr(rc));
                out = OPEN_NONE;
            }
        }
    } else if (strcmp(name, wf_name) != 0) {
        cli_errorf(cmd,
                   "state %s belongs to workflow '%s' (%s), not to '%s' (%s); it is left as it is; fix: give "
                   "this workflow its own file with --state PATH, or run with --no-state",
                   st->path, name, file ? file : "?", wf_name, wf_file);
        out = OPEN_REFUSED;
    } else if (file && mine && strcmp(file, mine) != 0) {
        struct stat a, b;
        bool other_exists = stat(file, &a) == 0;
        if (other_exists && stat(mine, &b) == 0 && (a.st_dev != b.st_dev || a.st_ino != b.st_ino)) {
            cli_errorf(cmd,
                       "state %s belongs to the workflow file %s, not to %s (both are named '%s'); it is left as "
                       "it is; fix: give this file its own state with --state PATH, or run it from another "
                       "directory, or with --no-state",
                       st->path, file, mine, wf_name);
            out = OPEN_REFUSED;
        } else if (writer && !other_exists) {
            /* The file moved: its state follows it. */
            if (meta_set(db, "workflow_file", mine) == SQLITE_OK && st->con)
                console_logf(st->con, DP_LOG_INFO, "state %s: workflow file %s moved to %s", st->path, file, mine);
        }
    }
    free(name);
    free(file);
    free(mine);
    /* The version of its definition hashes: 1 where absent (a file of
     * schema version 2 or older, read as it is). */
    char *hv = out == OPEN_OK ? meta_get(db, "def_hash") : NULL;
    char *end = NULL;
    long v = hv ? strtol(hv, &end, 10) : 1;
    st->def_hash = (int)v;
    if (hv && (end == hv || *end || v < 1 || v > CLI_STATE_DEF_HASH_NEW)) {
        cli_errorf(cmd,
                   "state %s: definition hash version '%s', which this daggerpool (%s) does not know (it knows 1 "
                   "to %d: a newer daggerpool wrote it, or the file was edited); it is left as it is; fix: use "
                   "that newer daggerpool, or give this one another file with --state PATH, or run with "
                   "--no-state",
                   st->path, hv, dp_version(), CLI_STATE_DEF_HASH_NEW);
        out = OPEN_REFUSED;
    }
    free(hv);
    return out;
}

/* Runs a killed process left open become 'crashed'; what they recorded
 * counts for the jobs' last ends. Under the lock. */
static int close_crashed(cli_state_t *st)
{
    static const char sql[] =
        "BEGIN IMMEDIATE;"
        "INSERT INTO job_last (job, status, def_hash, run_id)"
        "  SELECT job, status, def_hash, run_id FROM run_jobs"
        "  WHERE run_id IN (SELECT id FROM runs WHERE outcome IS NULL)"
        "    AND status IN ('success', 'failed', 'not_ready') ORDER BY run_id"
        "  ON CONFLICT (job) DO UPDATE SET status = excluded.status, def_hash = excluded.def_hash,"
        "    run_id = excluded.run_id, marked_by = NULL, marked_ms = NULL"
        "  WHERE job_last.status != excluded.status OR job_last.def_hash != excluded.def_hash"
        "    OR job_last.marked_by IS NOT NULL;"
        "UPDATE runs SET outcome = 'crashed' WHERE outcome IS NULL;"
        "COMMIT;";
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* After each commit (on the committing thread, db's user): the log's size,
 * for the writer's checkpoints (state_run.c). */
static int on_wal(void *user, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    ((cli_state_t *)user)->wal_frames = frames;
    return SQLITE_OK;
}

static cli_state_t *state_new(const char *cmd, const char *path, console_t *con)
{
    cli_state_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->path = strdup(path);
    st->cmd = cmd;
    st->con = con;
    st->lock_fd = -1;
    st->keep_runs = CLI_STATE_KEEP_RUNS_DEFAULT;
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->qmu, NULL);
    pthread_cond_init(&st->qcv, NULL);
    pthread_cond_init(&st->qdone, NULL);
    if (gethostname(st->host, sizeof st->host - 1) != 0)
        snprintf(st->host, sizeof st->host, "?");
    if (!st->path) {
        cli_state_close(st);
        return NULL;
    }
    return st;
}

void cli_state_close(cli_state_t *st)
{
    if (!st)
        return;
    state_writer_stop(st);
    if (st->db) {
        /* A clean close checkpoints the WAL into the file and removes it. */
        sqlite3_close_v2(st->db);
    }
    state_lock_release(st->lock_fd, st->path);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->qmu);
    pthread_cond_destroy(&st->qcv);
    pthread_cond_destroy(&st->qdone);
    free(st->batch.p);
    free(st->path);
    free(st);
}

/* A --state that names something other than a regular file (or nothing):
 * refused; the default directory made when missing. OPEN_*. */
static int check_location(const char *cmd, const char *path, bool is_default, console_t *con, bool create)
{
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode)) {
            cli_errorf(cmd,
                       "state %s: %s, not a regular file; fix: name a file (new or a daggerpool state) with "
                       "--state PATH",
                       path, S_ISDIR(sb.st_mode) ? "a directory" : "a special file");
            return OPEN_REFUSED;
        }
        return OPEN_OK;
    }
    if (!create)
        return OPEN_OK;
    if (is_default && mkdir(".daggerpool", 0777) != 0 && errno != EEXIST) {
        if (con)
            console_logf(con, DP_LOG_WARN, "state %s: cannot make .daggerpool/ here (%s); running without state", path,
                         strerror(errno));
        else
            cli_errorf(cmd, "warning: state %s: cannot make .daggerpool/ here (%s)", path, strerror(errno));
        return OPEN_NONE;
    }
    return OPEN_OK;
}

int cli_state_open(const char *cmd, const cli_state_flags_t *f, const char *wf_file, const char *wf_name,
                   console_t *con, cli_state_t **out)
{
    *out = NULL;
    if (f->off)
        return 0;
    char *def = f->path ? NULL : cli_state_default_path(wf_file);
    const char *path = f->path ? f->path : def;
    if (!path) {
        cli_errorf(cmd, "out of memory");
        return CLI_EXIT_INVALID;
    }
    int r = check_location(cmd, path, !f->path, con, true);
    cli_state_t *st = r == OPEN_OK ? state_new(cmd, path, con) : NULL;
    free(def);
    if (r != OPEN_OK)
        return r == OPEN_REFUSED ? CLI_EXIT_INVALID : 0;
    if (!st) {
        cli_errorf(cmd, "out of memory");
        return CLI_EXIT_INVALID;
    }
    if (f->keep_set)
        st->keep_runs = f->keep_runs;
    /* One writer at a time: the lock first, then the file. */
    r = state_lock_take(cmd, st->path, f->wait, con, &st->lock_fd);
    if (r != OPEN_OK) {
        cli_state_close(st);
        return r == OPEN_REFUSED ? CLI_EXIT_INVALID : 0;
    }
    if (!looks_like_sqlite(st->path)) {
        cli_errorf(cmd,
                   "state %s: not an SQLite database (another kind of file, or a corrupt one); it is left as it "
                   "is; fix: move it aside (mv %s %s.bad) to start a new state, or give another file with "
                   "--state PATH, or run with --no-state",
                   st->path, st->path, st->path);
        cli_state_close(st);
        return CLI_EXIT_INVALID;
    }
    int rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK && sqlite3_db_readonly(st->db, "main") == 1)
        rc = SQLITE_READONLY;
    if (st->db) /* closing writes nothing either (the log stays for the next writer) */
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    if (rc == SQLITE_OK) {
        /* Nothing is written (WAL changes the file's header) before the
         * file is known to be ours. */
        r = check_kind(st, cmd, true);
        if (r != OPEN_OK) {
            cli_state_close(st);
            return r == OPEN_REFUSED ? CLI_EXIT_INVALID : 0;
        }
        sqlite3_busy_timeout(st->db, 5000);
        /* WAL: readers (history, show) beside the writer, and a commit is
         * an append. synchronous NORMAL: a commit survives the process
         * being killed (not a power cut before the next checkpoint). */
        char *msg = NULL;
        /* page_size: a new file's (an existing one keeps its own): 16 KiB,
         * a quarter of the writes of the default 4 KiB for a run's batches
         * of ends. mmap_size: the file read through a mapping, not a read
         * per page (bench/README.md, "State"). cache_size: 512 KiB, not
         * the default 2 000: the pages are read through the mapping anyway,
         * and a larger cache only took fresh memory in the writer thread's
         * arena (a new state's 100 000-job run: half its page faults). */
        rc = sqlite3_exec(st->db,
                          "PRAGMA page_size = 16384; PRAGMA mmap_size = 268435456; PRAGMA journal_mode = WAL;"
                          " PRAGMA synchronous = NORMAL; PRAGMA cache_size = -512",
                          NULL, NULL, &msg);
        sqlite3_free(msg);
        if (rc == SQLITE_OK) {
            int prc;
            sqlite3_stmt *s = NULL;
            /* journal_mode answers with the mode it got */
            if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode", -1, &s, NULL) == SQLITE_OK &&
                sqlite3_step(s) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0)
                rc = SQLITE_READONLY;
            sqlite3_finalize(s);
            (void)prc;
        }
    }
    if (rc != SQLITE_OK) {
        warnf(st, cmd, con, "state %s cannot be written (%s); running without state", st->path, sqlite3_errstr(rc));
        r = OPEN_NONE;
    } else {
        r = check_schema_identity(st, cmd, wf_file, wf_name, true);
    }
    if (r == OPEN_OK) {
        st->page_size = (int)pragma_int(st->db, "PRAGMA page_size", &rc);
        if (rc != SQLITE_OK || st->page_size <= 0)
            st->page_size = 4096;
        /* Checkpoints only by the writer thread, between batches (and
         * none at close: the next process's writer does it), never a
         * commit of the run's own path. */
        sqlite3_wal_hook(st->db, on_wal, st);
    }
    if (r == OPEN_OK && (rc = close_crashed(st)) != SQLITE_OK) {
        warnf(st, cmd, con, "state %s cannot be written (%s); running without state", st->path, sqlite3_errstr(rc));
        r = OPEN_NONE;
    }
    if (r != OPEN_OK) {
        cli_state_close(st);
        return r == OPEN_REFUSED ? CLI_EXIT_INVALID : 0;
    }
    *out = st;
    return 0;
}

int cli_state_open_read(const char *cmd, const cli_state_flags_t *f, const char *wf_file, const char *wf_name,
                        cli_state_t **out)
{
    *out = NULL;
    char *def = f->path ? NULL : cli_state_default_path(wf_file);
    const char *path = f->path ? f->path : def;
    if (!path) {
        cli_errorf(cmd, "out of memory");
        return CLI_EXIT_INVALID;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        cli_errorf(cmd,
                   "no state at %s: workflow %s has not run with state from here; fix: run it first "
                   "(daggerpool run %s), or name its state with --state PATH",
                   path, wf_file, wf_file);
        free(def);
        return CLI_EXIT_INVALID;
    }
    int r = check_location(cmd, path, false, NULL, false);
    cli_state_t *st = r == OPEN_OK ? state_new(cmd, path, NULL) : NULL;
    free(def);
    if (r != OPEN_OK || !st)
        return CLI_EXIT_INVALID;
    if (!looks_like_sqlite(st->path)) {
        cli_errorf(cmd,
                   "state %s: not an SQLite database (another kind of file, or a corrupt one); fix: give the "
                   "state's file with --state PATH",
                   st->path);
        cli_state_close(st);
        return CLI_EXIT_INVALID;
    }
    int rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        cli_errorf(cmd, "state %s: %s", st->path, sqlite3_errstr(rc));
        cli_state_close(st);
        return CLI_EXIT_INVALID;
    }
    sqlite3_busy_timeout(st->db, 5000);
    if (check_kind(st, cmd, false) != OPEN_OK || check_schema_identity(st, cmd, wf_file, wf_name, false) != OPEN_OK) {
        cli_state_close(st);
        return CLI_EXIT_INVALID;
    }
    *out = st;
    return 0;
}

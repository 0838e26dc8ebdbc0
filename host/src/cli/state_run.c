/* state_run.c - recording runs and the store in the state (docs/state.md).
 *
 * The hot path is the job end: a worker appends it to a queue (one short
 * lock, no I/O) and a writer thread commits the queue in one transaction
 * every STATE_FLUSH_MS or every STATE_FLUSH_JOBS ends, whichever comes
 * first; never a transaction per job. What a kill -9 loses is thus the
 * jobs in flight and the ends of the last STATE_FLUSH_MS at most; every
 * commit before is whole (WAL).
 *
 * The store is written through: each change of an entry is committed
 * before the call that made it returns (plugins keep ids there, such as
 * slurm.batch's submitted job ids, that must survive a kill right after).
 * Store changes are rare; the pool's own snapshots of running jobs
 * (dp.running/...) change with every job and are not kept. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "render.h"
#include "state_int.h"
#include "store.h"

#define STATE_FLUSH_MS 100
#define STATE_FLUSH_JOBS 8192
/* The log (WAL) is moved into the file by the writer thread once it holds
 * this many bytes of pages, never by a commit on the run's path (state.c
 * turns SQLite's own checkpoints off). */
#define STATE_CHECKPOINT_BYTES (16 << 20)

/* ---- the store --------------------------------------------------------- */

static void store_hook(void *user, const char *key, const void *value, size_t len, bool deleted)
{
    cli_state_t *st = user;
    if (strncmp(key, DP_STORE_RUNNING_PREFIX, sizeof DP_STORE_RUNNING_PREFIX - 1) == 0)
        return;
    pthread_mutex_lock(&st->mu);
    if (!st->broken) {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(st->db,
                                    deleted ? "DELETE FROM store WHERE key = ?"
                                            : "INSERT OR REPLACE INTO store (key, value) VALUES (?, ?)",
                                    -1, &s, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
            if (!deleted)
                sqlite3_bind_blob(s, 2, value ? value : "", (int)len, SQLITE_STATIC);
            rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_OK)
            state_broken(st, "keep a store entry", rc);
    }
    pthread_mutex_unlock(&st->mu);
}

int cli_state_attach_store(cli_state_t *st, dp_store_t *store)
{
    if (!st)
        return 0;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, "SELECT key, value FROM store", -1, &s, NULL);
    size_t n = 0;
    while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        const void *v = sqlite3_column_blob(s, 1);
        int len = sqlite3_column_bytes(s, 1);
        if (key && dp_store_set_copy(store, key, v ? v : "", (size_t)len) == DP_OK)
            n++;
    }
    sqlite3_finalize(s);
    if (st->con && n)
        console_logf(st->con, DP_LOG_INFO, "state %s: %zu store entr%s of earlier runs loaded", st->path, n,
                     n == 1 ? "y" : "ies");
    st->store = store;
    dp_store_set_hook(store, store_hook, st);
    return 0;
}

void cli_state_detach_store(cli_state_t *st, dp_store_t *store)
{
    if (st && store && st->store == store) {
        dp_store_set_hook(store, NULL, NULL);
        st->store = NULL;
    }
}

/* ---- job ends ---------------------------------------------------------- */

static const char ins_ends_sql[] = "INSERT INTO run_ends (run_id, ends) VALUES (?, ?)";

/* The definition hashes kept under key into st->hash; false when there
 * are none (or not as many as the jobs). */
static bool hashes_read(cli_state_t *st, const char *key)
{
    bool ok = false;
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT hashes FROM def_hashes WHERE key = ? AND jobs = ?", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)st->njobs);
        if (sqlite3_step(s) == SQLITE_ROW && (size_t)sqlite3_column_bytes(s, 0) == st->njobs * 8) {
            const unsigned char *b = sqlite3_column_blob(s, 0);
            for (size_t i = 0; b && i < st->njobs; i++)
                st->hash[i] = state_get_le64(b + i * 8);
            ok = b != NULL || st->njobs == 0;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return ok;
}

/* st->hash kept under key, in place of the hashes kept before (one set:
 * the workflow as it is now). A failure to keep them is not the run's:
 * the next run computes them again. */
static void hashes_keep(cli_state_t *st, const char *key)
{
    unsigned char *b = malloc(st->njobs * 8 + 1);
    if (!b)
        return;
    for (size_t i = 0; i < st->njobs; i++)
        state_put_le64(b + i * 8, st->hash[i]);
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->mu);
    if (!st->broken && sqlite3_exec(st->db, "BEGIN IMMEDIATE; DELETE FROM def_hashes", NULL, NULL, NULL) == SQLITE_OK) {
        int rc = sqlite3_prepare_v2(st->db, "INSERT INTO def_hashes (key, jobs, hashes) VALUES (?, ?, ?)", -1, &s,
                                    NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, (int64_t)st->njobs);
            sqlite3_bind_blob64(s, 3, b, st->njobs * 8, SQLITE_STATIC);
            rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_OK || sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&st->mu);
    free(b);
}

/* The jobs' definition hashes, once per run: on the writer thread while
 * the run starts (or, when it had nothing to write, at the run's end, the
 * writer idle). */
static void ensure_hashes(cli_state_t *st)
{
    /* Only the writer (or the main thread while the writer is idle) calls
     * this; the flag is read under qmu by the writer's loop too. */
    pthread_mutex_lock(&st->qmu);
    bool done = st->hashed;
    pthread_mutex_unlock(&st->qmu);
    if (done)
        return;
    /* Kept in the state under the key of the files: read back when they
     * did not change (the file's whole graph only: a targeted run's ids
     * are another graph's; cli_state_run_begin made the key). */
    if (!st->keyed || !hashes_read(st, st->key)) {
        if (!cli_state_def_hashes(st->def_hash, st->wf, st->g, st->hash))
            for (size_t i = 0; i < st->njobs; i++) /* out of memory: one by one */
                st->hash[i] = cli_state_def_hash(st->def_hash, st->wf, st->g, i);
        if (st->keyed)
            hashes_keep(st, st->key);
    }
    pthread_mutex_lock(&st->qmu);
    st->hashed = true;
    pthread_mutex_unlock(&st->qmu);
}

/* One job's end into the batch being made (state_ends.c). */
static void add_end(cli_state_t *st, uint32_t id, dp_status_t status, bool reused, unsigned attempts, int64_t start_ms,
                    int64_t duration_ms, const char *error)
{
    /* what the next run's durations read of this end (state_cache.c) */
    if (status == DP_STATUS_SUCCESS && !reused && duration_ms >= 0)
        st->dur[id] = (uint64_t)duration_ms + 1;
    state_ends_add(&st->batch, dp_graph_job_name(st->g, id), status, reused, attempts, start_ms, duration_ms, error,
                   dp_graph_job_plugin(st->g, id), st->hash[id], id);
}

/* The batch made (st->batch) as one row of run_ends; empties it. In the
 * caller's transaction, under mu. */
static int insert_batch(cli_state_t *st)
{
    if (!st->batch.n)
        return SQLITE_OK;
    size_t len;
    const char *text = state_ends_finish(&st->batch, &len);
    int rc = text ? SQLITE_OK : SQLITE_NOMEM;
    sqlite3_stmt *s = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db, ins_ends_sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, st->run_id);
        sqlite3_bind_text64(s, 2, text, len, SQLITE_STATIC, SQLITE_UTF8);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
    }
    sqlite3_finalize(s);
    st->batch.n = 0;
    st->batch.oom = false;
    return rc;
}

/* A job's end as its last end (job_last; --resume reads it), written in
 * the run's last transaction; an unchanged row is left alone (no page
 * written). Reused jobs are not ended again: their row stands. */
static const char upsert_last_sql[] =
    "INSERT INTO job_last (job, status, def_hash, run_id) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (job) DO UPDATE SET status = excluded.status, def_hash = excluded.def_hash,"
    " run_id = excluded.run_id, marked_by = NULL, marked_ms = NULL"
    " WHERE job_last.status != excluded.status OR job_last.def_hash != excluded.def_hash"
    " OR job_last.marked_by IS NOT NULL";

/* A job with no row read (the first run of a state: every job) is
 * inserted without the conflict clause's work; a row that was there but
 * could not be read is replaced, as the update would have rewritten it.
 * LAST_ROWS rows per statement (?1 the run, then 3 values a row): run a
 * row at a time, each statement's set-up and halt cost as much as its
 * insert, and within one statement inserts in name order go on at the
 * table's last page without a search from its root (bench/README.md,
 * "State"). */
#define LAST_ROWS 128

typedef struct {
    sqlite3_stmt *upsert, *insert_one, *insert_many;
    uint32_t ids[LAST_ROWS];
    size_t n;
} last_writes_t;

static const char insert_last_sql[] = "INSERT OR REPLACE INTO job_last (job, status, def_hash, run_id) VALUES ";

static int last_writes_prepare(last_writes_t *lw, sqlite3 *db)
{
    char sql[sizeof insert_last_sql + LAST_ROWS * sizeof "(?NNNN, ?NNNN, ?NNNN, ?1), "];
    size_t len = (size_t)snprintf(sql, sizeof sql, "%s", insert_last_sql);
    int rc = sqlite3_prepare_v2(db, upsert_last_sql, -1, &lw->upsert, NULL);
    if (rc == SQLITE_OK) {
        snprintf(sql + len, sizeof sql - len, "(?2, ?3, ?4, ?1)");
        rc = sqlite3_prepare_v2(db, sql, -1, &lw->insert_one, NULL);
    }
    for (unsigned k = 0; k < LAST_ROWS; k++)
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s(?%u, ?%u, ?%u, ?1)", k ? ", " : "", 2 + 3 * k,
                                3 + 3 * k, 4 + 3 * k);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, sql, -1, &lw->insert_many, NULL);
    return rc;
}

static void last_writes_finalize(last_writes_t *lw)
{
    sqlite3_finalize(lw->upsert);
    sqlite3_finalize(lw->insert_one);
    sqlite3_finalize(lw->insert_many);
}

/* Binds job id's row (its name, status and hash) from parameter at on. */
static void bind_last(sqlite3_stmt *s, int at, cli_state_t *st, uint32_t id)
{
    sqlite3_bind_text(s, at, dp_graph_job_name(st->g, id), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, at + 1, dp_status_name((dp_status_t)(st->last[id] - 1)), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, at + 2, (int64_t)st->hash[id]);
}

static int step(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The rows waiting in lw->ids: a full statement's, else one by one. */
static int last_writes_flush(last_writes_t *lw, cli_state_t *st)
{
    int rc = SQLITE_OK;
    if (lw->n == LAST_ROWS) {
        sqlite3_bind_int64(lw->insert_many, 1, st->run_id);
        for (size_t k = 0; k < LAST_ROWS; k++)
            bind_last(lw->insert_many, 2 + 3 * (int)k, st, lw->ids[k]);
        rc = step(lw->insert_many);
    } else {
        sqlite3_bind_int64(lw->insert_one, 1, st->run_id);
        for (size_t k = 0; rc == SQLITE_OK && k < lw->n; k++) {
            bind_last(lw->insert_one, 2, st, lw->ids[k]);
            rc = step(lw->insert_one);
        }
    }
    lw->n = 0;
    return rc;
}

static int upsert_last(last_writes_t *lw, cli_state_t *st, uint32_t id, dp_status_t status)
{
    if (status != DP_STATUS_SUCCESS && status != DP_STATUS_FAILED && status != DP_STATUS_NOT_READY)
        return SQLITE_OK;
    if (st->last[id] == 1 + status && st->last_hash[id] == st->hash[id])
        return SQLITE_OK; /* unchanged (the usual case of a run again): nothing to write */
    bool had_row = st->last[id];
    st->last[id] = (unsigned char)(1 + status);
    st->last_hash[id] = st->hash[id];
    if (!had_row) {
        lw->ids[lw->n++] = id;
        return lw->n == LAST_ROWS ? last_writes_flush(lw, st) : SQLITE_OK;
    }
    sqlite3_bind_int64(lw->upsert, 4, st->run_id);
    bind_last(lw->upsert, 1, st, id);
    return step(lw->upsert);
}

/* One end into the batch being made. */
static void add_queued(cli_state_t *st, const state_end_t *e)
{
    uint64_t t0 = e->start_ns;
    int64_t start = t0 ? (int64_t)((t0 - 1) / 1000000u) : -1;
    int64_t dur = t0 && e->end_ns >= t0 - 1 ? (int64_t)((e->end_ns - (t0 - 1)) / 1000000u) : 0;
    if (e->reused)
        add_end(st, e->id, DP_STATUS_SUCCESS, true, 0, -1, -1, NULL);
    else
        add_end(st, e->id, (dp_status_t)e->status, false, e->attempts, start, dur, e->error);
}

/* Where the slots ready from `from` on end (the first one taken but not
 * filled yet, or the last taken). */
static size_t slots_ready_end(cli_state_t *st, size_t from)
{
    size_t taken = atomic_load_explicit(&st->taken, memory_order_relaxed);
    size_t to = from, lim = taken < st->nslots ? taken : st->nslots;
    while (to < lim && atomic_load_explicit(&st->ready[to], memory_order_acquire))
        to++;
    return to;
}

/* Commits the slots [from, to) and the ends in q in one transaction (or
 * none, once broken), then, off the run's critical path, moves the log
 * (WAL) into the file when it grew. */
static void commit_ends(cli_state_t *st, size_t from, size_t to, state_ends_t *q)
{
    if (from == to && !q->n)
        return;
    /* A batch can come before the loop's early start of the hashing (a
     * watch's writer that was waiting when the run began). */
    ensure_hashes(st);
    /* The batch's text is made outside mu: the store hook (workers) and
     * the main thread wait for the database only. */
    st->batch.n = 0;
    for (size_t i = from; i < to; i++)
        add_queued(st, &st->slots[i]);
    for (size_t i = 0; i < q->n; i++)
        add_queued(st, &q->v[i]);
    pthread_mutex_lock(&st->mu);
    if (!st->broken) {
        int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = insert_batch(st);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            for (size_t i = from; i < to; i++)
                st->recorded[st->slots[i].id] = 1;
            for (size_t i = 0; i < q->n; i++)
                st->recorded[q->v[i].id] = 1;
        } else {
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            state_broken(st, "record job ends", rc);
        }
        if (!st->broken && (int64_t)st->wal_frames * st->page_size > STATE_CHECKPOINT_BYTES)
            sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    st->batch.n = 0;
    pthread_mutex_unlock(&st->mu);
    for (size_t i = from; i < to; i++) {
        free(st->slots[i].error);
        st->slots[i].error = NULL;
    }
    for (size_t i = 0; i < q->n; i++)
        free(q->v[i].error);
    q->n = 0;
}

/* Under qmu: the ends waiting for the writer (slots and queue). */
static size_t pending(const cli_state_t *st)
{
    if (!st->slots)
        return st->queue.n;
    size_t taken = atomic_load_explicit(&st->taken, memory_order_relaxed);
    return st->queue.n + (taken < st->nslots ? taken : st->nslots) - st->consumed;
}

/* The writer lives from the first run to cli_state_close (a watch keeps it
 * from run to run, as it keeps its workers). While a run is recorded it
 * commits every STATE_FLUSH_MS (or STATE_FLUSH_JOBS ends); between runs it
 * sleeps until asked. cli_state_run_end asks for a flush and waits for it. */
static void *writer_main(void *arg)
{
    cli_state_t *st = arg;
    state_ends_t mine = {0};
    pthread_mutex_lock(&st->qmu);
    for (;;) {
        if (st->run_live && !st->hashed) {
            pthread_mutex_unlock(&st->qmu);
            ensure_hashes(st);
            pthread_mutex_lock(&st->qmu);
        }
        while (!st->stop && st->flush_done == st->flush_req && pending(st) < STATE_FLUSH_JOBS) {
            if (!pending(st) && !st->run_live) {
                pthread_cond_wait(&st->qcv, &st->qmu);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += STATE_FLUSH_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&st->qcv, &st->qmu, &ts) == ETIMEDOUT)
                break;
        }
        /* Swap: the workers go on appending to the other buffer. */
        state_ends_t t = st->queue;
        st->queue = mine;
        mine = t;
        /* The slots filled so far: the writer's until it is done with
         * them (run_clear waits for it before freeing them). */
        size_t from = st->consumed, to = from;
        bool more = false;
        if (st->slots) {
            to = slots_ready_end(st, from);
            /* STATE_FLUSH_JOBS at most a transaction, the rest at once
             * after: a writer that fell behind (hashing a new state's
             * jobs) would otherwise make one batch of most of the run, and
             * its text and SQLite's pages for it take fresh memory, where
             * a batch of the usual size reuses the last one's. */
            if (to - from > STATE_FLUSH_JOBS) {
                to = from + STATE_FLUSH_JOBS;
                more = true;
            }
            st->consumed = to;
            st->writer_busy = true;
        }
        unsigned long req = st->flush_req;
        bool stop = st->stop;
        pthread_mutex_unlock(&st->qmu);
        commit_ends(st, from, to, &mine);
        pthread_mutex_lock(&st->qmu);
        st->writer_busy = false;
        if (!more) /* a flush asked for is done once nothing is left */
            st->flush_done = req;
        pthread_cond_broadcast(&st->qdone);
        if (stop && pending(st) == 0)
            break;
    }
    pthread_mutex_unlock(&st->qmu);
    free(mine.v);
    return NULL;
}

/* Commits every end queued so far (on the writer, or here without one). */
static void flush_ends(cli_state_t *st)
{
    if (!st->writer_on) {
        size_t from = st->consumed, to = st->slots ? slots_ready_end(st, from) : from;
        st->consumed = to;
        commit_ends(st, from, to, &st->queue);
        return;
    }
    pthread_mutex_lock(&st->qmu);
    unsigned long req = ++st->flush_req;
    pthread_cond_signal(&st->qcv);
    while (st->flush_done < req)
        pthread_cond_wait(&st->qdone, &st->qmu);
    pthread_mutex_unlock(&st->qmu);
}

void state_writer_stop(cli_state_t *st)
{
    if (!st->writer_on)
        return;
    pthread_mutex_lock(&st->qmu);
    st->stop = true;
    pthread_cond_signal(&st->qcv);
    pthread_mutex_unlock(&st->qmu);
    pthread_join(st->writer, NULL);
    st->writer_on = false;
    flush_ends(st);
    free(st->queue.v);
    st->queue = (state_ends_t){0};
}

void cli_state_event(cli_state_t *st, const dp_event_t *ev)
{
    if (!st || !st->run_id || ev->job >= st->njobs)
        return;
    bool reused = ev->kind == DP_EV_JOB_REUSED; /* at the start, on the calling thread */
    if (ev->kind != DP_EV_JOB_END && !reused)
        return;
    char *error = ev->error ? strdup(ev->error) : NULL;
    /* The job's start comes with its end (nothing kept per job from its
     * attempts' starts: a write to a random place for each). */
    uint64_t start_ns = !reused && ev->start_ns >= 0 ? (uint64_t)ev->start_ns + 1 : 0;
    state_end_t e = {.id = ev->job,
                     .status = (uint8_t)ev->status,
                     .reused = reused,
                     .attempts = ev->attempt,
                     .start_ns = start_ns,
                     .end_ns = ev->time_ns,
                     .error = error};
    if (reused)
        atomic_fetch_add_explicit(&st->nreused, 1, memory_order_relaxed);
    /* A slot of its own: no lock shared with the other workers. */
    size_t i = atomic_fetch_add_explicit(&st->taken, 1, memory_order_relaxed);
    if (i < st->nslots) {
        st->slots[i] = e;
        atomic_store_explicit(&st->ready[i], 1, memory_order_release);
        if ((i + 1) % STATE_FLUSH_JOBS == 0) {
            pthread_mutex_lock(&st->qmu);
            pthread_cond_signal(&st->qcv);
            pthread_mutex_unlock(&st->qmu);
        }
        return;
    }
    pthread_mutex_lock(&st->qmu);
    if (st->queue.n == st->queue.cap) {
        size_t cap = st->queue.cap ? st->queue.cap * 2 : 1024;
        state_end_t *v = realloc(st->queue.v, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&st->qmu);
            free(error); /* out of memory: the run's end records it */
            return;
        }
        st->queue.v = v;
        st->queue.cap = cap;
    }
    st->queue.v[st->queue.n++] = e;
    if (pending(st) >= STATE_FLUSH_JOBS)
        pthread_cond_signal(&st->qcv);
    pthread_mutex_unlock(&st->qmu);
}

/* ---- a run ------------------------------------------------------------- */

static void run_clear(cli_state_t *st)
{
    /* The slots, once the writer is done with them. */
    pthread_mutex_lock(&st->qmu);
    while (st->writer_busy)
        pthread_cond_wait(&st->qdone, &st->qmu);
    for (size_t i = st->consumed; st->slots && i < st->nslots; i++)
        if (atomic_load_explicit(&st->ready[i], memory_order_acquire))
            free(st->slots[i].error); /* not committed: the state broke, or the run refused */
    free(st->slots);
    free((void *)(uintptr_t)st->ready);
    st->slots = NULL;
    st->ready = NULL;
    st->nslots = 0;
    st->consumed = 0;
    atomic_store(&st->taken, 0);
    pthread_mutex_unlock(&st->qmu);
    free(st->hash);
    free(st->recorded);
    free(st->last);
    free(st->last_hash);
    free(st->dur);
    st->last = NULL;
    st->last_hash = NULL;
    st->dur = NULL;
    st->keyed = false;
    st->hash = NULL;
    st->recorded = NULL;
    st->run_id = 0;
    st->g = NULL;
    st->wf = NULL;
    st->njobs = 0;
    pthread_mutex_lock(&st->qmu);
    st->hashed = false;
    pthread_mutex_unlock(&st->qmu);
}

/* job_last into st->last / last_hash (the writer compares each end with
 * it). A row that cannot be read is treated as absent: written again. */
static void load_last(cli_state_t *st)
{
    unsigned char *cache = st->keyed ? state_cache_read(st, st->key, st->njobs) : NULL;
    if (cache) { /* what the last run left, by id: nothing changed it since */
        for (size_t i = 0; i < st->njobs; i++)
            state_cache_last(cache, i, &st->last[i], &st->last_hash[i]);
        free(cache);
        return;
    }
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT job, status, def_hash, marked_by IS NOT NULL FROM job_last", -1, &s, NULL) ==
        SQLITE_OK) {
        /* rows in name order, as the ids of a file's graph: each tried
         * first at the id after the last one found */
        size_t next = 0;
        while (sqlite3_step(s) == SQLITE_ROW) {
            long id = state_job_id(st->g, st->njobs, (const char *)sqlite3_column_text(s, 0), next);
            if (id >= 0)
                next = (size_t)id + 1;
            const char *status = (const char *)sqlite3_column_text(s, 1);
            if (id < 0 || !status)
                continue;
            unsigned char v = strcmp(status, "success") == 0     ? 1 + DP_STATUS_SUCCESS
                              : strcmp(status, "failed") == 0    ? 1 + DP_STATUS_FAILED
                              : strcmp(status, "not_ready") == 0 ? 1 + DP_STATUS_NOT_READY
                                                                 : 0;
            st->last[id] = (unsigned char)(v | (sqlite3_column_int(s, 3) ? LAST_MARKED : 0));
            st->last_hash[id] = (uint64_t)sqlite3_column_int64(s, 2);
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
}

bool cli_state_run_begin(cli_state_t *st, const char *cmd, const dp_workflow_t *wf, const dp_graph_t *g)
{
    if (!st || st->broken)
        return false;
    run_clear(st);
    st->g = g;
    st->wf = wf;
    st->njobs = dp_graph_job_count(g);
    size_t n = st->njobs ? st->njobs : 1;
    st->hash = malloc(n * sizeof *st->hash);
    st->recorded = calloc(n, 1);
    st->last = calloc(n, 1);
    st->last_hash = calloc(n, sizeof *st->last_hash);
    st->dur = calloc(n, sizeof *st->dur);
    state_end_t *slots = malloc(n * sizeof *slots);
    atomic_uchar *ready = calloc(n, sizeof *ready);
    if (slots && ready) {
        pthread_mutex_lock(&st->qmu);
        st->slots = slots;
        st->ready = ready;
        st->nslots = st->njobs;
        pthread_mutex_unlock(&st->qmu);
    } else {
        free(slots);
        free((void *)(uintptr_t)ready);
    }
    /* The key of the files: the one just made for the durations, when it
     * is this graph's, else read now. */
    if (st->pre_keyed && st->pre_wf == wf && st->pre_g == g) {
        memcpy(st->key, st->pre_key, sizeof st->key);
        st->keyed = true;
    } else {
        st->keyed = state_run_key(st, wf, g, st->key);
    }
    st->pre_keyed = false;
    st->pre_wf = NULL;
    st->pre_g = NULL;
    if (!st->hash || !st->recorded || !st->last || !st->last_hash || !st->dur || !st->slots) {
        run_clear(st);
        state_broken(st, "record the run", SQLITE_NOMEM);
        return false;
    }
    load_last(st);
    st->run_start_ms = state_now_ms();
    st->nreused = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db, "INSERT INTO runs (command, pid, host, start_ms, jobs) VALUES (?, ?, ?, ?, ?)",
                                -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, cmd, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)getpid());
        sqlite3_bind_text(s, 3, st->host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, (int64_t)st->run_start_ms);
        sqlite3_bind_int64(s, 5, (int64_t)st->njobs);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
        st->run_id = sqlite3_last_insert_rowid(st->db);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        state_broken(st, "record the run", rc);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc != SQLITE_OK) {
        run_clear(st);
        return false;
    }
    pthread_mutex_lock(&st->qmu);
    st->run_live = true;
    pthread_cond_signal(&st->qcv); /* hash the jobs while the run starts */
    pthread_mutex_unlock(&st->qmu);
    if (!st->writer_on)
        st->writer_on = pthread_create(&st->writer, NULL, writer_main, st) == 0;
    return true;
}

/* The plugin versions of the jobs that ran: a run_plugins row per plugin
 * whose jobs all ran one version (the usual case: nothing per job), and
 * for a plugin swapped during the run each of its jobs' own version. */
static int record_versions(cli_state_t *st, const dp_result_t *r)
{
    typedef struct pv {
        const char *plugin, *version;
        bool mixed;
    } pv_t;
    pv_t *v = NULL;
    size_t nv = 0, cap = 0;
    for (size_t i = 0; i < st->njobs; i++) {
        const dp_job_result_t *jr = dp_result_job(r, i);
        if (!jr || !jr->plugin || !jr->plugin_version || jr->attempts == 0)
            continue;
        size_t k = 0;
        while (k < nv && strcmp(v[k].plugin, jr->plugin) != 0)
            k++;
        if (k == nv) {
            if (nv == cap) {
                cap = cap ? cap * 2 : 8;
                pv_t *g = realloc(v, cap * sizeof *g);
                if (!g) {
                    free(v);
                    return SQLITE_NOMEM;
                }
                v = g;
            }
            v[nv++] = (pv_t){jr->plugin, jr->plugin_version, false};
        } else if (strcmp(v[k].version, jr->plugin_version) != 0) {
            v[k].mixed = true;
        }
    }
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO run_plugins (run_id, plugin, version) VALUES (?, ?, ?)",
                                -1, &s, NULL);
    bool any_mixed = false;
    for (size_t k = 0; rc == SQLITE_OK && k < nv; k++) {
        any_mixed |= v[k].mixed;
        if (v[k].mixed)
            continue;
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, st->run_id);
        sqlite3_bind_text(s, 2, v[k].plugin, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, v[k].version, -1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc == SQLITE_OK && any_mixed)
        rc = sqlite3_prepare_v2(
            st->db, "INSERT OR REPLACE INTO run_job_versions (run_id, job, version) VALUES (?, ?, ?)", -1, &s, NULL);
    for (size_t i = 0; rc == SQLITE_OK && any_mixed && i < st->njobs; i++) {
        const dp_job_result_t *jr = dp_result_job(r, i);
        if (!jr || !jr->plugin || !jr->plugin_version || jr->attempts == 0)
            continue;
        size_t k = 0;
        while (k < nv && strcmp(v[k].plugin, jr->plugin) != 0)
            k++;
        if (k == nv || !v[k].mixed)
            continue;
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, st->run_id);
        sqlite3_bind_text(s, 2, jr->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, jr->plugin_version, -1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
    }
    sqlite3_finalize(s);
    free(v);
    return rc;
}

/* Whether job i was reused, without making every job's record when
 * nothing was (dp_result_job makes them all on its first call). */
static bool reused_job(const dp_result_t *r, size_t i)
{
    if (dp_result_status(r, i) != DP_STATUS_SUCCESS)
        return false;
    const dp_job_result_t *jr = dp_result_job(r, i);
    return jr && jr->reused;
}

/* The jobs with a status but no row yet: skipped ones, and any whose end
 * the writer could not queue. */
static int insert_rest(cli_state_t *st, const dp_result_t *r)
{
    last_writes_t lw = {0};
    st->batch.n = 0;
    for (size_t i = 0; i < st->njobs; i++) {
        dp_status_t status = dp_result_status(r, i);
        if (st->recorded[i] || status == DP_STATUS_UNKNOWN)
            continue;
        const dp_job_result_t *jr = dp_result_job(r, i);
        if (!jr)
            return SQLITE_NOMEM;
        add_end(st, (uint32_t)i, status, jr->reused, jr->attempts, jr->start_ms, jr->duration_ms, jr->error);
    }
    int rc = insert_batch(st);
    /* The jobs' last ends, in id order (name order for a file's graph: the
     * table's order, so the writes are sequential), only where they
     * change. Not during the run: a run killed before this point has its
     * ends folded in by the next process that opens the state (state.c). */
    if (rc == SQLITE_OK)
        rc = last_writes_prepare(&lw, st->db);
    for (size_t i = 0; rc == SQLITE_OK && i < st->njobs; i++) {
        dp_status_t status = dp_result_status(r, i);
        if (status != DP_STATUS_UNKNOWN && status != DP_STATUS_SKIPPED && !(st->nreused && reused_job(r, i)))
            rc = upsert_last(&lw, st, (uint32_t)i, status);
    }
    if (rc == SQLITE_OK)
        rc = last_writes_flush(&lw, st);
    last_writes_finalize(&lw);
    return rc;
}

/* The run's end (cli_state_run_end): the result's JSON as its zstd frame
 * z (zlen bytes, of a text of json_len bytes), else as the text json. */
static void run_end(cli_state_t *st, const dp_result_t *r, const unsigned char *z, size_t zlen, const char *json,
                    size_t json_len)
{
    pthread_mutex_lock(&st->mu);
    if (!r && !st->broken) { /* the library refused the run: nothing ran */
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE runs SET outcome = 'refused', end_ms = %llu WHERE id = %lld",
                 (unsigned long long)state_now_ms(), (long long)st->run_id);
        int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            state_broken(st, "record the run's end", rc);
    } else if (!st->broken) {
        unsigned counts[5] = {0};
        for (size_t i = 0; i < st->njobs; i++) {
            dp_status_t s = dp_result_status(r, i);
            if ((unsigned)s < 5)
                counts[s]++;
        }
        int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = insert_rest(st, r);
        if (rc == SQLITE_OK)
            rc = record_versions(st, r);
        sqlite3_stmt *s = NULL;
        if (rc == SQLITE_OK)
            rc = sqlite3_prepare_v2(st->db,
                                    "UPDATE runs SET end_ms = ?, outcome = ?, first_error = ?, success = ?, failed = ?,"
                                    " not_ready = ?, skipped = ?, unknown = ?, reused = ? WHERE id = ?",
                                    -1, &s, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(s, 1, (int64_t)(st->run_start_ms + (uint64_t)dp_result_duration_ms(r)));
            sqlite3_bind_text(s, 2, dp_run_outcome_name(dp_result_outcome(r)), -1, SQLITE_STATIC);
            const char *fe = dp_result_first_error(r);
            if (fe)
                sqlite3_bind_text(s, 3, fe, -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(s, 3);
            sqlite3_bind_int(s, 4, (int)counts[DP_STATUS_SUCCESS]);
            sqlite3_bind_int(s, 5, (int)counts[DP_STATUS_FAILED]);
            sqlite3_bind_int(s, 6, (int)counts[DP_STATUS_NOT_READY]);
            sqlite3_bind_int(s, 7, (int)counts[DP_STATUS_SKIPPED]);
            sqlite3_bind_int(s, 8, (int)counts[DP_STATUS_UNKNOWN]);
            sqlite3_bind_int(s, 9, (int)st->nreused);
            sqlite3_bind_int64(s, 10, st->run_id);
            rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
        }
        sqlite3_finalize(s);
        s = NULL;
        if (rc == SQLITE_OK && (json || z))
            rc = sqlite3_prepare_v2(
                st->db, "INSERT OR REPLACE INTO run_results (run_id, json, encoding, size) VALUES (?, ?, ?, ?)", -1, &s,
                NULL);
        if (rc == SQLITE_OK && (json || z)) {
            sqlite3_bind_int64(s, 1, st->run_id);
            if (z) {
                sqlite3_bind_blob64(s, 2, z, zlen, SQLITE_STATIC);
                sqlite3_bind_text(s, 3, "zstd", -1, SQLITE_STATIC);
            } else { /* out of memory for the compressed copy: the text as it is */
                sqlite3_bind_text64(s, 2, json, json_len, SQLITE_STATIC, SQLITE_UTF8);
                sqlite3_bind_null(s, 3);
            }
            sqlite3_bind_int64(s, 4, (int64_t)json_len);
            rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
        }
        sqlite3_finalize(s);
        s = NULL;
        /* Retention: the last keep_runs runs. */
        if (rc == SQLITE_OK && st->keep_runs) {
            char sql[640];
            int64_t below = st->run_id - (int64_t)st->keep_runs + 1;
            snprintf(sql, sizeof sql,
                     "DELETE FROM run_ends WHERE run_id < %lld; DELETE FROM run_job_versions WHERE run_id < %lld;"
                     " DELETE FROM run_results WHERE run_id < %lld; DELETE FROM run_plugins WHERE run_id < %lld;"
                     " DELETE FROM runs WHERE id < %lld",
                     (long long)below, (long long)below, (long long)below, (long long)below, (long long)below);
            if (below > 1)
                rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK)
            rc = state_cache_keep(st);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            state_broken(st, "record the run's end", rc);
        }
        /* A bound on the log for runs that leave the writer nothing to do
         * (all reused): checkpoint here past four times the usual size. */
        if (!st->broken && (int64_t)st->wal_frames * st->page_size > 4 * STATE_CHECKPOINT_BYTES)
            sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    pthread_mutex_unlock(&st->mu);
}

/* What both ends do first: the ends committed, the writer idle. */
static void run_end_flush(cli_state_t *st)
{
    flush_ends(st);
    pthread_mutex_lock(&st->qmu);
    st->run_live = false;
    pthread_mutex_unlock(&st->qmu);
    ensure_hashes(st); /* the writer idle: when it had no end to write */
}

void cli_state_run_end(cli_state_t *st, const dp_result_t *r, const char *json, size_t json_len)
{
    if (!st || !st->run_id)
        return;
    run_end_flush(st);
    /* The JSON text compressed (a job's members repeat: much smaller),
     * before the transaction. */
    unsigned char *z = NULL;
    size_t zlen = 0;
    if (r && json && !st->broken)
        z = state_compress(json, json_len, &zlen);
    run_end(st, r, z, zlen, json, json_len);
    free(z);
    run_clear(st);
}

void cli_state_run_end_render(cli_state_t *st, const dp_result_t *r, const char *workflow)
{
    if (!st || !st->run_id)
        return;
    run_end_flush(st);
    /* The JSON made straight into its compressed form: the 20 MB of a
     * 100 000-job run's text are never held (their pages, their copies). */
    unsigned char *z = NULL;
    size_t zlen = 0, len = 0;
    if (r && !st->broken) {
        state_zout_t *zo = NULL;
        FILE *f = state_zout_open(&zo);
        int rc = f ? dp__render_json(f, r, workflow) : DP_ENOMEM;
        z = state_zout_close(f, zo, &zlen, &len);
        if (rc != DP_OK) {
            free(z);
            z = NULL;
        }
    }
    if (r && !z && !st->broken) { /* no stream (out of memory): the text, then compressed */
        char *text = NULL;
        size_t tlen = 0;
        FILE *f = open_memstream(&text, &tlen);
        int rc = f ? dp__render_json(f, r, workflow) : DP_ENOMEM;
        bool ok = f && fclose(f) == 0 && rc == DP_OK;
        if (ok)
            z = state_compress(text, tlen, &zlen);
        run_end(st, r, z, zlen, ok ? text : NULL, tlen);
        free(text);
        free(z);
        run_clear(st);
        return;
    }
    run_end(st, r, z, zlen, NULL, len);
    free(z);
    run_clear(st);
}

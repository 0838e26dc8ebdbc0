/*
 * console.c - the command's stderr while a run is live: logs and progress.
 *
 * Worker threads log and report events concurrently; one mutex serialises
 * every write so lines never interleave, and on a terminal each log line
 * first erases the status line and then redraws it below (ninja's manner:
 * the status line always sits at the bottom).
 *
 * Off a terminal, progress is one line per job event, and a large workflow
 * has hundreds of thousands of them: a write(2) and a printf each cost more
 * than the jobs (bench/README.md, "Large workflow files": console). So the
 * common event lines are formatted by hand (quick_line) into a buffer of
 * the console's and written in batches by a flusher thread: at once when
 * the last write is at least FLUSH_NS old (a slow workflow still shows each
 * line as it happens), else FLUSH_NS after the last write; the workers that
 * report events never wait for a write or read the clock. Logs and the end
 * of progress write the buffer first, so the order of lines holds. Events
 * that print nothing off a terminal (an attempt that ended well) do not take
 * the lock at all, and the lock spins briefly before it sleeps: the workers
 * hold it for a few hundred nanoseconds, a sleep and a wake-up cost
 * microseconds.
 *
 * The start of a job's first attempt (text lines off a terminal, with the
 * flusher) does not take the lock either: its worker leaves it in its own
 * pending slot (pending_t), and whoever next takes the lock (the job's end,
 * any other event or log line, or the flusher within FLUSH_NS) writes the
 * pending starts first, oldest first, with the counts of that moment. The
 * lines and their order are those of starts written at that moment: a job's
 * start is always before its end and before its log lines, and a job of a
 * 100 000-job run takes the lock once, not twice.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "jsonw.h"
#include "util.h"

/* A worker's first-attempt start not written yet. `full` 1: job and
 * time_ns are set, by the worker (release), for whoever holds the lock to
 * take (acquire, then 0 with release: the worker fills the slot again only
 * after it turns that 0 into 2, being filled). A cache line each: every
 * worker writes its own. */
typedef struct pending {
    alignas(64) _Atomic int full;
    uint32_t job;
    uint64_t time_ns;
} pending_t;

/* Workers 0 .. NPENDING-1 leave their starts pending; others (and every
 * start while their slot is still full) take the lock as before. */
#define NPENDING 64

struct console {
    pthread_mutex_t lock;
    FILE *out;
    cli_log_format_t format;
    dp_log_level_t level;
    bool progress;   /* show progress at all (-q turns it off) */
    bool tty;        /* redraw one status line rather than print lines */
    bool line_shown; /* a status line is on screen now */
    const dp_graph_t *g;
    size_t total;
    size_t finished;
    size_t failed;
    bool *running; /* by job id: inside an attempt now */
    /* The running jobs as a doubly linked list over job ids (UINT32_MAX
     * ends it), so the status line names them without scanning every job:
     * a redraw costs what it shows, not the size of the workflow. */
    uint32_t *rnext, *rprev;
    uint32_t rhead, rtail;
    size_t nrunning;
    /* Event lines not written yet (off a terminal). */
    char *buf;
    size_t len;
    bool batch;             /* the flusher runs: lines may wait FLUSH_NS */
    bool told;              /* the flusher knows of the lines in buf */
    bool stop;              /* the flusher is to end */
    uint64_t last_write_ns; /* CLOCK_MONOTONIC of the last write of buf */
    pthread_cond_t wake;    /* to the flusher: lines pending, or stop */
    pthread_t flusher;
    /* Starts may be left pending (text lines, the flusher runs): set under
     * lock by console_begin before the run's workers exist, cleared after
     * they are gone. */
    bool pend_ok;
    _Atomic unsigned npend; /* slots 0 .. npend-1 were used (relaxed: raised
                             * by a worker before it fills a slot above) */
    pending_t pend[NPENDING];
};

#define BUF_SIZE (64u * 1024u)
/* At most this long between an event line and its write(2). */
#define FLUSH_NS (20u * 1000000u)

/* Under lock: writes the buffered lines. */
static void write_buf(console_t *c)
{
    if (c->len) {
        fwrite(c->buf, 1, c->len, c->out);
        fflush(c->out);
        c->len = 0;
    }
    c->told = false;
    c->last_write_ns = dp__now_ns();
}

/* Under lock: n bytes of a line into the buffer (written first when full;
 * written straight through when larger than the buffer). */
static void put(console_t *c, const char *s, size_t n)
{
    if (c->len + n > BUF_SIZE)
        write_buf(c);
    if (n > BUF_SIZE) {
        fwrite(s, 1, n, c->out);
        fflush(c->out);
        return;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
}

static void putf(console_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(console_t *c, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        put(c, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    put(c, big, (size_t)n);
    free(big);
}

/* Under lock, after an event line: written now without the flusher, else by
 * the flusher (at once if the last write is FLUSH_NS old). */
static void flush_soon(console_t *c)
{
    if (!c->len)
        return;
    if (!c->batch) {
        write_buf(c);
    } else if (!c->told) {
        /* Once per batch: the flusher writes it now or when it is due. */
        c->told = true;
        pthread_cond_signal(&c->wake);
    }
}

static void take_pending(console_t *c);

/* CLOCK_MONOTONIC ns as a deadline for pthread_cond_timedwait. */
static struct timespec ts_of(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
}

static void *flusher_main(void *arg)
{
    console_t *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        /* Starts left pending by workers that have not taken the lock
         * since: written within FLUSH_NS, as any other line. */
        take_pending(c);
        if (!c->len) {
            if (c->pend_ok) {
                /* A worker leaves a start without a signal: look again. */
                struct timespec ts = ts_of(dp__now_ns() + FLUSH_NS);
                pthread_cond_timedwait(&c->wake, &c->lock, &ts);
            } else {
                pthread_cond_wait(&c->wake, &c->lock);
            }
            continue;
        }
        uint64_t due = c->last_write_ns + FLUSH_NS;
        if (dp__now_ns() >= due) {
            write_buf(c);
            continue;
        }
        struct timespec ts = ts_of(due);
        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Not under lock: the flusher ends and the buffer is written. */
static void stop_flusher(console_t *c)
{
    pthread_mutex_lock(&c->lock);
    bool running = c->batch;
    c->stop = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    if (running)
        pthread_join(c->flusher, NULL);
    pthread_mutex_lock(&c->lock);
    take_pending(c);
    c->batch = c->stop = false;
    c->pend_ok = false;
    write_buf(c);
    pthread_mutex_unlock(&c->lock);
}

#define RNONE UINT32_MAX

static void running_add(console_t *c, uint32_t j)
{
    if (c->running[j])
        return;
    c->running[j] = true;
    c->rnext[j] = RNONE;
    c->rprev[j] = c->rtail;
    if (c->rtail != RNONE)
        c->rnext[c->rtail] = j;
    else
        c->rhead = j;
    c->rtail = j;
    c->nrunning++;
}

static void running_remove(console_t *c, uint32_t j)
{
    if (!c->running[j])
        return;
    c->running[j] = false;
    if (c->rprev[j] != RNONE)
        c->rnext[c->rprev[j]] = c->rnext[j];
    else
        c->rhead = c->rnext[j];
    if (c->rnext[j] != RNONE)
        c->rprev[c->rnext[j]] = c->rprev[j];
    else
        c->rtail = c->rprev[j];
    c->nrunning--;
}

console_t *console_new(FILE *out, cli_log_format_t format, dp_log_level_t level, bool progress)
{
    console_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    /* Adaptive: spins a little before it sleeps (see the top of the file). */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&c->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    c->out = out;
    c->format = format;
    c->level = level;
    c->progress = progress;
    const char *term = getenv("TERM");
    /* JSON logs are one object per line even on a terminal: no status
     * line, progress as JSON objects (event_json). */
    c->tty = format == CLI_LOG_TEXT && isatty(fileno(out)) && !(term && strcmp(term, "dumb") == 0);
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&c->wake, &ca) != 0 || !(c->buf = malloc(BUF_SIZE))) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    /* Off a terminal, one line per event goes to a file or a pipe: line
     * buffering makes that one write(2) a line, not one per fprintf piece
     * as on unbuffered stderr, and each line is still out at once. */
    if (!c->tty && progress)
        setvbuf(out, NULL, _IOLBF, 1u << 14);
    return c;
}

void console_free(console_t *c)
{
    if (!c)
        return;
    stop_flusher(c);
    free(c->running);
    free(c->rnext);
    free(c->rprev);
    free(c->buf);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool cli_parse_log_format(const char *text, cli_log_format_t *out)
{
    if (strcmp(text, "text") == 0)
        *out = CLI_LOG_TEXT;
    else if (strcmp(text, "json") == 0)
        *out = CLI_LOG_JSON;
    else
        return false;
    return true;
}

void console_begin(console_t *c, const dp_graph_t *g)
{
    pthread_mutex_lock(&c->lock);
    c->g = g;
    c->total = dp_graph_job_count(g);
    free(c->running);
    free(c->rnext);
    free(c->rprev);
    c->running = calloc(c->total ? c->total : 1, sizeof *c->running);
    c->rnext = malloc((c->total ? c->total : 1) * sizeof *c->rnext);
    c->rprev = malloc((c->total ? c->total : 1) * sizeof *c->rprev);
    c->rhead = c->rtail = RNONE;
    c->finished = c->failed = c->nrunning = 0;
    bool start = c->progress && !c->tty && !c->batch;
    pthread_mutex_unlock(&c->lock);
    /* Without the flusher (it could not start), every line is written at
     * once, as it used to be. */
    if (start) {
        bool ok = pthread_create(&c->flusher, NULL, flusher_main, c) == 0;
        pthread_mutex_lock(&c->lock);
        c->batch = ok;
        /* JSON lines carry the time they are written: not delayed. */
        c->pend_ok = ok && c->format == CLI_LOG_TEXT;
        c->last_write_ns = dp__now_ns();
        /* The flusher may already wait without a deadline (it took the
         * lock first and saw no pending starts allowed): it looks again. */
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
    }
}

static int term_width(console_t *c)
{
    struct winsize ws;
    if (ioctl(fileno(c->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
        return ws.ws_col;
    return 80;
}

/* Under lock. */
static void clear_line(console_t *c)
{
    if (c->line_shown) {
        fputs("\r\033[K", c->out);
        c->line_shown = false;
    }
}

/* Under lock: "[3/10] running: B, C | 1 failed", cut to the terminal. */
static void draw_line(console_t *c)
{
    if (!c->progress || !c->tty || !c->g)
        return;
    char line[512];
    int w = term_width(c) - 1;
    if (w > (int)sizeof line - 1)
        w = (int)sizeof line - 1;
    size_t nrun = c->nrunning;
    int n = snprintf(line, sizeof line, "[%zu/%zu] ", c->finished, c->total);
    if (c->failed)
        n += snprintf(line + n, sizeof line - (size_t)n, "%zu failed | ", c->failed);
    n += snprintf(line + n, sizeof line - (size_t)n, "%zu running", nrun);
    const char *sep = ": ";
    for (uint32_t i = c->rhead; i != RNONE && n < (int)sizeof line - 1; i = c->rnext[i]) {
        char *name = dp__text_escape(dp_graph_job_name(c->g, i));
        n += snprintf(line + n, sizeof line - (size_t)n, "%s%s", sep, name ? name : "?");
        free(name);
        sep = ", ";
    }
    if (n >= w && w > 3) {
        /* Cut with an ellipsis so a cut list does not look complete. */
        line[w - 3] = line[w - 2] = line[w - 1] = '.';
        line[w] = '\0';
    }
    fprintf(c->out, "\r\033[K%s", line);
    fflush(c->out);
    c->line_shown = true;
}

static void format_time(uint64_t ns, char *buf, size_t len)
{
    time_t secs = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ns / 1000000u % 1000u));
}

char *cli_json_line(uint64_t time_ns, dp_log_level_t level, const char *job, unsigned attempt, const char *plugin,
                    const char *message, const char *event)
{
    char t[40];
    format_time(time_ns, t, sizeof t);
    dp__jsonw_t w;
    dp__jsonw_init(&w, NULL, 0);
    dp__jsonw_object_open(&w);
    dp__jsonw_key_lit(&w, "time");
    dp__jsonw_string(&w, t);
    dp__jsonw_key_lit(&w, "level");
    dp__jsonw_string(&w, dp_log_level_name(level));
    dp__jsonw_key_lit(&w, "job");
    dp__jsonw_string(&w, job);
    dp__jsonw_key_lit(&w, "attempt");
    if (attempt)
        dp__jsonw_int(&w, attempt);
    else
        dp__jsonw_null(&w);
    dp__jsonw_key_lit(&w, "plugin");
    dp__jsonw_string(&w, plugin);
    dp__jsonw_key_lit(&w, "message");
    dp__jsonw_string(&w, message ? message : "");
    if (event) {
        dp__jsonw_key_lit(&w, "event");
        dp__jsonw_string(&w, event);
    }
    dp__jsonw_object_close(&w);
    char *line = dp__jsonw_finish(&w) == 0 ? dp__jsonw_take(&w, NULL) : NULL;
    dp__jsonw_discard(&w);
    return line;
}

/* Under lock. One line per record: time, level, job, attempt, plugin,
 * message; "-" for what a run-level message does not have. */
static void write_record(console_t *c, const dp_log_record_t *rec)
{
    if (c->format == CLI_LOG_JSON) {
        char *line = cli_json_line(rec->time_ns, rec->level, rec->job, rec->attempt, rec->plugin, rec->message, NULL);
        if (line) {
            fprintf(c->out, "%s\n", line);
            free(line);
        }
        return;
    }
    char t[40];
    format_time(rec->time_ns, t, sizeof t);
    char attempt[16] = "-";
    if (rec->attempt)
        snprintf(attempt, sizeof attempt, "%u", rec->attempt);
    /* One record, one line: names and messages may hold any bytes. */
    char *job = rec->job ? dp__text_escape(rec->job) : NULL;
    char *plugin = rec->plugin ? dp__text_escape(rec->plugin) : NULL;
    char *msg = dp__text_escape(rec->message ? rec->message : "");
    fprintf(c->out, "%s %-5s job=%s attempt=%s plugin=%s: %s\n", t, dp_log_level_name(rec->level), job ? job : "-",
            attempt, plugin ? plugin : "-", msg ? msg : "(out of memory)");
    free(job);
    free(plugin);
    free(msg);
}

void console_log_cb(void *user, const dp_log_record_t *rec)
{
    console_t *c = user;
    if (rec->level > c->level)
        return;
    pthread_mutex_lock(&c->lock);
    take_pending(c);
    write_buf(c);
    clear_line(c);
    write_record(c, rec);
    draw_line(c);
    fflush(c->out);
    pthread_mutex_unlock(&c->lock);
}

void console_logf(console_t *c, dp_log_level_t level, const char *fmt, ...)
{
    if (level > c->level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dp_log_record_t rec = {.level = level, .message = msg, .time_ns = dp__wall_ns()};
    console_log_cb(c, &rec);
}

/* Whether dp__text_escape would leave s as it is (printable ASCII). */
static bool plain_text(const char *s, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            return false;
    *len = (size_t)(p - (const unsigned char *)s);
    return true;
}

/* Decimal digits of v, right-aligned, ending before end; returns the
 * first digit. */
static char *put_u64(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

/* "[3/10]  12.345s NAME: started\n" and "... NAME: success after 1 attempt\n"
 * (the lines of almost every event), as event_line's printf formats write
 * them, without printf; false when the event needs another line. Kept for
 * bench/README.md ("Heap tuning and hand-built rows"): 200 000 such lines
 * take 14 ms, 95 ms through printf (~8 % of `daggerpool run` on 100 000 jobs). */
static bool quick_line(console_t *c, const dp_event_t *ev, const char *name)
{
    size_t nlen;
    const char *tail;
    if (ev->kind == DP_EV_ATTEMPT_START && ev->attempt <= 1)
        tail = ": started\n";
    else if (ev->kind == DP_EV_JOB_END && ev->attempt == 1 && ev->status != DP_STATUS_FAILED &&
             dp_status_name(ev->status))
        tail = NULL;
    else
        return false;
    /* printf rounds the double nearest to ns / 1e9; that is the integer
     * rounding below except on an exact half millisecond, where the
     * double's binary error decides, and past days of run, where the
     * double's error reaches a nanosecond: printf's line then. */
    if (!plain_text(name, &nlen) || nlen > 256 || ev->time_ns % 1000000u == 500000u ||
        ev->time_ns >= 1000000000000000ull)
        return false;
    char line[512], num[64], *end = num + sizeof num;
    size_t n = 0;
    line[n++] = '[';
    char *d = put_u64(end, c->finished);
    memcpy(line + n, d, (size_t)(end - d));
    n += (size_t)(end - d);
    line[n++] = '/';
    d = put_u64(end, c->total);
    memcpy(line + n, d, (size_t)(end - d));
    n += (size_t)(end - d);
    line[n++] = ']';
    line[n++] = ' ';
    /* %8.3f of the seconds: milliseconds rounded to nearest, padded to 8. */
    uint64_t ms = (ev->time_ns + 500000u) / 1000000u;
    char *p = end;
    *--p = (char)('0' + ms % 10);
    *--p = (char)('0' + ms / 10 % 10);
    *--p = (char)('0' + ms / 100 % 10);
    *--p = '.';
    p = put_u64(p, ms / 1000);
    while (end - p < 8)
        *--p = ' ';
    memcpy(line + n, p, (size_t)(end - p));
    n += (size_t)(end - p);
    line[n++] = 's';
    line[n++] = ' ';
    memcpy(line + n, name, nlen);
    n += nlen;
    if (tail) {
        memcpy(line + n, tail, strlen(tail));
        n += strlen(tail);
    } else {
        const char *st = dp_status_name(ev->status);
        line[n++] = ':';
        line[n++] = ' ';
        memcpy(line + n, st, strlen(st));
        n += strlen(st);
        static const char after[] = " after 1 attempt\n";
        memcpy(line + n, after, sizeof after - 1);
        n += sizeof after - 1;
    }
    put(c, line, n);
    return true;
}

/* With --log-format json: the event as a log line's JSON object (the same
 * keys) with "event": started, attempt_failed, a job's final status
 * (success, failed, not_ready, unknown), skipped or reused; the message is what the
 * text line says after the job's name. */
static void event_json(console_t *c, const dp_event_t *ev, const char *name)
{
    char msg[9216]; /* an error is cut to 8 KiB */
    const char *event;
    dp_log_level_t level = DP_LOG_INFO;
    const char *error = ev->error ? ev->error : "(no message)";
    switch (ev->kind) {
    case DP_EV_ATTEMPT_START:
        event = "started";
        if (ev->attempt > 1)
            snprintf(msg, sizeof msg, "[%zu/%zu] attempt %u started", c->finished, c->total, ev->attempt);
        else
            snprintf(msg, sizeof msg, "[%zu/%zu] started", c->finished, c->total);
        break;
    case DP_EV_ATTEMPT_END:
        if (ev->status != DP_STATUS_FAILED)
            return;
        event = "attempt_failed";
        level = DP_LOG_WARN;
        snprintf(msg, sizeof msg, "[%zu/%zu] attempt %u failed: %s", c->finished, c->total, ev->attempt, error);
        break;
    case DP_EV_JOB_END:
        event = dp_status_name(ev->status) ? dp_status_name(ev->status) : "unknown";
        if (ev->status == DP_STATUS_FAILED)
            level = DP_LOG_ERROR;
        snprintf(msg, sizeof msg, "[%zu/%zu] %s after %u attempt%s%s%s", c->finished, c->total, event, ev->attempt,
                 ev->attempt == 1 ? "" : "s", ev->status == DP_STATUS_FAILED && ev->error ? ": " : "",
                 ev->status == DP_STATUS_FAILED && ev->error ? ev->error : "");
        break;
    case DP_EV_JOB_SKIPPED:
        event = "skipped";
        snprintf(msg, sizeof msg, "[%zu/%zu] skipped", c->finished, c->total);
        break;
    case DP_EV_JOB_REUSED:
        event = "reused";
        snprintf(msg, sizeof msg, "[%zu/%zu] reused", c->finished, c->total);
        break;
    default: return;
    }
    char *line = cli_json_line(dp__wall_ns(), level, name, ev->attempt, NULL, msg, event);
    if (line) {
        put(c, line, strlen(line));
        put(c, "\n", 1);
        free(line);
    }
}

/* Off a terminal: one plain line per job event, for CI logs and pipes. */
static void event_line(console_t *c, const dp_event_t *ev)
{
    const char *raw = ev->name ? ev->name : dp_graph_job_name(c->g, ev->job);
    if (c->format == CLI_LOG_JSON) {
        event_json(c, ev, raw ? raw : "?");
        return;
    }
    if (raw && quick_line(c, ev, raw))
        return;
    char *name = dp__text_escape(raw);
    char *error = ev->error ? dp__text_escape(ev->error) : NULL;
    if (!name) {
        free(error);
        return;
    }
    double secs = (double)ev->time_ns / 1e9;
    switch (ev->kind) {
    case DP_EV_ATTEMPT_START:
        if (ev->attempt > 1)
            putf(c, "[%zu/%zu] %8.3fs %s: attempt %u started\n", c->finished, c->total, secs, name, ev->attempt);
        else
            putf(c, "[%zu/%zu] %8.3fs %s: started\n", c->finished, c->total, secs, name);
        break;
    case DP_EV_ATTEMPT_END:
        /* The final attempt is reported by JOB_END; say here only what
         * JOB_END will not: an attempt that failed and may be retried. */
        if (ev->status == DP_STATUS_FAILED)
            putf(c, "[%zu/%zu] %8.3fs %s: attempt %u failed: %s\n", c->finished, c->total, secs, name, ev->attempt,
                 error ? error : "(no message)");
        break;
    case DP_EV_JOB_END:
        putf(c, "[%zu/%zu] %8.3fs %s: %s after %u attempt%s%s%s\n", c->finished, c->total, secs, name,
             dp_status_name(ev->status), ev->attempt, ev->attempt == 1 ? "" : "s",
             ev->status == DP_STATUS_FAILED && error ? ": " : "", ev->status == DP_STATUS_FAILED && error ? error : "");
        break;
    case DP_EV_JOB_SKIPPED: putf(c, "[%zu/%zu] %8.3fs %s: skipped\n", c->finished, c->total, secs, name); break;
    case DP_EV_JOB_REUSED: putf(c, "[%zu/%zu] %8.3fs %s: reused\n", c->finished, c->total, secs, name); break;
    }
    free(name);
    free(error);
}

/* Under lock: the pending starts written, oldest first (their events'
 * times; a tie by worker), with the counts of now. */
static void take_pending(console_t *c)
{
    unsigned n = atomic_load_explicit(&c->npend, memory_order_relaxed);
    if (n > NPENDING)
        n = NPENDING;
    struct {
        uint32_t job;
        uint64_t t;
    } got[NPENDING];
    unsigned k = 0;
    for (unsigned w = 0; w < n; w++) {
        pending_t *p = &c->pend[w];
        /* Acquire: the worker's job and time_ns (2: still being filled,
         * taken next time). */
        if (atomic_load_explicit(&p->full, memory_order_acquire) != 1)
            continue;
        unsigned i = k++;
        /* Insertion by time (a few slots at most). */
        while (i > 0 && got[i - 1].t > p->time_ns) {
            got[i] = got[i - 1];
            i--;
        }
        got[i].job = p->job;
        got[i].t = p->time_ns;
        /* Release: the reads above come before the worker's next write. */
        atomic_store_explicit(&p->full, 0, memory_order_release);
    }
    for (unsigned i = 0; i < k; i++) {
        if (!c->g || got[i].job >= c->total)
            continue;
        dp_event_t ev = {
            .kind = DP_EV_ATTEMPT_START,
            .job = got[i].job,
            .name = dp_graph_job_name(c->g, got[i].job),
            .attempt = 1,
            .time_ns = got[i].t,
            .start_ns = -1,
        };
        running_add(c, ev.job);
        event_line(c, &ev);
    }
}

/* The start of a first attempt left in its worker's slot without the lock
 * (see the top of the file); false when it cannot be (the slot still
 * holds a start nobody wrote yet, or too many workers). */
static bool leave_pending(console_t *c, const dp_event_t *ev)
{
    if (ev->worker >= NPENDING)
        return false;
    pending_t *p = &c->pend[ev->worker];
    /* 0 -> 2 (being filled): one thread per slot even if two threads ever
     * reported under one worker index. Acquire: after the last taker's
     * reads of the fields. */
    int empty = 0;
    if (!atomic_compare_exchange_strong_explicit(&p->full, &empty, 2, memory_order_acquire, memory_order_relaxed))
        return false;
    unsigned n = atomic_load_explicit(&c->npend, memory_order_relaxed);
    while (n <= ev->worker && !atomic_compare_exchange_weak_explicit(&c->npend, &n, ev->worker + 1,
                                                                     memory_order_relaxed, memory_order_relaxed))
        ;
    p->job = ev->job;
    p->time_ns = ev->time_ns;
    /* Release: job and time_ns, for take_pending; after npend (sequenced
     * before, and the reader's acquire of `full` brings it along). */
    atomic_store_explicit(&p->full, 1, memory_order_release);
    return true;
}

void console_event(console_t *c, const dp_event_t *ev)
{
    /* Without progress nothing is shown; off a terminal the running jobs
     * are never shown, and an attempt that did not fail changes nothing
     * else: no lock, no line. */
    if (!c->progress || (ev->kind == DP_EV_ATTEMPT_END && ev->status != DP_STATUS_FAILED && !c->tty))
        return;
    /* A first attempt's start: its line waits in the worker's slot. */
    if (c->pend_ok && ev->kind == DP_EV_ATTEMPT_START && ev->attempt <= 1 && leave_pending(c, ev))
        return;
    pthread_mutex_lock(&c->lock);
    take_pending(c);
    if (!c->g || ev->job >= c->total) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    switch (ev->kind) {
    case DP_EV_ATTEMPT_START: running_add(c, ev->job); break;
    case DP_EV_ATTEMPT_END: running_remove(c, ev->job); break;
    case DP_EV_JOB_END:
        running_remove(c, ev->job);
        c->finished++;
        if (ev->status == DP_STATUS_FAILED)
            c->failed++;
        break;
    case DP_EV_JOB_SKIPPED:
    case DP_EV_JOB_REUSED: c->finished++; break;
    }
    if (c->progress) {
        if (c->tty) {
            draw_line(c);
        } else {
            event_line(c, ev);
            flush_soon(c);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void console_end(console_t *c)
{
    stop_flusher(c);
    pthread_mutex_lock(&c->lock);
    clear_line(c);
    fflush(c->out);
    c->g = NULL;
    pthread_mutex_unlock(&c->lock);
}

/*
 * service_notify.c - `daggerpool watch` under systemd (Type=notify).
 *
 * When systemd starts the command with a notification socket
 * ($NOTIFY_SOCKET), watch tells it, through libsystemd's sd_notify:
 *   READY=1       after the first run (a workflow that is not ready yet is
 *                 still a service that is up: READY means "the loop runs");
 *   STATUS=...    the last run's outcome and when the next one starts;
 *   RELOADING=1   when SIGHUP reloads the workflow, READY=1 once it is done;
 *   STOPPING=1    on SIGINT/SIGTERM;
 *   WATCHDOG=1    every half WatchdogSec while the loop is healthy;
 *   EXTEND_TIMEOUT_USEC while the first run is under way, so that a first run
 *                 longer than TimeoutStartSec does not get the unit killed.
 * Without $NOTIFY_SOCKET every call here does nothing.
 *
 * The pings come from a thread of their own, because the loop's thread is
 * inside dp_graph_run for as long as a run takes. That thread pings only
 * while the loop is healthy: between runs, the loop's thread marks itself
 * alive at least every quarter watchdog period (cli_notify_alive); during a
 * run, the run counts as healthy until its timeout (workflow.timeout or
 * --timeout) plus one watchdog period has passed. A run without a timeout is healthy as
 * long as it lasts, so set one if a stuck job should trip the watchdog.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "cli.h"
#include "util.h"

/* How long past its timeout a run still counts as healthy (the run's own
 * cancellation and the writing of its result take a moment): one watchdog
 * period, or this without a watchdog. */
#define RUN_GRACE_MS 10000u
/* The start-up extension's step when no watchdog is set. */
#define EXTEND_STEP_MS 10000u

struct cli_notify {
    console_t *con;
    uint64_t watchdog_ms; /* 0: no watchdog */
    uint64_t step_ms;     /* the thread's period */
    pthread_t thread;
    bool have_thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    bool ready;           /* READY=1 sent */
    bool in_run;          /* the loop's thread is inside a run */
    uint64_t run_until;   /* in a run: healthy until (ms, monotonic); 0: no bound */
    uint64_t alive_ms;    /* between runs: when the loop last said it is alive */
    unsigned long pings;  /* WATCHDOG=1 sent */
    unsigned long missed; /* periods without a ping because the loop was not healthy */
};

static void send_state(cli_notify_t *n, const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        console_logf(n->con, DP_LOG_DEBUG, "sd_notify(\"%s\"): %s", state, strerror(-rc));
}

static bool healthy(const cli_notify_t *n, uint64_t now)
{
    if (n->in_run)
        return !n->run_until || now <= n->run_until;
    return now - n->alive_ms <= (n->watchdog_ms ? n->watchdog_ms : n->step_ms * 2);
}

static void *ping_thread(void *arg)
{
    cli_notify_t *n = arg;
    pthread_mutex_lock(&n->lock);
    while (!n->stop) {
        uint64_t now = dp__now_ms();
        bool ok = healthy(n, now);
        bool starting = !n->ready;
        pthread_mutex_unlock(&n->lock);
        if (ok && n->watchdog_ms) {
            send_state(n, "WATCHDOG=1");
            n->pings++;
        } else if (!ok) {
            n->missed++;
        }
        if (ok && starting) {
            char msg[64];
            snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)n->step_ms * 3 * 1000u);
            send_state(n, msg);
        }
        pthread_mutex_lock(&n->lock);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + n->step_ms % 1000u * 1000000u;
        ts.tv_sec += (time_t)(n->step_ms / 1000u + ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        while (!n->stop && pthread_cond_timedwait(&n->cond, &n->lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

cli_notify_t *cli_notify_open(console_t *con)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    if (!sock || !*sock)
        return NULL;
    cli_notify_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->con = con;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec)
        n->watchdog_ms = usec / 1000u ? usec / 1000u : 1;
    n->step_ms = n->watchdog_ms ? (n->watchdog_ms / 2 ? n->watchdog_ms / 2 : 1) : EXTEND_STEP_MS;
    n->alive_ms = dp__now_ms();
    pthread_mutex_init(&n->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&n->thread, NULL, ping_thread, n) == 0)
        n->have_thread = true;
    else
        console_logf(con, DP_LOG_WARN, "systemd: cannot start the watchdog thread; no WATCHDOG=1 will be sent");
    console_logf(con, DP_LOG_DEBUG, "systemd: notifying %s%s", sock, n->watchdog_ms ? " with a watchdog" : "");
    return n;
}

uint64_t cli_notify_alive_every_ms(const cli_notify_t *n)
{
    if (!n)
        return 0;
    uint64_t q = (n->watchdog_ms ? n->watchdog_ms : n->step_ms * 2) / 4;
    return q ? q : 1;
}

void cli_notify_alive(cli_notify_t *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    n->alive_ms = dp__now_ms();
    pthread_mutex_unlock(&n->lock);
}

void cli_notify_run_start(cli_notify_t *n, uint64_t timeout_ms)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    n->in_run = true;
    uint64_t grace = n->watchdog_ms ? n->watchdog_ms : RUN_GRACE_MS;
    n->run_until = timeout_ms ? dp__now_ms() + timeout_ms + grace : 0;
    pthread_mutex_unlock(&n->lock);
}

void cli_notify_run_end(cli_notify_t *n, const char *status)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    n->in_run = false;
    n->alive_ms = dp__now_ms();
    bool first = !n->ready;
    n->ready = true;
    pthread_mutex_unlock(&n->lock);
    char msg[512];
    snprintf(msg, sizeof msg, "%sSTATUS=%s", first ? "READY=1\n" : "", status);
    send_state(n, msg);
}

void cli_notify_reloading(cli_notify_t *n)
{
    if (!n)
        return;
    /* MONOTONIC_USEC: systemd 253 and later want it with RELOADING=1. */
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)(dp__now_ns() / 1000u));
    send_state(n, msg);
}

void cli_notify_reloaded(cli_notify_t *n, const char *status)
{
    if (!n)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status);
    send_state(n, msg);
}

void cli_notify_stopping(cli_notify_t *n)
{
    if (n)
        send_state(n, "STOPPING=1\nSTATUS=stopping");
}

void cli_notify_close(cli_notify_t *n)
{
    if (!n)
        return;
    if (n->have_thread) {
        pthread_mutex_lock(&n->lock);
        n->stop = true;
        pthread_cond_signal(&n->cond);
        pthread_mutex_unlock(&n->lock);
        pthread_join(n->thread, NULL);
    }
    console_logf(n->con, DP_LOG_DEBUG, "systemd: %lu watchdog ping(s), %lu period(s) missed", n->pings, n->missed);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

/*
 * signals.c - SIGINT and SIGTERM cancel the run gracefully.
 *
 * The handler only calls dp_ctx_cancel_from_signal (an atomic store and a
 * write(2), both async-signal-safe) and restores the default action, so the
 * run winds down (running jobs see cancellation, the summary and the JSON
 * are still written) while a second Ctrl-C ends the process at once for a
 * user who does not want to wait. Before it does, and at every exit, the
 * isolated jobs' runners are ended with everything they started
 * (dp__isolate_kill_all, async-signal-safe): the command never leaves
 * processes behind.
 *
 * SIGHUP asks for a reload: of every plugin (through the reloader), and in
 * `watch` of the workflow file.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cli.h"
#include "isolate.h"

static dp_ctx_t *volatile target;
static volatile sig_atomic_t caught;
static struct sigaction old_int, old_term;

static void on_signal(int sig)
{
    int saved = errno;
    if (caught) {
        /* The second: quit now, and take the runners along. */
        dp__isolate_kill_all();
        signal(sig, SIG_DFL);
        raise(sig);
        errno = saved;
        return;
    }
    caught = sig;
    if (target)
        dp_ctx_cancel_from_signal(target);
    static const char msg[] = "\ndaggerpool: interrupted; cancelling the run (again to quit now)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    errno = saved;
}

static void kill_runners_at_exit(void)
{
    dp__isolate_kill_all();
}

int cli_signals_install(dp_ctx_t *ctx)
{
    static bool at_exit;
    if (!at_exit)
        at_exit = atexit(kill_runners_at_exit) == 0;
    target = ctx;
    caught = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, &old_int) != 0 || sigaction(SIGTERM, &sa, &old_term) != 0)
        return DP_ESYS;
    return DP_OK;
}

void cli_signals_restore(void)
{
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    target = NULL;
}

int cli_signals_caught(void)
{
    return caught;
}

/* SIGHUP: reload. The handler pokes the reloader (dp_reloader_trigger is
 * async-signal-safe), counts the signal and writes to an eventfd that a
 * loop can poll; it stays installed, since a reload is not an ending. */
static dp_reloader_t *volatile hup_reloader;
static volatile sig_atomic_t hup_count;
static int hup_fd = -1;
static struct sigaction old_hup;

static void on_hup(int sig)
{
    (void)sig;
    int saved = errno;
    hup_count++;
    if (hup_reloader)
        dp_reloader_trigger(hup_reloader);
    if (hup_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(hup_fd, &one, sizeof one);
        (void)w;
    }
    errno = saved;
}

int cli_signals_install_hup(dp_reloader_t *r)
{
    if (hup_fd < 0)
        hup_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    hup_reloader = r;
    hup_count = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_hup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(SIGHUP, &sa, &old_hup) == 0 && hup_fd >= 0 ? DP_OK : DP_ESYS;
}

void cli_signals_restore_hup(void)
{
    sigaction(SIGHUP, &old_hup, NULL);
    hup_reloader = NULL;
    if (hup_fd >= 0)
        close(hup_fd);
    hup_fd = -1;
}

int cli_signals_hup_fd(void)
{
    return hup_fd;
}

bool cli_signals_hup_take(void)
{
    uint64_t v;
    bool got = false;
    while (hup_fd >= 0 && read(hup_fd, &v, sizeof v) > 0)
        got = true;
    return got;
}

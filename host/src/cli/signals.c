/*
 * signals.c - SIGINT and SIGTERM cancel the run gracefully.
 *
 * The handler only calls dp_ctx_cancel_from_signal (an atomic store and a
 * write(2), both async-signal-safe) and restores the default action, so the
 * run winds down (running jobs see cancellation, the summary and the JSON
 * are still written) while a second Ctrl-C ends the process at once for a
 * user who does not want to wait.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static dp_ctx_t *volatile target;
static volatile sig_atomic_t caught;
static struct sigaction old_int, old_term;

static void on_signal(int sig)
{
    int saved = errno;
    if (!caught)
        caught = sig;
    if (target)
        dp_ctx_cancel_from_signal(target);
    static const char msg[] = "\ndaggerpool: interrupted; cancelling the run (again to quit now)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    signal(sig, SIG_DFL); /* async-signal-safe; the next one is not ours */
    errno = saved;
}

int cli_signals_install(dp_ctx_t *ctx)
{
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

/*
 * signals.c - SIGINT and SIGTERM cancel the run gracefully; temporary files
 * go with the process however it ends.
 *
 * The handler only calls dp_ctx_cancel_from_signal (an atomic store and a
 * write(2), both async-signal-safe), so the run winds down (running jobs see
 * cancellation, the summary and the JSON are still written) while a second
 * Ctrl-C ends the process at once for a user who does not want to wait.
 * Before it does, and at every exit, the isolated jobs' runners are ended
 * with everything they started (dp__isolate_kill_all, async-signal-safe):
 * the command never leaves processes behind.
 *
 * The output files are written to temporary files renamed into place at the
 * end (common.c). Their names are kept here, in a fixed table, so that every
 * way out removes them: the normal paths through out_file_commit and
 * out_file_discard, and a signal that ends the process (the second SIGINT or
 * SIGTERM, one that comes when there is no run to cancel, SIGHUP outside a
 * run, SIGQUIT, SIGPIPE, SIGXFSZ) through the handler, which unlinks them
 * with async-signal-safe calls only and then dies of the same signal, so the
 * exit status is what it would have been. Those of the last four that were
 * ignored when the command started (nohup) stay ignored.
 *
 * SIGHUP asks for a reload: of every plugin (through the reloader), and in
 * `watch` of the workflow file.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "isolate.h"

/* ---- temporary files --------------------------------------------------- */

#define TMP_MAX_FILES 8
static char tmp_names[TMP_MAX_FILES][PATH_MAX];
static volatile sig_atomic_t tmp_used[TMP_MAX_FILES];
static pid_t tmp_owner; /* a forked child that has not exec'd yet must not unlink them */

static void remove_temps(void)
{
    if (getpid() != tmp_owner)
        return;
    for (int i = 0; i < TMP_MAX_FILES; i++)
        if (tmp_used[i])
            unlink(tmp_names[i]);
}

/* Ends the process with sig as its default action would, the temporary
 * files removed first. sig is blocked while its handler runs: raise() makes
 * it pending, and it is delivered (default action: death) on return. */
static void die_of(int sig)
{
    dp__isolate_kill_all(); /* the runners, and everything they started */
    remove_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int fatal_signals[] = {SIGHUP, SIGQUIT, SIGPIPE, SIGXFSZ};
static struct sigaction old_fatal[sizeof fatal_signals / sizeof fatal_signals[0]];
static bool fatal_installed;

static void on_fatal(int sig)
{
    int saved = errno;
    die_of(sig);
    errno = saved;
}

static void install(int sig, void (*fn)(int), struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, old);
}

/* The same for a signal whose default action ends the process, unless it
 * was ignored (nohup's SIGHUP; SIGQUIT in a shell's background job): then
 * it stays ignored. */
static void install_fatal(int sig, struct sigaction *old)
{
    if (sigaction(sig, NULL, old) == 0 && old->sa_handler == SIG_IGN)
        return;
    install(sig, on_fatal, old);
}

/* Puts back what was there before, unless another handler took the signal
 * over since (the SIGHUP of a run: it puts ours back when it ends). */
static void uninstall(int sig, void (*fn)(int), const struct sigaction *old)
{
    struct sigaction now;
    if (sigaction(sig, NULL, &now) == 0 && now.sa_handler == fn)
        sigaction(sig, old, NULL);
}

/* ---- SIGINT and SIGTERM ------------------------------------------------ */

static dp_ctx_t *volatile target;
static volatile sig_atomic_t caught;
static struct sigaction old_int, old_term;
static bool int_installed;

static bool temps_registered(void)
{
    for (int i = 0; i < TMP_MAX_FILES; i++)
        if (tmp_used[i])
            return true;
    return false;
}

static volatile sig_atomic_t json_messages;

void cli_signals_json(bool on)
{
    json_messages = on;
}

/* Digits of v into p, width wide (zero-padded); the end. */
static char *put_num(char *p, unsigned long v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + width;
}

/* The interruption message as --log-format json writes every line, built
 * with async-signal-safe calls only (clock_gettime, no gmtime: the civil
 * date from the day number by hand, Howard Hinnant's algorithm). */
static size_t json_interrupted(char *buf)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long days = (long)(ts.tv_sec / 86400), secs = (long)(ts.tv_sec % 86400);
    long z = days + 719468, era = z / 146097;
    long doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9, y = yoe + era * 400 + (m <= 2);
    static const char
        head[] = "{\"time\":\"",
        tail[] = "Z\",\"level\":\"warn\",\"job\":null,\"attempt\":null,\"plugin\":null,\"message\":\"interrupted; "
                 "cancelling the run (again to quit now)\",\"event\":\"interrupted\"}\n";
    char *p = buf;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    p = put_num(p, (unsigned long)y, 4);
    *p++ = '-';
    p = put_num(p, (unsigned long)m, 2);
    *p++ = '-';
    p = put_num(p, (unsigned long)d, 2);
    *p++ = 'T';
    p = put_num(p, (unsigned long)(secs / 3600), 2);
    *p++ = ':';
    p = put_num(p, (unsigned long)(secs / 60 % 60), 2);
    *p++ = ':';
    p = put_num(p, (unsigned long)(secs % 60), 2);
    *p++ = '.';
    p = put_num(p, (unsigned long)(ts.tv_nsec / 1000000), 3);
    memcpy(p, tail, sizeof tail - 1);
    return (size_t)(p - buf) + sizeof tail - 1;
}

static void on_signal(int sig)
{
    int saved = errno;
    dp_ctx_t *ctx = target;
    if (!caught && ctx) {
        caught = sig;
        dp_ctx_cancel_from_signal(ctx);
        static const char msg[] = "\ndaggerpool: interrupted; cancelling the run (again to quit now)\n";
        char line[256];
        size_t n = json_messages ? json_interrupted(line) : 0;
        ssize_t w = json_messages ? write(STDERR_FILENO, line, n) : write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
    } else {
        /* The second one, or one with no run to cancel: quit now. */
        die_of(sig);
    }
    errno = saved;
}

static void kill_runners_at_exit(void)
{
    dp__isolate_kill_all();
}

static void install_int_term(void)
{
    if (int_installed)
        return;
    int_installed = true;
    install(SIGINT, on_signal, &old_int);
    install(SIGTERM, on_signal, &old_term);
}

static void uninstall_int_term(void)
{
    if (!int_installed)
        return;
    int_installed = false;
    uninstall(SIGINT, on_signal, &old_int);
    uninstall(SIGTERM, on_signal, &old_term);
}

int cli_signals_install(dp_ctx_t *ctx)
{
    static bool at_exit;
    if (!at_exit)
        at_exit = atexit(kill_runners_at_exit) == 0;
    caught = 0;
    target = ctx;
    install_int_term();
    struct sigaction now;
    return sigaction(SIGINT, NULL, &now) == 0 && now.sa_handler == on_signal ? DP_OK : DP_ESYS;
}

void cli_signals_restore(void)
{
    target = NULL;
    /* With temporary files still to commit, a signal now ends the process
     * (there is no run left to cancel) and removes them first. */
    if (!temps_registered())
        uninstall_int_term();
}

int cli_tmp_register(const char *path)
{
    size_t len = strlen(path);
    if (len >= PATH_MAX)
        return -1;
    for (int i = 0; i < TMP_MAX_FILES; i++) {
        if (tmp_used[i])
            continue;
        tmp_owner = getpid();
        memcpy(tmp_names[i], path, len + 1);
        __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the name before the flag */
        tmp_used[i] = 1;
        install_int_term();
        if (!fatal_installed) {
            fatal_installed = true;
            for (size_t k = 0; k < sizeof fatal_signals / sizeof fatal_signals[0]; k++)
                install_fatal(fatal_signals[k], &old_fatal[k]);
        }
        return i;
    }
    return -1;
}

void cli_tmp_forget(int slot)
{
    if (slot < 0 || slot >= TMP_MAX_FILES)
        return;
    tmp_used[slot] = 0;
    if (temps_registered())
        return;
    if (fatal_installed) {
        fatal_installed = false;
        for (size_t k = 0; k < sizeof fatal_signals / sizeof fatal_signals[0]; k++)
            uninstall(fatal_signals[k], on_fatal, &old_fatal[k]);
    }
    if (!target)
        uninstall_int_term();
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

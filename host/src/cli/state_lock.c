/* state_lock.c - one writer per state file.
 *
 * The lock is flock(2) on PATH.lock, a file beside the state that holds
 * one line naming the holder: "pid=PID host=HOST since=ISO-TIME cmd=CMD".
 * SQLite's own locks cover single transactions; this one covers a whole
 * run or watch, so that two processes never interleave their runs and
 * --resume never reads a state that another process is changing.
 *
 * The kernel releases a flock when its holder dies, however it dies, so a
 * lock left by a killed process is never in the way: the next process
 * takes it at once and finds the dead holder's line still there (logged at
 * info: "took over"). A holder is only ever refused while it lives. The
 * line is emptied, not the file removed, on release: removing it would let
 * a third process lock a new file while a second still waits on the old
 * one. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "state_lock.h"

static void read_holder(int fd, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
}

int state_lock_take(const char *cmd, const char *path, bool wait, console_t *con, int *out)
{
    *out = -1;
    size_t n = strlen(path) + sizeof ".lock";
    char *lp = malloc(n);
    if (!lp)
        return 2;
    snprintf(lp, n, "%s.lock", path);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0) {
        if (con)
            console_logf(con, DP_LOG_WARN, "state %s cannot be written (its lock %s: %s); running without state", path,
                         lp, strerror(errno));
        else
            cli_errorf(cmd, "warning: state %s cannot be written (its lock %s: %s)", path, lp, strerror(errno));
        free(lp);
        return 1;
    }
    char holder[512];
    bool said = false;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            cli_errorf(cmd, "state %s: cannot lock %s: %s", path, lp, strerror(errno));
            close(fd);
            free(lp);
            return 2;
        }
        read_holder(fd, holder, sizeof holder);
        if (!wait) {
            cli_errorf(cmd,
                       "state %s is in use by another daggerpool (%s); fix: wait until it ends, pass --wait to "
                       "wait for it, or give this run another state with --state PATH (or --no-state)",
                       path, *holder ? holder : "holder unknown");
            close(fd);
            free(lp);
            return 2;
        }
        if (!said) {
            said = true;
            cli_errorf(cmd, "state %s is in use by another daggerpool (%s); waiting for it (--wait)", path,
                       *holder ? holder : "holder unknown");
        }
        if (cli_signals_caught()) {
            close(fd);
            free(lp);
            return 2;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    read_holder(fd, holder, sizeof holder);
    if (*holder && con)
        console_logf(con, DP_LOG_INFO, "state %s: took over the lock of a process that ended without releasing it (%s)",
                     path, holder);
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm tm;
    char since[40];
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    char line[512];
    int len = snprintf(line, sizeof line, "pid=%ld host=%s since=%s cmd=%s\n", (long)getpid(), host, since, cmd);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        /* The lock is held all the same; only the message of a second
         * process will lack the holder. */
    }
    free(lp);
    *out = fd;
    return 0;
}

void state_lock_release(int fd, const char *path)
{
    (void)path;
    if (fd < 0)
        return;
    if (ftruncate(fd, 0) != 0) {
        /* The next holder only logs a stale line. */
    }
    flock(fd, LOCK_UN);
    close(fd);
}

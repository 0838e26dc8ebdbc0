/*
 * zygote.c - daggerpool-job-runner as a zygote: the supervisor of one
 * plugin version's attempts, one after the other, with the plugin loaded
 * once (host/src/isolate_zygote.c asks for it; the wire is isolate_wire.h's).
 *
 * Why: an attempt started from a spare pays for two fresh processes (the
 * supervisor copied from the warm runner and the worker it forks), their
 * two exits and reaps, and the worker's dlopen of the plugin; on a virtual
 * machine the page faults of those fresh copies are most of it. A zygote
 * is a supervisor that stays: it loaded the plugin (its entry point and
 * init called) before serving any attempt, and forks one worker per
 * attempt, so an attempt costs one fork of a small process and its exit.
 *
 * Isolation between attempts is that of a fresh process each: every worker
 * is a new copy of the zygote, which runs no plugin code after the load
 * (no create, run, check, end or destroy ever runs here), so no attempt
 * sees what another did. The zygote refuses to serve (FAILED) when loading
 * the plugin started a thread (a fork would copy it half-done) or a child.
 *
 * As the supervisor of a spawned runner (runner.c), it is a child
 * subreaper: whatever an attempt's worker starts stays a descendant of the
 * zygote, whatever group or session it moves to, and once the worker is
 * reaped every descendant left is SIGKILLed before DONE goes to the host.
 * It serves one attempt at a time, so every descendant is that attempt's.
 * Its parent is the host (the warm runner cloned it with CLONE_PARENT);
 * DP_ISOLATE_SIG_KILL_ALL, its parent-death signal too, kills the attempt
 * under way with all it started and ends the zygote, and so does its
 * socket's closing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isolate_wire.h"
#include "runner.h"

static unsigned char request[DP_ISOLATE_WARM_MAX_REQUEST];

/* Sends one message to the host; false if it is gone. */
static bool tell(int sock, uint32_t kind, int32_t value)
{
    unsigned char msg[12];
    uint32_t magic = DP_ISOLATE_ZYGOTE_MAGIC;
    memcpy(msg, &magic, 4);
    memcpy(msg + 4, &kind, 4);
    memcpy(msg + 8, &value, 4);
    ssize_t n;
    while ((n = send(sock, msg, sizeof msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    return n == (ssize_t)sizeof msg;
}

/* This process's threads, or -1 if they cannot be counted. */
static long threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Forks the worker of the attempt whose request (n bytes) and descriptors
 * came; closes the descriptors here. Its pid, or -1. */
static pid_t start_worker(const int *fds, ssize_t n)
{
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Should the zygote be killed, so is the worker. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self)
            _exit(2);
        /* Its own process group, as a spawned runner's: the host's SIGTERM
         * (through the zygote) reaches the group. */
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dp__runner_take_request(fds, (char *)request + 4, (char *)request + n);
        /* Nothing the plugin executes gets the runner's descriptors. */
        for (int fd = DP_ISOLATE_FD_CTL; fd <= DP_ISOLATE_FD_PLUGIN; fd++) {
            int flags = fcntl(fd, F_GETFD);
            if (flags >= 0)
                fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
        _exit(dp__runner_worker_main(true));
    }
    /* The worker has them: the host must see the sockets close with it. */
    for (int i = 0; i < DP_ISOLATE_WARM_NFDS; i++)
        close(fds[i]);
    if (pid > 0)
        setpgid(pid, pid); /* either of us may come first */
    return pid;
}

/* Ends the attempt under way, if any, with everything it started (and
 * tells the host how its worker ended), then the zygote. */
static void end(int sock, bool active) __attribute__((noreturn));
static void end(int sock, bool active)
{
    dp__runner_kill_descendants();
    int status;
    if (active && dp__runner_worker_done(&status))
        (void)tell(sock, DP_ISOLATE_ZYGOTE_DONE, status);
    _exit(0);
}

void dp__runner_zygote_main(pid_t host_pid, int sock)
{
    /* The host's death ends the attempt under way, and the zygote. */
    prctl(PR_SET_PDEATHSIG, DP_ISOLATE_SIG_KILL_ALL);
    if (getppid() != host_pid)
        _exit(0);
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_NAME, DP_ISOLATE_ZYGOTE_COMM);
    /* Above the descriptors a request brings, which land low. */
    int hi = fcntl(sock, F_DUPFD_CLOEXEC, 10);
    if (hi < 0)
        _exit(2);
    close(sock);
    sock = hi;
    if (!tell(sock, DP_ISOLATE_ZYGOTE_STARTED, (int32_t)getpid()))
        _exit(0);

    /* The plugin, once: what each worker would do first. */
    long before = threads();
    bool ok = before > 0 && dp__runner_preload();
    int st;
    ok = ok && threads() == before && waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD;
    sigset_t set;
    dp__isolate_runner_sigset(&set);
    int sfd = ok ? signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK) : -1;
    if (sfd >= 0 && sfd < 10) {
        int h = fcntl(sfd, F_DUPFD_CLOEXEC, 10);
        close(sfd);
        sfd = h;
    }
    if (sfd < 0) {
        (void)tell(sock, DP_ISOLATE_ZYGOTE_FAILED, 0);
        end(sock, false);
    }
    if (!tell(sock, DP_ISOLATE_ZYGOTE_READY, (int32_t)getpid()))
        end(sock, false);

    bool active = false;
    pid_t worker = 0;
    for (;;) {
        int status;
        if (active && dp__runner_worker_done(&status)) {
            /* The attempt is over: nothing it started may outlive it. */
            dp__runner_kill_descendants();
            active = false;
            if (!tell(sock, DP_ISOLATE_ZYGOTE_DONE, status))
                end(sock, false);
            continue;
        }
        struct pollfd p[2] = {{.fd = sock, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0)
            continue; /* EINTR */
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                    dp__runner_reap_exited();
                else if (si.ssi_signo == DP_ISOLATE_SIG_KILL_ALL)
                    end(sock, active);
                else if (active && (pid_t)si.ssi_pid != getppid())
                    /* SIGTERM and the like sent to us: pass it on, as a
                     * supervisor does. */
                    kill(worker, (int)si.ssi_signo);
            }
            continue; /* the worker may be done */
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        int fds[DP_ISOLATE_WARM_NFDS], nfds = 0;
        ssize_t n = dp__runner_recv(sock, request, sizeof request, fds, DP_ISOLATE_WARM_NFDS, &nfds);
        if (n == 0 || (n < 0 && errno != EMSGSIZE))
            end(sock, active); /* the host is gone, or ended us */
        if (!active && n > 0 && dp__runner_is_request(request, n, nfds)) {
            worker = start_worker(fds, n);
            if (worker > 0) {
                dp__runner_watch(worker);
                active = true;
            } else if (!tell(sock, DP_ISOLATE_ZYGOTE_DONE, 2 << 8)) { /* as if it exited with 2 */
                end(sock, false);
            }
            continue;
        }
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        uint32_t magic = 0, kind = 0;
        if (n == 12) {
            memcpy(&magic, request, 4);
            memcpy(&kind, request + 4, 4);
        }
        if (magic != DP_ISOLATE_ZYGOTE_MAGIC || !active)
            continue; /* late (the attempt is over), or not the host's */
        if (kind == DP_ISOLATE_ZYGOTE_TERM && !dp__runner_worker_done(NULL))
            kill(-worker, SIGTERM);
        else if (kind == DP_ISOLATE_ZYGOTE_KILL)
            dp__runner_kill_descendants();
    }
}

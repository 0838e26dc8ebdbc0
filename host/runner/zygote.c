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
 * The fork is made ahead: once an attempt is over (DONE sent) the zygote
 * forks the next attempt's worker, which writes the first pages it will
 * write (stack, heap, request buffer) while it waits on a socket of its
 * own for the request, which the zygote passes on; so the fork and most of the
 * worker's page faults are off the attempt's path. That worker exists
 * only while no attempt is under way (the sweep at an attempt's end finds
 * the attempt's processes only), never serves a second attempt, holds
 * nothing but stdin, stdout, stderr and its socket until its request
 * comes, and dies with the zygote (parent-death signal, and its socket's
 * closing).
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
#include <stdlib.h>
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
static int next_sock = -1;

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

/* The worker's first steps once it has its request (n bytes) and
 * descriptors: never returns. */
static void run_worker(const int *fds, ssize_t n) __attribute__((noreturn));
static void run_worker(const int *fds, ssize_t n)
{
    dp__runner_take_request(fds, (char *)request + 4, (char *)request + n);
    /* Nothing the plugin executes gets the runner's descriptors. */
    for (int fd = DP_ISOLATE_FD_CTL; fd <= DP_ISOLATE_FD_PLUGIN; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0)
            fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    _exit(dp__runner_worker_main(true));
}

/* In a fresh fork of the zygote: dies with it, its own process group (the
 * host's SIGTERM, through the zygote, reaches the group), no signal
 * blocked. false if the zygote is gone already. */
static bool become_worker(pid_t zygote)
{
    /* Should the zygote be killed, so is the worker. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != zygote)
        return false;
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    return true;
}

/* Forks the worker of the attempt whose request (n bytes) and descriptors
 * came; closes the descriptors here. Its pid, or -1. */
static pid_t start_worker(const int *fds, ssize_t n)
{
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        if (!become_worker(self))
            _exit(2);
        run_worker(fds, n);
    }
    /* The worker has them: the host must see the sockets close with it. */
    for (int i = 0; i < DP_ISOLATE_WARM_NFDS; i++)
        close(fds[i]);
    if (pid > 0)
        setpgid(pid, pid); /* either of us may come first */
    return pid;
}

/* What the next worker writes first, written while it waits (so that the
 * copies of those pages, and their faults, are not on the attempt's path):
 * its stack, the top of its heap, the start of the request buffer. */
static void __attribute__((noinline)) touch_stack(void)
{
    volatile char buf[16 * 1024];
    for (size_t i = 0; i < sizeof buf; i += 4096)
        buf[i] = 0;
}

static void pretouch(void)
{
    touch_stack();
    void *p = malloc(16 * 1024);
    if (p) {
        memset(p, 0, 16 * 1024);
        free(p);
    }
    memset(request, 0, 8 * 1024);
}

/* The next attempt's worker, forked ahead while the zygote is idle: it
 * waits on its own socket for the request (and descriptors) the zygote
 * passes on. Its pid and the zygote's end of that socket (*wsock), or -1.
 * It holds nothing but stdin, stdout, stderr and that socket, dies with
 * the zygote (its parent-death signal, and the socket's closing) and
 * exits unused if the zygote closes its end. */
static pid_t fork_next(int sock, int sfd, int *wsock)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        close(sock);
        close(sfd);
        if (!become_worker(self))
            _exit(0);
        prctl(PR_SET_NAME, DP_ISOLATE_ZYGOTE_NEXT_COMM);
        /* Only its socket, at 3 (the request's descriptors replace it). */
        if (sv[1] != 3) {
            if (dup2(sv[1], 3) < 0)
                _exit(2);
            close(sv[1]);
        }
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
        closefrom(4);
#else
        for (int fd = 4; fd < 1024; fd++)
            close(fd);
#endif
        pretouch();
        int fds[DP_ISOLATE_WARM_NFDS], nfds = 0;
        ssize_t n = dp__runner_recv(3, request, sizeof request, fds, DP_ISOLATE_WARM_NFDS, &nfds);
        if (n <= 0 || !dp__runner_is_request(request, n, nfds))
            _exit(0); /* the zygote closed it unused, or is gone */
        run_worker(fds, n);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return -1;
    }
    setpgid(pid, pid); /* either of us may come first */
    /* Above the descriptors a request brings, as the host's socket. */
    int hi = fcntl(sv[0], F_DUPFD_CLOEXEC, 10);
    if (hi >= 0) {
        close(sv[0]);
        sv[0] = hi;
    }
    *wsock = sv[0];
    return pid;
}

/* Hands the attempt (n bytes of request, its descriptors) to the worker
 * forked ahead; closes the descriptors here. false if that worker is gone
 * (its socket closed): the caller forks one. */
static bool hand_over(int wsock, const int *fds, ssize_t n)
{
    struct iovec iov = {request, (size_t)n};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * DP_ISOLATE_WARM_NFDS)];
    } c;
    memset(&c, 0, sizeof c);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * DP_ISOLATE_WARM_NFDS);
    memcpy(CMSG_DATA(h), fds, sizeof(int) * DP_ISOLATE_WARM_NFDS);
    ssize_t r;
    while ((r = sendmsg(wsock, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    if (r != n)
        return false;
    for (int i = 0; i < DP_ISOLATE_WARM_NFDS; i++)
        close(fds[i]);
    return true;
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
    /* The worker forked ahead for the next attempt (only ever while no
     * attempt is under way, so that the sweep at an attempt's end finds
     * the attempt's processes only): its pid and our end of its socket. */
    pid_t next = fork_next(sock, sfd, &next_sock);
    for (;;) {
        int status;
        if (active && dp__runner_worker_done(&status)) {
            /* The attempt is over: nothing it started may outlive it. */
            dp__runner_kill_descendants();
            active = false;
            if (!tell(sock, DP_ISOLATE_ZYGOTE_DONE, status))
                end(sock, false);
            next = fork_next(sock, sfd, &next_sock);
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
            /* Gone (its socket closed, reaped with SIGCHLD) or refused:
             * a worker forked now. The one forked ahead exits when its
             * socket closes, unused. */
            if (next > 0 && hand_over(next_sock, fds, n))
                worker = next;
            else
                worker = start_worker(fds, n);
            if (next > 0)
                close(next_sock);
            next = -1;
            if (worker > 0) {
                dp__runner_watch(worker);
                active = true;
            } else if (!tell(sock, DP_ISOLATE_ZYGOTE_DONE, 2 << 8)) { /* as if it exited with 2 */
                end(sock, false);
            } else {
                next = fork_next(sock, sfd, &next_sock);
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

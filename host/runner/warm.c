/*
 * warm.c - daggerpool-job-runner's warm mode: one process per host that
 * starts the supervisor of each isolated attempt (host/src/isolate_warm.c
 * asks; the wire is isolate_wire.h's "warm runner").
 *
 * Why: spawning the runner afresh for every attempt (exec, the dynamic
 * loader's work, the C library's start) costs most of an isolated attempt.
 * This process has done all that once, stays single-threaded, runs no
 * plugin code and holds nothing of any attempt, so a copy of it is a clean
 * start for the next supervisor: a clone is a fraction of a spawn.
 *
 * It keeps DP_ISOLATE_WARM_SPARES spares made ahead: supervisors whose
 * worker is forked and waits on a socket whose other end the host holds.
 * The host hands an attempt to a spare itself (this process is not on an
 * attempt's path, and attempts started at once do not wait for each other
 * here) and tells this process, which makes the next one meanwhile.
 *
 * The clone takes CLONE_PARENT: the supervisor is the host's child, exactly
 * as a spawned one, so the host reaps it, watches it with a pidfd and reads
 * its exit status itself, and nothing about an attempt depends on this
 * process once the supervisor is started (it may die, be killed or be
 * replaced while attempts run). It never has children of its own.
 *
 * Its life: the host's keeper thread starts it (isolate_warm.c) and is its
 * parent; it dies with that thread, which lives as long as the host
 * (PR_SET_PDEATHSIG, SIGKILL), and it also exits when its socket closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "isolate_wire.h"
#include "runner.h"

extern char **environ;

/* The warm runner's socket to the host: fd 3 as started, moved above the
 * descriptors it receives so that none of them lands on it. */
#define WARM_SOCK 9

static unsigned char request[DP_ISOLATE_WARM_MAX_REQUEST];

static void close_from(int lo)
{
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
    closefrom(lo);
#else
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = lo; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
        close((int)fd);
#endif
}

/* clone(2) as fork(2), but for the parent of the copy (the kernel's
 * argument order: flags, stack first, but on s390). */
static long clone_parent(void)
{
    unsigned long flags = (unsigned long)(CLONE_PARENT | SIGCHLD);
#if defined(__s390__) || defined(__s390x__)
    return syscall(SYS_clone, NULL, flags, NULL, NULL, 0UL);
#else
    return syscall(SYS_clone, flags, NULL, NULL, NULL, 0UL);
#endif
}

/* The environment in the request (NUL-terminated strings from p to end)
 * as an environ array; NULL if out of memory. */
static char **environment(char *p, char *end)
{
    size_t n = 0;
    for (char *q = p; q < end; q += strlen(q) + 1)
        n++;
    char **v = malloc((n + 1) * sizeof *v);
    if (!v)
        return NULL;
    n = 0;
    for (char *q = p; q < end; q += strlen(q) + 1)
        v[n++] = q;
    v[n] = NULL;
    return v;
}

ssize_t dp__runner_recv(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds)
{
    struct iovec iov = {buf, cap};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * DP_ISOLATE_WARM_NFDS)];
    } c;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
    ssize_t n;
    *nfds = 0;
    while ((n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    if (n < 0)
        return -1;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
            if (*nfds < maxfds)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (int i = 0; i < *nfds; i++)
            close(fds[i]);
        *nfds = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

bool dp__runner_is_request(const unsigned char *buf, ssize_t n, int nfds)
{
    uint32_t magic = 0;
    if (n >= (ssize_t)sizeof magic)
        memcpy(&magic, buf, sizeof magic);
    return nfds == DP_ISOLATE_WARM_NFDS && magic == DP_ISOLATE_WARM_MAGIC && (n == 4 || (n > 4 && buf[n - 1] == '\0'));
}

void dp__runner_take_request(const int *fds, char *env, char *end)
{
    /* Named as a spawned runner is. */
    prctl(PR_SET_NAME, "daggerpool-job-");
    /* Above anything the dup2s below write to, so that none clobbers
     * another source. */
    int hi[DP_ISOLATE_WARM_NFDS];
    for (int i = 0; i < DP_ISOLATE_WARM_NFDS; i++) {
        hi[i] = fcntl(fds[i], F_DUPFD, 16);
        if (hi[i] < 0)
            _exit(2);
    }
    if (dup2(hi[DP_ISOLATE_WARM_FD_STDERR], 1) < 0 || dup2(hi[DP_ISOLATE_WARM_FD_STDERR], 2) < 0 ||
        dup2(hi[DP_ISOLATE_WARM_FD_CTL], DP_ISOLATE_FD_CTL) < 0 ||
        dup2(hi[DP_ISOLATE_WARM_FD_CANCEL], DP_ISOLATE_FD_CANCEL) < 0 ||
        dup2(hi[DP_ISOLATE_WARM_FD_PLUGIN], DP_ISOLATE_FD_PLUGIN) < 0 || fchdir(hi[DP_ISOLATE_WARM_FD_CWD]) != 0)
        _exit(2);
    /* Nothing else: not the socket it was activated through, not the
     * received copies. */
    close_from(DP_ISOLATE_FD_PLUGIN + 1);
    char **v = environment(env, end);
    if (v)
        environ = v;
}

void dp__runner_spare_activate(int sock)
{
    int fds[DP_ISOLATE_WARM_NFDS], nfds = 0;
    ssize_t n = dp__runner_recv(sock, request, sizeof request, fds, DP_ISOLATE_WARM_NFDS, &nfds);
    if (n == 0)
        _exit(0); /* the warm runner is gone, and this spare unused */
    if (n < 0 || !dp__runner_is_request(request, n, nfds)) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        _exit(2);
    }
    dp__runner_take_request(fds, (char *)request + 4, (char *)request + n);
}

/* Tells the host something: DP_ISOLATE_WARM_HELLO with its pid,
 * DP_ISOLATE_WARM_SPARE with the spare's pid and `fd` (the host's end of
 * the spare's socket), or DP_ISOLATE_WARM_FAILED with -errno. */
static void tell(uint32_t kind, int32_t value, int fd)
{
    unsigned char msg[12];
    uint32_t magic = DP_ISOLATE_WARM_MAGIC;
    memcpy(msg, &magic, 4);
    memcpy(msg + 4, &kind, 4);
    memcpy(msg + 8, &value, 4);
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } c;
    memset(&c, 0, sizeof c);
    struct iovec iov = {msg, sizeof msg};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        m.msg_control = c.buf;
        m.msg_controllen = sizeof c.buf;
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &fd, sizeof fd);
    }
    ssize_t n;
    while ((n = sendmsg(WARM_SOCK, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    if (n != (ssize_t)sizeof msg)
        _exit(0); /* the host is gone */
}

static pid_t host_pid;

/* Starts a spare: a supervisor (a child of the host) whose worker is
 * forked already and waits on its socket for its attempt; the host gets
 * its pid and the other end of that socket, and sends the attempt's
 * request there itself. false if the clone failed (errno). */
static bool make_spare(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    /* A copy of this process whose parent is the host (CLONE_PARENT): no
     * fork of a threaded process, and nothing to reap here. This process
     * holds no other spare's socket to pass on to it: each is the host's
     * alone once told. */
    long pid = clone_parent();
    if (pid == 0) {
        /* Its own process group first, as a spawned runner starts in: the
         * host's escalation signals the group. (Until here it was in the
         * warm runner's, which has no terminal's signals either.) */
        setpgid(0, 0);
        close(WARM_SOCK);
        close(sv[0]);
        prctl(PR_SET_NAME, "daggerpool-job-");
        dp__runner_supervise(host_pid, sv[1]);
    }
    int e = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        errno = e;
        return false;
    }
    tell(DP_ISOLATE_WARM_SPARE, (int32_t)pid, sv[0]);
    close(sv[0]);
    return true;
}

/* Starts a zygote (the host's ZYGOTE: its socket and the plugin's private
 * copy, both closed here after): a clone whose parent is the host, as a
 * spare's supervisor, that loads the plugin and serves its attempts
 * (zygote.c). It tells the host its pid itself; a failed clone shows as
 * that socket closing with nothing said. */
static void make_zygote(int zsock, int plugin)
{
    long pid = clone_parent();
    if (pid == 0) {
        setpgid(0, 0);
        close(WARM_SOCK);
        if (dup2(plugin, DP_ISOLATE_FD_PLUGIN) != DP_ISOLATE_FD_PLUGIN)
            _exit(2);
        close(plugin);
        dp__runner_zygote_main(host_pid, zsock);
    }
    close(zsock);
    close(plugin);
}

/* Makes one spare, or tells the host why it cannot. */
static void spare_or_failure(void)
{
    if (!make_spare())
        tell(DP_ISOLATE_WARM_FAILED, -(int32_t)errno, -1);
}

void dp__runner_warm_main(void)
{
    /* Dies with the host's keeper thread, which lives as long as the host. */
    host_pid = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != host_pid)
        _exit(0);
    if (dup2(DP_ISOLATE_FD_CTL, WARM_SOCK) != WARM_SOCK)
        _exit(2);
    fcntl(WARM_SOCK, F_SETFD, FD_CLOEXEC);
    /* fds 0 (/dev/null), 1 and 2 (the host's stderr) and the socket only. */
    close(DP_ISOLATE_FD_CTL);
    close_from(WARM_SOCK + 1);
    prctl(PR_SET_NAME, DP_ISOLATE_WARM_COMM);
    /* The C library's allocator set up and its heap grown here, once:
     * each copy then finds it ready (no arena set-up, no brk for the
     * first frames and the plugin's link map), its pages shared until
     * written. */
    char *volatile heap = malloc(96 * 1024); /* volatile: not optimised away */
    if (heap) {
        memset(heap, 0, 96 * 1024);
        free(heap);
    }
    tell(DP_ISOLATE_WARM_HELLO, (int32_t)getpid(), -1);
    for (int i = 0; i < DP_ISOLATE_WARM_SPARES; i++)
        spare_or_failure();

    /* One more for each the host has taken; a zygote when asked. */
    for (;;) {
        unsigned char msg[12];
        int fds[2], nfds = 0;
        ssize_t n = dp__runner_recv(WARM_SOCK, msg, sizeof msg, fds, 2, &nfds);
        if (n == 0 || (n < 0 && errno != EMSGSIZE))
            _exit(0); /* the host is gone */
        uint32_t magic = 0, kind = 0;
        if (n == (ssize_t)sizeof msg) {
            memcpy(&magic, msg, 4);
            memcpy(&kind, msg + 4, 4);
        }
        if (magic == DP_ISOLATE_WARM_MAGIC && kind == DP_ISOLATE_WARM_ZYGOTE && nfds == 2) {
            make_zygote(fds[0], fds[1]);
            continue;
        }
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        if (magic != DP_ISOLATE_WARM_MAGIC || kind != DP_ISOLATE_WARM_TAKEN) {
            tell(DP_ISOLATE_WARM_FAILED, -EPROTO, -1);
            continue;
        }
        spare_or_failure();
    }
}

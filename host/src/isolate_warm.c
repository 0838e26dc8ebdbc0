/*
 * isolate_warm.c - the warm runner, host side: one daggerpool-job-runner
 * started with DP_ISOLATE_WARM_ARG and kept, which makes isolated attempts'
 * supervisors ahead ("spares") as clones of its warm, single-threaded state
 * (host/runner/warm.c; the wire is isolate_wire.h's).
 *
 * The spares. The warm runner hands each spare over as it is made: its pid
 * and the host's end of its worker's socket. An attempt takes one from the
 * stock here and sends its request to the worker directly, so no round
 * trip to the warm runner is on its path and attempts started at once
 * (-j 2) do not queue behind one another's; it tells the warm runner
 * (TAKEN), which makes the next one while the attempt runs. A spare that
 * will not serve (the warm runner died, the host is a fork, the worker is
 * gone) has its socket closed, exits, and is reaped here.
 *
 * Why: an attempt spawned afresh pays an exec, the dynamic loader and the
 * C library's start-up, most of an isolated attempt's cost. The warm runner
 * paid them once; it runs no plugin code and holds no attempt's state, and
 * it is not a fork of this (threaded) process: posix_spawn started it.
 *
 * The keeper thread. The warm runner is started, and reaped, by a thread
 * of its own that lives as long as this process: a process's
 * parent-death signal follows the thread that started it, so the warm
 * runner (PR_SET_PDEATHSIG SIGKILL) and every supervisor it clones (their
 * parent is the warm runner's, CLONE_PARENT: DP_ISOLATE_SIG_KILL_ALL) die
 * with this process, SIGKILL included, and never with a pool worker that
 * happens to end. The keeper blocks with every signal masked; it starts the
 * warm runner when an attempt asks for it, waits for it to exit, and starts
 * it again on the next request.
 *
 * Never fatal: whatever goes wrong here (the runner cannot start, the warm
 * runner died or hangs, clone(CLONE_PARENT) is refused, this process is a
 * fork of the one that started it) makes dp__isolate_warm_spawn return -1,
 * and isolate.c spawns the runner afresh as before. A warm runner that
 * fails to start three times in a row, or whose clones are refused, is
 * given up for the life of the process. DAGGERPOOL_WARM_RUNNER=off turns it
 * off (a debugging knob; how the tests cover the spawned path).
 */
#include "isolate_warm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "isolate_wire.h"

extern char **environ;

/* How long an attempt waits for the warm runner to start, and for a spare
 * when none is ready, before it spawns the runner afresh. */
#define WARM_START_MS 10000
#define WARM_REPLY_MS 5000
/* Consecutive failed starts after which it is given up. */
#define WARM_MAX_FAILED_STARTS 3
/* Spares left to reap at once, at most (each exits as soon as its socket
 * closes, or has exited already). */
#define WARM_MAX_ORPHANS 16

typedef struct spare {
    pid_t pid; /* a supervisor, our child */
    int sock;  /* our end of its worker's socket */
} spare_t;

int dp__isolate_spawnattr(posix_spawnattr_t *attr)
{
    /* A clean signal state: the host may block or catch signals in its
     * threads; the child must die of SIGTERM and get SIGPIPE as usual. The
     * runner's own signals start blocked, so that none is lost before the
     * supervisor waits for them (its worker unblocks them all). */
    sigset_t sup, deflt;
    dp__isolate_runner_sigset(&sup);
    sigemptyset(&deflt);
    int defaults[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        sigaddset(&deflt, defaults[i]);
    int e;
    if ((e = posix_spawnattr_setsigmask(attr, &sup)) != 0 || (e = posix_spawnattr_setsigdefault(attr, &deflt)) != 0 ||
        (e = posix_spawnattr_setpgroup(attr, 0)) != 0 ||
        (e = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)) !=
            0)
        return e;
    return 0;
}

typedef enum { W_IDLE, W_WANTED, W_STARTING, W_UP, W_OFF } wstate_t;

/* The warm runner of this process. (lock) unless said otherwise. */
static struct {
    pthread_mutex_t lock; /* also held for a request's round trip */
    pthread_cond_t cond;  /* state changed */
    wstate_t state;
    bool keeper;     /* the keeper thread is started */
    int sock;        /* our end of its socket while W_UP, else -1 */
    pid_t pid;       /* the warm runner while W_UP */
    unsigned served; /* supervisors it started */
    unsigned failed; /* consecutive starts that failed */
    char runner[PATH_MAX];
    unsigned char *buf; /* the request being built */
    size_t cap;
    spare_t stock[DP_ISOLATE_WARM_SPARES]; /* spares ready */
    unsigned nstock;
    unsigned owed;                   /* spares the warm runner is making for us */
    int refused;                     /* the last FAILED's -errno, or 0 */
    pid_t orphans[WARM_MAX_ORPHANS]; /* spares that will not serve: ours to reap */
    unsigned norphans;
} w = {.lock = PTHREAD_MUTEX_INITIALIZER, .sock = -1};

/* The process that started the keeper (0: none yet). Read without the
 * lock: a fork of that process must not take a lock another thread of the
 * parent may have held at the fork. */
static _Atomic pid_t owner;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cond, &ca);
    pthread_condattr_destroy(&ca);
    const char *env = getenv("DAGGERPOOL_WARM_RUNNER");
    if (env && (strcmp(env, "off") == 0 || strcmp(env, "0") == 0))
        w.state = W_OFF;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits up to ms for fd to turn readable; false on a timeout or error. */
static bool readable(int fd, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= end)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(end - now));
        if (r > 0)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
}

/* Reads one message of the warm runner (magic, kind, value, and the
 * descriptor a SPARE carries into *fd, else -1), waiting up to ms; false
 * if none comes in time or it is not one. */
static bool read_msg(int sock, uint64_t ms, uint32_t *kind, int32_t *value, int *fd)
{
    *fd = -1;
    if (ms && !readable(sock, ms))
        return false;
    unsigned char msg[12];
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } c;
    struct iovec iov = {msg, sizeof msg};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
    ssize_t n;
    while ((n = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    if (n < 0)
        return false;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof got);
            if (*fd < 0)
                *fd = got;
            else
                close(got);
        }
    }
    uint32_t magic;
    if (n != (ssize_t)sizeof msg || (m.msg_flags & MSG_CTRUNC)) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return false;
    }
    memcpy(&magic, msg, 4);
    memcpy(kind, msg + 4, 4);
    memcpy(value, msg + 8, 4);
    return magic == DP_ISOLATE_WARM_MAGIC;
}

/* Tells the warm runner something (TAKEN); false if it is gone. */
static bool tell(int sock, uint32_t kind, int32_t value)
{
    unsigned char msg[12];
    uint32_t magic = DP_ISOLATE_WARM_MAGIC;
    memcpy(msg, &magic, 4);
    memcpy(msg + 4, &kind, 4);
    memcpy(msg + 8, &value, 4);
    ssize_t n;
    while ((n = send(sock, msg, sizeof msg, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    return n == (ssize_t)sizeof msg;
}

static void kill_and_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* Spawns the warm runner and waits for its hello: its pid, with *sock our
 * end of its socket; -1 if it did not start. On the keeper thread. */
static pid_t start_warm(const char *runner, int *sock)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    /* Above the fds the file actions write to. */
    int child = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    close(sv[1]);
    if (child < 0) {
        close(sv[0]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid = -1;
    bool fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    bool attr_ok = posix_spawnattr_init(&attr) == 0;
    char arg0[PATH_MAX], arg1[] = DP_ISOLATE_WARM_ARG;
    snprintf(arg0, sizeof arg0, "%s", runner);
    char *argv[] = {arg0, arg1, NULL};
    if (fa_ok && attr_ok && posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) == 0 &&
        posix_spawn_file_actions_adddup2(&fa, 2, 1) == 0 &&
        posix_spawn_file_actions_adddup2(&fa, child, DP_ISOLATE_FD_CTL) == 0 &&
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
        posix_spawn_file_actions_addclosefrom_np(&fa, DP_ISOLATE_FD_CTL + 1) == 0 &&
#endif
        dp__isolate_spawnattr(&attr) == 0 && posix_spawn(&pid, runner, &fa, &attr, argv, environ) != 0)
        pid = -1;
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    close(child);
    int32_t hello = 0;
    uint32_t kind = 0;
    int fd = -1;
    bool ok = pid > 0 && read_msg(sv[0], WARM_START_MS, &kind, &hello, &fd);
    if (fd >= 0)
        close(fd);
    if (pid > 0 && (!ok || kind != DP_ISOLATE_WARM_HELLO || hello != pid)) {
        kill_and_reap(pid);
        pid = -1;
    }
    if (pid <= 0) {
        close(sv[0]);
        return -1;
    }
    *sock = sv[0];
    return pid;
}

/* Reaps the orphaned spares that have exited (all of them, waiting, when
 * wait). (lock) */
static void reap_orphans(bool wait)
{
    unsigned k = 0;
    for (unsigned i = 0; i < w.norphans; i++) {
        pid_t r;
        while ((r = waitpid(w.orphans[i], NULL, wait ? 0 : WNOHANG)) < 0 && errno == EINTR) {
        }
        if (r == 0)
            w.orphans[k++] = w.orphans[i]; /* not yet */
    }
    w.norphans = k;
}

static void orphan(pid_t pid)
{
    if (pid <= 0)
        return;
    if (w.norphans == WARM_MAX_ORPHANS)
        reap_orphans(true);
    w.orphans[w.norphans++] = pid;
}

/* A spare that will not serve: its socket closed (its worker, then it,
 * exit), ours to reap. */
static void discard(spare_t sp)
{
    if (sp.sock >= 0)
        close(sp.sock);
    orphan(sp.pid);
}

/* Takes in a message of the warm runner's: a spare to stock, or why one
 * was not made. */
static void note(uint32_t kind, int32_t value, int fd)
{
    if (kind == DP_ISOLATE_WARM_SPARE || kind == DP_ISOLATE_WARM_FAILED) {
        if (w.owed)
            w.owed--;
    }
    if (kind == DP_ISOLATE_WARM_SPARE && value > 0) {
        spare_t sp = {(pid_t)value, fd};
        if (fd >= 0 && w.nstock < DP_ISOLATE_WARM_SPARES)
            w.stock[w.nstock++] = sp;
        else
            discard(sp); /* more than asked for, or without its socket */
        return;
    }
    if (fd >= 0)
        close(fd);
    if (kind == DP_ISOLATE_WARM_FAILED)
        w.refused = value < 0 ? value : -EPROTO;
}

/* Every message waiting, without waiting for more. (lock) */
static void drain(void)
{
    uint32_t kind;
    int32_t value;
    int fd;
    while (w.sock >= 0 && read_msg(w.sock, 0, &kind, &value, &fd))
        note(kind, value, fd);
}

/* Starts the warm runner whenever asked, and reaps it when it exits. */
static void *keeper(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&w.lock);
        while (w.state != W_WANTED)
            pthread_cond_wait(&w.cond, &w.lock);
        w.state = W_STARTING;
        char runner[PATH_MAX];
        memcpy(runner, w.runner, sizeof runner);
        pthread_mutex_unlock(&w.lock);

        int sock = -1;
        pid_t pid = start_warm(runner, &sock);

        pthread_mutex_lock(&w.lock);
        if (pid > 0) {
            w.state = W_UP;
            w.pid = pid;
            w.sock = sock;
            w.served = 0;
            w.owed = DP_ISOLATE_WARM_SPARES;
            w.refused = 0;
        } else {
            w.state = ++w.failed >= WARM_MAX_FAILED_STARTS ? W_OFF : W_IDLE;
        }
        pthread_cond_broadcast(&w.cond);
        pthread_mutex_unlock(&w.lock);
        if (pid <= 0)
            continue;

        /* Waits for its exit without reaping it: requests kill it by pid
         * under the lock, so it is reaped only under the lock. */
        siginfo_t si;
        int r;
        while ((r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT)) < 0 && errno == EINTR) {
        }

        /* Gone (killed, crashed, or told to go after a failed request):
         * the next request starts another. Requests under way end first
         * (they hold the lock), failing over to a fresh spawn. */
        pthread_mutex_lock(&w.lock);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        /* Its spares, stocked or still to be read, will not serve: each
         * worker exits as its socket closes, and we reap them. */
        drain();
        while (w.nstock)
            discard(w.stock[--w.nstock]);
        w.owed = 0;
        reap_orphans(false);
        close(w.sock);
        w.sock = -1;
        w.pid = 0;
        if (w.state == W_UP)
            w.state = W_IDLE;
        if (!w.served && ++w.failed >= WARM_MAX_FAILED_STARTS)
            w.state = W_OFF;
        if (r < 0)
            w.state = W_OFF; /* ECHILD: SIGCHLD ignored, which isolation does not support */
        pthread_cond_broadcast(&w.cond);
        pthread_mutex_unlock(&w.lock);
    }
    return NULL;
}

/* Starts the keeper thread, every signal blocked in it. (lock) */
static bool start_keeper(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t a;
    pthread_t t;
    bool ok = pthread_attr_init(&a) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 64 * 1024 > PTHREAD_STACK_MIN ? 64 * 1024 : PTHREAD_STACK_MIN);
        ok = pthread_create(&t, &a, keeper, NULL) == 0;
        pthread_attr_destroy(&a);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ok;
}

/* The request into *buf (of *cap bytes, grown as needed): magic, then this
 * process's environment. */
static bool build_request(unsigned char **buf, size_t *cap, size_t *len)
{
    size_t need = 4;
    for (char **e = environ; e && *e; e++)
        need += strlen(*e) + 1;
    if (need > DP_ISOLATE_WARM_MAX_REQUEST)
        return false;
    if (need > *cap) {
        unsigned char *b = realloc(*buf, need);
        if (!b)
            return false;
        *buf = b;
        *cap = need;
    }
    uint32_t magic = DP_ISOLATE_WARM_MAGIC;
    memcpy(*buf, &magic, 4);
    size_t off = 4;
    for (char **e = environ; e && *e; e++) {
        size_t n = strlen(*e) + 1;
        memcpy(*buf + off, *e, n);
        off += n;
    }
    *len = off;
    return true;
}

/* Sends (buf, len) on sock with nfds descriptors (SCM_RIGHTS, at most
 * DP_ISOLATE_WARM_NFDS). Never waits. What sendmsg returned (errno set). */
static ssize_t send_with_fds(int sock, void *buf, size_t len, const int *fds, size_t nfds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * DP_ISOLATE_WARM_NFDS)];
    } c;
    memset(&c, 0, sizeof c);
    struct iovec iov = {buf, len};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = CMSG_SPACE(sizeof(int) * nfds)};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(h), fds, sizeof(int) * nfds);
    ssize_t n;
    while ((n = sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    return n;
}

/* Sends a request (buf, len) on sock with its descriptors: ctl, cancel,
 * plugin, our stderr and cwd (an O_PATH descriptor of our working
 * directory). Never waits. What sendmsg returned (errno set). */
static ssize_t send_request(int sock, unsigned char *buf, size_t len, int ctl, int cancel, int plugin, int cwd)
{
    int fds[DP_ISOLATE_WARM_NFDS];
    fds[DP_ISOLATE_WARM_FD_CTL] = ctl;
    fds[DP_ISOLATE_WARM_FD_CANCEL] = cancel;
    fds[DP_ISOLATE_WARM_FD_PLUGIN] = plugin;
    fds[DP_ISOLATE_WARM_FD_STDERR] = 2;
    fds[DP_ISOLATE_WARM_FD_CWD] = cwd;
    return send_with_fds(sock, buf, len, fds, DP_ISOLATE_WARM_NFDS);
}

int dp__isolate_warm_send_request(int sock, int ctl, int cancel, int plugin)
{
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = -1;
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd >= 0 && build_request(&buf, &cap, &len))
        rc = send_request(sock, buf, len, ctl, cancel, plugin, cwd) == (ssize_t)len ? 0 : -1;
    if (cwd >= 0)
        close(cwd);
    free(buf);
    return rc;
}

/* Whether a clone refused for this reason will be refused again. */
static bool lasting(int32_t e)
{
    return e == -EINVAL || e == -EPERM || e == -ENOSYS || e == -EPROTO;
}

/* Takes a spare from the stock, waiting for the warm runner to make one if
 * need be, and asks it for the next. false (no spare for this attempt) if
 * it failed to make one, or is gone. (lock, W_UP) */
static bool take_spare(spare_t *sp)
{
    drain();
    if (!w.nstock && !w.owed) {
        /* Those it was to make failed: ask again. */
        if (!tell(w.sock, DP_ISOLATE_WARM_TAKEN, 0)) {
            kill(w.pid, SIGKILL);
            return false;
        }
        w.owed++;
    }
    while (!w.nstock && !w.refused) {
        uint32_t kind;
        int32_t value;
        int fd;
        if (!read_msg(w.sock, WARM_REPLY_MS, &kind, &value, &fd)) {
            /* Dead, or not answering: gone, so the keeper starts another. */
            kill(w.pid, SIGKILL);
            return false;
        }
        note(kind, value, fd);
    }
    if (w.refused) {
        /* clone refused for a reason that will not change: spawn afresh
         * from now on. Others (EAGAIN, ENOMEM): this attempt only. */
        int32_t e = w.refused;
        w.refused = 0;
        if (lasting(e)) {
            w.state = W_OFF;
            kill(w.pid, SIGKILL);
            return false;
        }
        if (!w.nstock)
            return false;
    }
    *sp = w.stock[--w.nstock];
    if (tell(w.sock, DP_ISOLATE_WARM_TAKEN, 0))
        w.owed++;
    else
        kill(w.pid, SIGKILL); /* gone: the keeper starts another */
    return true;
}

/* Hands the attempt to a spare: its descriptors, working directory and
 * environment straight to the spare's worker. (lock, W_UP) */
static int request(int ctl, int cancel, int plugin, pid_t *pid)
{
    reap_orphans(false);
    size_t len;
    if (!build_request(&w.buf, &w.cap, &len))
        return -1;
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0)
        return -1;
    int rc = -1;
    /* A spare whose worker is gone (killed from outside) refuses the
     * request: the next one then. */
    for (int tries = 0; tries <= DP_ISOLATE_WARM_SPARES && w.state == W_UP; tries++) {
        spare_t sp;
        if (!take_spare(&sp))
            break;
        /* Never waits: the worker's socket is empty, and a request fits. */
        ssize_t n = send_request(sp.sock, w.buf, len, ctl, cancel, plugin, cwd);
        int e = errno;
        if (n == (ssize_t)len) {
            close(sp.sock);
            w.served++;
            w.failed = 0;
            *pid = sp.pid;
            rc = 0;
            break;
        }
        discard(sp);
        if (n < 0 && e == EBADF)
            break; /* our stderr is closed: nothing to blame the spare for */
    }
    close(cwd);
    return rc;
}

/* Makes sure the warm runner is up, starting it if need be (and the
 * keeper first): true if it is (W_UP). (lock) */
static bool ensure_up(const char *runner, pid_t me)
{
    if (w.state == W_OFF)
        return false;
    if (!w.keeper) {
        atomic_store(&owner, me);
        if (!start_keeper()) {
            w.state = W_OFF;
            return false;
        }
        w.keeper = true;
    }
    if (w.state == W_IDLE) {
        snprintf(w.runner, sizeof w.runner, "%s", runner);
        w.state = W_WANTED;
        pthread_cond_broadcast(&w.cond);
    }
    if (w.state == W_WANTED || w.state == W_STARTING) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += WARM_START_MS / 1000;
        while ((w.state == W_WANTED || w.state == W_STARTING) &&
               pthread_cond_timedwait(&w.cond, &w.lock, &dl) != ETIMEDOUT) {
        }
    }
    return w.state == W_UP;
}

/* Whether this process may use the warm runner (it is not a fork of the
 * one that started it); sets up its state once. */
static bool usable(pid_t me)
{
    pid_t own = atomic_load(&owner);
    if (own != 0 && own != me)
        return false; /* a fork of the process whose warm runner it is */
    pthread_once(&init_once, init);
    return true;
}

int dp__isolate_warm_spawn(const char *runner, int ctl, int cancel, int plugin, pid_t *pid)
{
    pid_t me = getpid();
    if (!usable(me))
        return -1;
    pthread_mutex_lock(&w.lock);
    int rc = -1;
    if (ensure_up(runner, me))
        rc = request(ctl, cancel, plugin, pid);
    pthread_mutex_unlock(&w.lock);
    return rc;
}

int dp__isolate_warm_zygote(const char *runner, int zsock, int plugin)
{
    pid_t me = getpid();
    if (!usable(me))
        return -1;
    pthread_mutex_lock(&w.lock);
    int rc = -1;
    if (ensure_up(runner, me)) {
        unsigned char msg[12];
        uint32_t magic = DP_ISOLATE_WARM_MAGIC, kind = DP_ISOLATE_WARM_ZYGOTE;
        int32_t zero = 0;
        memcpy(msg, &magic, 4);
        memcpy(msg + 4, &kind, 4);
        memcpy(msg + 8, &zero, 4);
        int fds[2] = {zsock, plugin};
        rc = send_with_fds(w.sock, msg, sizeof msg, fds, 2) == (ssize_t)sizeof msg ? 0 : -1;
    }
    pthread_mutex_unlock(&w.lock);
    return rc;
}

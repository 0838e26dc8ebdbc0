/*
 * isolate.c - plugin job instances in a child process: the host's side of
 * isolation = "process". The wire protocol it shares with the runner
 * (host/runner/runner.c) is isolate_wire.c's.
 *
 * Why a helper executable and not fork(): the host is threaded, and a fork
 * of it would copy whatever locks other threads held (malloc's, the
 * registry's) into a child that could then deadlock before it ran a line of
 * plugin code. The warm runner (isolate_warm.c: a single-threaded runner
 * kept per host, which copies itself) or a posix_spawn of
 * daggerpool-job-runner starts a clean process that loads the plugin's
 * pinned copy (the memfd, or the unlinked temporary
 * copy, the host loaded, inherited as fd 5, so it runs exactly the code of
 * the version the job pinned).
 *
 * One child per attempt, driven by the worker thread running the attempt
 * (never two threads on one child, so there is no lock here). The child is
 * put in its own process group, so that signals for the terminal go to the
 * host (which cancels gracefully). It is a supervisor (runner.c) that forks
 * the worker running the plugin and, as a child subreaper, kills whatever
 * the plugin started, in any group or session, once the worker is gone.
 * The host watches the supervisor's exit (a pidfd in the same poll as the
 * socket): a crash is seen at once, even if a process the plugin forked
 * still holds the socket.
 *
 * Cancellation: a byte on the cancel socket (the plugin's cancel_fd in the
 * child turns readable and its is_cancelled/sleep_ms see it), then SIGTERM
 * to the group after DP_ISOLATE_GRACE_MS, then DP_ISOLATE_SIG_KILL_ALL to
 * the supervisor after as long again (it SIGKILLs the worker and all that
 * descends from it), and SIGKILL to the group should that fail. Every wait
 * here is bounded, and a child is always reaped. dp__isolate_kill_all ends
 * every runner at once, for a host that is about to exit.
 */
#include "isolate.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "isolate_warm.h"
#include "isolate_zygote.h"
#include "params.h"
#include "util.h"

#ifndef DP_LIBEXECDIR
#define DP_LIBEXECDIR "libexec"
#endif

#define RUNNER_NAME "daggerpool-job-runner"

extern char **environ;

/* ---- finding the runner ------------------------------------------------- */

static pthread_once_t runner_once = PTHREAD_ONCE_INIT;
static char runner_path[PATH_MAX];
static char runner_error[2048];

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Tries <dir>/../libexec/daggerpool/RUNNER and <dir>/RUNNER for the
 * directory of `file`. */
static bool try_beside(const char *file, char *tried, size_t triedlen)
{
    char dir[PATH_MAX];
    if (!file || !*file || !realpath(file, dir))
        return false;
    char *slash = strrchr(dir, '/');
    if (!slash)
        return false;
    *slash = '\0';
    char cand[PATH_MAX * 2];
    snprintf(cand, sizeof cand, "%s/../%s/daggerpool/%s", dir, DP_LIBEXECDIR, RUNNER_NAME);
    size_t off = strlen(tried);
    snprintf(tried + off, triedlen - off, "%s%s", off ? ", " : "", cand);
    if (executable(cand) && realpath(cand, runner_path))
        return true;
    snprintf(cand, sizeof cand, "%s/%s", dir, RUNNER_NAME);
    off = strlen(tried);
    snprintf(tried + off, triedlen - off, ", %s", cand);
    return executable(cand) && realpath(cand, runner_path);
}

static void find_runner(void)
{
    const char *env = getenv("DAGGERPOOL_JOB_RUNNER");
    if (env && *env) {
        if (executable(env)) {
            snprintf(runner_path, sizeof runner_path, "%s", env);
            return;
        }
        snprintf(runner_error, sizeof runner_error,
                 "DAGGERPOOL_JOB_RUNNER=%s is not an executable file; fix: point it at "
                 "daggerpool-job-runner or unset it",
                 env);
        return;
    }
    char tried[900] = "";
    Dl_info info;
    if (dladdr((void *)find_runner, &info) && try_beside(info.dli_fname, tried, sizeof tried))
        return;
    if (try_beside("/proc/self/exe", tried, sizeof tried))
        return;
    runner_path[0] = '\0';
    snprintf(runner_error, sizeof runner_error,
             "cannot find the job runner (%s) needed by isolation = \"process\"; looked for: %s; "
             "fix: install daggerpool completely, or set DAGGERPOOL_JOB_RUNNER",
             RUNNER_NAME, tried[0] ? tried : "nothing");
}

const char *dp__isolate_runner(char *err, size_t errlen)
{
    pthread_once(&runner_once, find_runner);
    if (runner_path[0])
        return runner_path;
    if (err && errlen)
        snprintf(err, errlen, "%s", runner_error);
    return NULL;
}

/* ---- the child ---------------------------------------------------------- */

struct dp_isolate {
    pid_t pid;        /* the runner's supervisor, leader of its process group; or the zygote */
    dp_zygote_t *zyg; /* the zygote serving this attempt, or NULL */
    int pidfd;        /* readable once it has exited; -1 without pidfd_open */
    int slot;         /* its entry in `live`, or -1 */
    int ctl;          /* our end of the control socket */
    int cancel;       /* our end of the cancel socket */
    bool dead;        /* the child is gone (reaped) */
    unsigned seq;     /* of the request out: INIT 0, then each CALL +1 */
    char *plugin;
    char *job_name;
    dp_limits_t limits;
    dp_isolate_log_fn log;
    void *log_user;
    dp_store_t *store;
    dp_iso_buf_t out; /* frames we send */
    dp_iso_buf_t in;  /* bytes received, not yet parsed */
    bool ending;      /* END sent: the attempt's ctx no longer bounds the child */
    int exit_status;  /* wait status once reaped by wait_result */
};

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s ? s : strdup("out of memory");
}

static const char *signal_name(int sig, char *buf, size_t len)
{
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev)
        snprintf(buf, len, "SIG%s", abbrev);
    else
        snprintf(buf, len, "signal %d", sig);
    return buf;
}

/* ---- the live runners (for dp__isolate_kill_all) --------------------------
 * A fixed table, so that a signal handler can walk it: a slot holds 0 (free),
 * -1 (reserved by a spawn under way) or a runner's pid. A slot is freed
 * before its runner is reaped, so a pid read here is never one the kernel
 * has given to another process yet (but for the window between the load
 * and the kill in dp__isolate_kill_all, against a reap, a pid reuse and a
 * setpgid of an unrelated process: not a concern in practice). */
static _Atomic pid_t live[DP_ISOLATE_MAX_LIVE];
static _Atomic unsigned live_used; /* slots below this were ever taken */

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "dp__isolate_kill_all needs lock-free atomics");

static int live_reserve(void)
{
    for (unsigned i = 0; i < DP_ISOLATE_MAX_LIVE; i++) {
        pid_t free_slot = 0;
        if (atomic_load_explicit(&live[i], memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong(&live[i], &free_slot, -1)) {
            unsigned used = atomic_load(&live_used);
            while (used < i + 1 && !atomic_compare_exchange_weak(&live_used, &used, i + 1)) {
            }
            return (int)i;
        }
    }
    return -1;
}

static void live_set(int slot, pid_t pid)
{
    if (slot >= 0)
        atomic_store(&live[slot], pid);
}

void dp__isolate_kill_all(void)
{
    int saved = errno;
    unsigned used = atomic_load(&live_used);
    for (unsigned i = 0; i < used && i < DP_ISOLATE_MAX_LIVE; i++) {
        pid_t pid = atomic_load(&live[i]);
        if (pid > 0)
            kill(pid, DP_ISOLATE_SIG_KILL_ALL);
    }
    errno = saved;
}

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by definition */
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* Moves fd above the range the child's dup2s write to, so that no dup2
 * clobbers another source. */
static int high_fd(int fd)
{
    if (fd < 0 || fd > 9)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return h;
}

/* The runner's sockets: ctl and can, our ends [0] and its ends [1]
 * (moved above the fds a spawn's dup2s write to). 0, or -1 with err. */
static int make_sockets(int ctl[2], int can[2], char *err, size_t errlen)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, can) != 0) {
        snprintf(err, errlen, "cannot create sockets for the job runner: %s", strerror(errno));
        return -1;
    }
    ctl[1] = high_fd(ctl[1]);
    can[1] = high_fd(can[1]);
    if (ctl[1] < 0 || can[1] < 0) {
        snprintf(err, errlen, "cannot set up the job runner's descriptors: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++) {
        if (p[i] >= 0)
            close(p[i]);
        p[i] = -1;
    }
}

/* Spawns the runner afresh with its three descriptors in place (posix_spawn
 * file actions, never a fork of the threaded host). 0, or an errno value. */
static int spawn_cold(pid_t *pid, const char *runner, int ctl, int can, int pfd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int e = posix_spawn_file_actions_init(&fa);
    if (e != 0)
        return e;
    if ((e = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return e;
    }
    if ((e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
        (e = posix_spawn_file_actions_adddup2(&fa, 2, 1)) != 0 ||
        (e = posix_spawn_file_actions_adddup2(&fa, ctl, DP_ISOLATE_FD_CTL)) != 0 ||
        (e = posix_spawn_file_actions_adddup2(&fa, can, DP_ISOLATE_FD_CANCEL)) != 0 ||
        (e = posix_spawn_file_actions_adddup2(&fa, pfd, DP_ISOLATE_FD_PLUGIN)) != 0)
        goto out;
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
    /* Nothing else of the host's reaches the plugin, even a descriptor some
     * library opened without O_CLOEXEC. */
    if ((e = posix_spawn_file_actions_addclosefrom_np(&fa, DP_ISOLATE_FD_PLUGIN + 1)) != 0)
        goto out;
#endif
    if ((e = dp__isolate_spawnattr(&attr)) != 0)
        goto out;
    char arg0[PATH_MAX], arg1[] = DP_ISOLATE_RUNNER_ARG;
    snprintf(arg0, sizeof arg0, "%s", runner);
    char *argv[] = {arg0, arg1, NULL};
    e = posix_spawn(pid, runner, &fa, &attr, argv, environ);
out:
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return e;
}

/* Queues as much of the first frame (iso->out, INIT) on the control socket
 * as fits without waiting: the child reads it as soon as it starts, while
 * we wait to learn its pid. Returns how much was sent. */
static size_t send_early(dp_isolate_t *iso, int ctl)
{
    ssize_t n = send(ctl, iso->out.data, iso->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n > 0 ? (size_t)n : 0;
}

/* Starts the runner with its three descriptors in place: from the warm
 * runner (isolate_warm.c), else spawned afresh; and sends it the first
 * frame, iso->out. One exit for every descriptor it opens. */
static int spawn_child(dp_isolate_t *iso, const char *runner, int plugin_fd, uint8_t mode, char *err, size_t errlen)
{
    int ctl[2] = {-1, -1}, can[2] = {-1, -1}, pfd = -1;
    int rc = -1;
    size_t sent = 0;
    if (make_sockets(ctl, can, err, errlen) != 0)
        goto out;
    sent = send_early(iso, ctl[0]);
    pfd = fcntl(plugin_fd, F_DUPFD_CLOEXEC, 10);
    if (pfd < 0) {
        snprintf(err, errlen, "cannot pass the plugin to the job runner: %s", strerror(errno));
        goto out;
    }
    iso->slot = live_reserve();
    if (iso->slot < 0) {
        snprintf(err, errlen,
                 "cannot start the job runner: %u isolated attempts are running "
                 "already, the most this host tracks; fix: run fewer isolated jobs at once (-j)",
                 DP_ISOLATE_MAX_LIVE);
        goto out;
    }
    if (mode == DP_ISO_MODE_ATTEMPT) {
        /* A zygote of the version first: one fresh process per attempt. */
        dp_zygote_t *z = dp__isolate_zygote_take(runner, pfd);
        if (z && dp__isolate_zygote_start(z, ctl[1], can[1], pfd) == 0) {
            iso->zyg = z;
            iso->pid = dp__isolate_zygote_pid(z);
        } else {
            dp__isolate_zygote_put(z); /* it got nothing: ended */
        }
    }
    if (!iso->zyg && dp__isolate_warm_spawn(runner, ctl[1], can[1], pfd, &iso->pid) != 0) {
        /* Fresh sockets: should the warm runner have started a supervisor
         * it could not tell us about, that one sees only closed sockets and
         * ends at once, never this attempt's. */
        close_pair(ctl);
        close_pair(can);
        int e;
        sent = 0;
        if (make_sockets(ctl, can, err, errlen) != 0)
            e = -1;
        else if ((e = spawn_cold(&iso->pid, runner, ctl[1], can[1], pfd)) != 0)
            snprintf(err, errlen,
                     "cannot start the job runner %.1024s: %s; fix: reinstall daggerpool, or "
                     "set DAGGERPOOL_JOB_RUNNER",
                     runner, strerror(e));
        if (e != 0) {
            live_set(iso->slot, 0);
            iso->slot = -1;
            goto out;
        }
    }
    live_set(iso->slot, iso->pid);
    /* Its exit, not its socket's EOF, says the attempt is over: what the
     * plugin started may hold the socket (and, as a fork, not even know it). */
    iso->pidfd = iso->zyg ? -1 : pidfd_open_(iso->pid);
    iso->ctl = ctl[0];
    iso->cancel = can[0];
    ctl[0] = can[0] = -1;
    /* The rest of the first frame (a failed send means the child died
     * already: its status says why). */
    if (sent < iso->out.len)
        (void)dp__iso_send_all(iso->ctl, iso->out.data + sent, iso->out.len - sent);
    rc = 0;
out:
    close_pair(ctl);
    close_pair(can);
    if (pfd >= 0)
        close(pfd);
    return rc;
}

/* Whether the runner has exited (it is a zombie now, or was reaped by
 * someone else: SIGCHLD ignored), without reaping it. */
static bool exited_nowait(const dp_isolate_t *iso)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, (id_t)iso->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    return (r == 0 && si.si_pid == iso->pid) || (r < 0 && errno == ECHILD);
}

/* Waits up to ms (forever if negative) for the runner to exit; true once it
 * has (not reaped yet). */
static bool wait_exit(const dp_isolate_t *iso, int64_t ms)
{
    int st;
    if (iso->zyg)
        return dp__isolate_zygote_wait(iso->zyg, ms, &st) == 1;
    uint64_t end = ms < 0 ? UINT64_MAX : dp__now_ms() + (uint64_t)ms;
    for (;;) {
        if (iso->pidfd < 0 && exited_nowait(iso))
            return true;
        uint64_t now = dp__now_ms();
        if (now >= end)
            return false;
        uint64_t left = end - now;
        if (iso->pidfd >= 0) {
            struct pollfd p = {.fd = iso->pidfd, .events = POLLIN};
            int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
            if (r > 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
                return r > 0 || exited_nowait(iso);
        } else {
            struct timespec ts = {0, (long)(left < 10 ? left : 10) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* Reaps the runner, which has exited. Returns its wait status. */
static int collect(dp_isolate_t *iso)
{
    int status = 0;
    if (iso->zyg) {
        /* The zygote reaped the worker and killed what it left before it
         * said DONE (or died, its worker with it). */
        (void)dp__isolate_zygote_wait(iso->zyg, -1, &status);
        live_set(iso->slot, 0);
        iso->slot = -1;
        iso->dead = true;
        iso->exit_status = status;
        return status;
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)iso->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == iso->pid) {
        /* Its zombie still holds the pid, so the group id is still this
         * attempt's: whatever is left in it goes too. The supervisor has
         * killed every descendant already, unless it was killed itself (the
         * last resort below). */
        kill(-iso->pid, SIGKILL);
    }
    /* Out of the table before the pid can be reused. */
    live_set(iso->slot, 0);
    iso->slot = -1;
    while (waitpid(iso->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = 0; /* ECHILD: someone else reaped it (SIGCHLD ignored) */
            break;
        }
    }
    if (iso->pidfd >= 0)
        close(iso->pidfd);
    iso->pidfd = -1;
    iso->dead = true;
    iso->exit_status = status;
    return status;
}

/* The escalation's steps, for a spawned or spare runner (signals to its
 * group and its supervisor) or a zygote's attempt (told to the zygote,
 * which signals the worker it forked; the last resort kills the zygote). */
static void signal_term(dp_isolate_t *iso)
{
    if (iso->zyg)
        dp__isolate_zygote_term(iso->zyg);
    else
        kill(-iso->pid, SIGTERM);
}

static void signal_kill_all(dp_isolate_t *iso)
{
    if (iso->zyg)
        dp__isolate_zygote_kill_all(iso->zyg);
    else
        kill(iso->pid, DP_ISOLATE_SIG_KILL_ALL);
}

static void signal_last_resort(dp_isolate_t *iso)
{
    if (iso->zyg)
        dp__isolate_zygote_kill(iso->zyg);
    else
        kill(-iso->pid, SIGKILL);
}

/* Makes sure the runner and everything it started are gone, and reaps it:
 * up to grace_ms for it to exit by itself, then SIGTERM to its group; a
 * grace period later its supervisor is told to SIGKILL everything
 * (DP_ISOLATE_SIG_KILL_ALL); should it not be gone a grace period after
 * that, SIGKILL to the group. Returns its wait status. */
static int reap(dp_isolate_t *iso, uint64_t grace_ms, bool *we_killed)
{
    if (iso->dead)
        return iso->exit_status;
    if (!wait_exit(iso, (int64_t)grace_ms)) {
        signal_term(iso);
        if (we_killed)
            *we_killed = true;
        if (!wait_exit(iso, DP_ISOLATE_GRACE_MS)) {
            signal_kill_all(iso);
            if (!wait_exit(iso, DP_ISOLATE_GRACE_MS)) {
                signal_last_resort(iso);
                wait_exit(iso, -1);
            }
        }
    }
    return collect(iso);
}

/* Why the child ended, as a job error. */
static char *death_message(const dp_isolate_t *iso, int status, const char *when)
{
    char sig[32];
    if (WIFSIGNALED(status)) {
        int s = WTERMSIG(status);
        if (s == SIGXCPU && iso->limits.cpu_ms)
            return xasprintf("plugin '%s' exceeded its cpu limit (%llu ms) in job '%s' "
                             "(killed by SIGXCPU)%s",
                             iso->plugin, (unsigned long long)iso->limits.cpu_ms, iso->job_name, when);
        return xasprintf("plugin '%s' crashed with %s in job '%s'%s", iso->plugin, signal_name(s, sig, sizeof sig),
                         iso->job_name, when);
    }
    if (WIFEXITED(status))
        return xasprintf("plugin '%s' exited with status %d in job '%s'%s", iso->plugin, WEXITSTATUS(status),
                         iso->job_name, when);
    return xasprintf("plugin '%s' ended without a result in job '%s'%s", iso->plugin, iso->job_name, when);
}

/* 0, or -1 with errno set (EMSGSIZE: the frame could not be built). */
static int send_frame(dp_isolate_t *iso)
{
    if (!dp__iso_end(&iso->out)) {
        errno = EMSGSIZE;
        return -1;
    }
    return dp__iso_send_all(iso->ctl, iso->out.data, iso->out.len);
}

static dp_store_t *store_of(dp_isolate_t *iso, dp_job_t *job)
{
    dp_store_t *s = job ? dp_job_store(job) : NULL;
    return s ? s : iso->store;
}

/* Answers one store request of the child. -1 if the reply cannot be sent. */
static int serve_store(dp_isolate_t *iso, dp_job_t *job, unsigned type, dp_iso_reader_t *r)
{
    dp_store_t *store = store_of(iso, job);
    const char *key = dp__iso_get_str(r);
    int32_t rc = -1;
    void *val = NULL;
    size_t vlen = 0, cap = 0;
    if (key && store) {
        if (type == DP_ISO_STORE_SET) {
            size_t len;
            const void *data = dp__iso_get_bytes(r, &len);
            rc = data && dp_store_set_copy(store, key, data, len) == DP_OK ? 0 : -1;
        } else if (type == DP_ISO_STORE_GET) {
            cap = (size_t)dp__iso_get_u64(r);
            int g = dp_store_get_copy(store, key, &val, &vlen);
            rc = g == DP_OK ? 0 : g == DP_ENOTFOUND ? 1 : -1;
        } else {
            int d = dp_store_delete(store, key);
            rc = d == DP_OK ? 0 : d == DP_ENOTFOUND ? 1 : -1;
        }
    }
    dp__iso_begin(&iso->out, DP_ISO_STORE_REPLY);
    dp__iso_put_u32(&iso->out, (uint32_t)rc);
    dp__iso_put_u64(&iso->out, (uint64_t)vlen);
    dp__iso_put_bytes(&iso->out, val, rc == 0 && val ? (vlen < cap ? vlen : cap) : 0);
    free(val);
    return send_frame(iso);
}

typedef struct wait_result {
    bool got; /* a RESULT frame arrived */
    int32_t result;
    uint32_t flags;
    char *msg; /* malloc'd or NULL */
} wait_result_t;

/* Parses and handles the complete frames in iso->in. Returns 1 once a
 * RESULT was taken, 0 to go on, -1 on a protocol violation. */
static int drain_frames(dp_isolate_t *iso, dp_job_t *job, wait_result_t *res)
{
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && iso->in.len - off >= 4) {
        uint32_t n;
        memcpy(&n, iso->in.data + off, sizeof n);
        if (n < 1 || n > DP_ISOLATE_MAX_FRAME) {
            rc = -1;
            break;
        }
        if (iso->in.len - off - 4 < n)
            break;
        unsigned char type = iso->in.data[off + 4];
        dp_iso_reader_t r = {iso->in.data + off + 5, n - 1, false};
        off += 4 + (size_t)n;
        switch (type) {
        case DP_ISO_LOG: {
            int level = (int)dp__iso_get_u32(&r);
            const char *msg = dp__iso_get_str(&r);
            if (!msg) {
                rc = -1;
                break;
            }
            iso->log(iso->log_user, job, iso->job_name, level, msg);
            break;
        }
        case DP_ISO_RESULT: {
            res->result = (int32_t)dp__iso_get_u32(&r);
            res->flags = dp__iso_get_u32(&r);
            bool has = dp__iso_get_u8(&r) != 0;
            const char *msg = dp__iso_get_str(&r);
            if (!msg) {
                rc = -1;
                break;
            }
            /* The child cut it already (note included); cut again only
             * what a misbehaving child sends beyond that. */
            res->msg = has ? dp__isolate_cap_message_at(strdup(msg), DP_ISOLATE_MAX_MESSAGE + DP_ISOLATE_CAP_NOTE_MAX)
                           : NULL;
            res->got = true;
            rc = 1;
            break;
        }
        case DP_ISO_RETRY_AFTER: {
            uint64_t ms = dp__iso_get_u64(&r);
            if (r.bad) {
                rc = -1;
                break;
            }
            if (job)
                dp_job_retry_after(job, ms);
            break;
        }
        case DP_ISO_STORE_SET:
        case DP_ISO_STORE_GET:
        case DP_ISO_STORE_DEL:
            if (serve_store(iso, job, type, &r) != 0)
                rc = -1;
            break;
        default: rc = -1; break;
        }
    }
    memmove(iso->in.data, iso->in.data + off, iso->in.len - off);
    iso->in.len -= off;
    return rc;
}

/* Reads what the child sent (without waiting if nonblock); 1 on EOF, -1 on
 * error, 0 otherwise. */
static int read_some(dp_isolate_t *iso, bool nonblock)
{
    if (iso->in.cap - iso->in.len < 65536) {
        size_t cap = iso->in.cap ? iso->in.cap * 2 : 65536;
        if (cap - iso->in.len < 65536)
            cap += 65536;
        if (cap > DP_ISOLATE_MAX_FRAME * 2)
            return -1;
        unsigned char *d = realloc(iso->in.data, cap);
        if (!d)
            return -1;
        iso->in.data = d;
        iso->in.cap = cap;
    }
    ssize_t n = recv(iso->ctl, iso->in.data + iso->in.len, iso->in.cap - iso->in.len, nonblock ? MSG_DONTWAIT : 0);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    if (n == 0)
        return 1;
    iso->in.len += (size_t)n;
    return 0;
}

/* Waits for the child's RESULT, serving logs and store requests, and
 * enforcing ctx (or, without a job, a fixed bound). On success res->got.
 * Otherwise the child is dead and *death says why (malloc'd). */
static void wait_result(dp_isolate_t *iso, dp_job_t *job, uint64_t bound_ms, wait_result_t *res, char **death)
{
    /* While ending, the attempt's ctx may be done already (that is what
     * end is told): the fixed bound applies, the job still routes logs and
     * store requests. */
    dp_ctx_t *ctx = job && !iso->ending ? dp_job_ctx(job) : NULL;
    int ctx_fd = ctx ? dp_ctx_fd(ctx) : -1;
    uint64_t start = dp__now_ms();
    /* When each step was taken: the cancel byte, SIGTERM to the group,
     * DP_ISOLATE_SIG_KILL_ALL to the supervisor, SIGKILL to the group. */
    uint64_t cancel_at = 0, term_at = 0, force_at = 0, kill_at = 0;
    bool protocol_error = false;
    *death = NULL;

    for (;;) {
        uint64_t now = dp__now_ms();
        bool ended = ctx ? dp_ctx_done(ctx) : now - start >= bound_ms;
        if (ended && !cancel_at) {
            unsigned char b = (unsigned char)(iso->seq & 0xffu);
            send(iso->cancel, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            cancel_at = now ? now : 1;
        }
        if (cancel_at && !term_at && now >= cancel_at + DP_ISOLATE_GRACE_MS) {
            signal_term(iso);
            term_at = now;
        }
        if (term_at && !force_at && now >= term_at + DP_ISOLATE_GRACE_MS) {
            signal_kill_all(iso);
            force_at = now;
        }
        if (force_at && !kill_at && now >= force_at + DP_ISOLATE_GRACE_MS) {
            signal_last_resort(iso); /* the supervisor itself did not go */
            kill_at = now;
        }
        int timeout = 250; /* also a safety net should the ctx fd be missing */
        if (cancel_at && !kill_at) {
            uint64_t next = (force_at ? force_at : term_at ? term_at : cancel_at) + DP_ISOLATE_GRACE_MS;
            timeout = next > now ? (int)(next - now) : 0;
        } else if (!ctx && !cancel_at) {
            uint64_t left = start + bound_ms > now ? start + bound_ms - now : 0;
            timeout = left < 250 ? (int)left : 250;
        }
        if (iso->pidfd < 0 && !iso->zyg && timeout > 20)
            timeout = 20; /* no pidfd: look at the runner's exit this often */
        struct pollfd pfd[3] = {{.fd = iso->ctl, .events = POLLIN},
                                {.fd = cancel_at ? -1 : ctx_fd, .events = POLLIN},
                                {.fd = iso->zyg ? dp__isolate_zygote_fd(iso->zyg) : iso->pidfd, .events = POLLIN}};
        int pr = poll(pfd, 3, timeout);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int rr = read_some(iso, false);
            int dr = drain_frames(iso, job, res);
            if (dr == 1)
                return;
            if (dr < 0) {
                protocol_error = true;
                break;
            }
            if (rr != 0)
                break; /* EOF or error: the child is gone or going */
        }
        bool exited = iso->zyg ? pr > 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) && wait_exit(iso, 0)
                               : (pr > 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR))) ||
                                     (iso->pidfd < 0 && exited_nowait(iso));
        if (exited) {
            /* The runner has exited (its supervisor goes only once the
             * worker has, and with it everything the plugin started): take
             * what it sent before, then report its death. */
            int rr = 0, dr = 0;
            while (rr == 0 && dr == 0) {
                size_t before = iso->in.len;
                rr = read_some(iso, true);
                dr = drain_frames(iso, job, res);
                if (rr == 0 && iso->in.len == before)
                    break; /* nothing more to read */
            }
            if (dr == 1)
                return;
            protocol_error = dr < 0;
            break;
        }
    }

    /* The child exited, closed its end, broke the protocol, or poll failed. */
    bool killed = term_at || force_at || kill_at;
    if (protocol_error)
        signal_kill_all(iso);
    int status = reap(iso, protocol_error ? 0 : DP_ISOLATE_GRACE_MS, &killed);
    if (protocol_error)
        *death = xasprintf("plugin '%s' sent a malformed message in job '%s' (killed)", iso->plugin, iso->job_name);
    else if (cancel_at && killed)
        *death = xasprintf("plugin '%s' did not stop within %u ms of being cancelled in job "
                           "'%s' and was killed",
                           iso->plugin, DP_ISOLATE_GRACE_MS, iso->job_name);
    else if (!ctx && cancel_at)
        *death = xasprintf("plugin '%s' took more than %u ms to check the params of job '%s' "
                           "and was killed",
                           iso->plugin, DP_ISOLATE_CREATE_CHECK_MS, iso->job_name);
    else
        *death = death_message(iso, status, "");
}

static void iso_free(dp_isolate_t *iso)
{
    if (!iso)
        return;
    if (iso->ctl >= 0)
        close(iso->ctl);
    if (iso->cancel >= 0)
        close(iso->cancel);
    if (iso->pidfd >= 0)
        close(iso->pidfd);
    live_set(iso->slot, 0);
    /* Kept for the next attempt if this one is over, else ended. */
    dp__isolate_zygote_put(iso->zyg);
    dp__iso_buf_free(&iso->out);
    dp__iso_buf_free(&iso->in);
    free(iso->plugin);
    free(iso->job_name);
    free(iso);
}

/* Spawns the child and sends INIT in `mode`; NULL with *msg and
 * *permanent if it cannot. */
static dp_isolate_t *launch(const dp_isolate_spec_t *spec, dp_job_t *job, uint8_t mode, char **msg, bool *permanent)
{
    *msg = NULL;
    *permanent = false;
    char err[2048];
    const char *runner = dp__isolate_runner(err, sizeof err);
    if (!runner) {
        *msg = strdup(err);
        *permanent = true;
        return NULL;
    }
    if (spec->fd < 0) {
        /* Loading spec->path instead could run another version than the
         * one the attempt pinned (the file may have been replaced since,
         * even by one the host refused). */
        *msg = xasprintf("plugin '%s' (%s) has no private copy of its pinned version to hand "
                         "to the job runner, so job '%s' cannot run isolated; fix: make "
                         "memfd_create or $DAGGERPOOL_PLUGIN_TMPDIR usable",
                         spec->plugin, spec->path, spec->job_name);
        *permanent = true;
        return NULL;
    }
    dp_isolate_t *iso = calloc(1, sizeof(*iso));
    if (!iso || !(iso->plugin = strdup(spec->plugin)) || !(iso->job_name = strdup(spec->job_name))) {
        iso_free(iso);
        *msg = strdup("out of memory");
        return NULL;
    }
    iso->ctl = iso->cancel = iso->pidfd = iso->slot = -1;
    iso->limits = spec->limits;
    iso->log = spec->log;
    iso->log_user = spec->log_user;
    iso->store = spec->store;

    dp_ctx_t *ctx = job ? dp_job_ctx(job) : NULL;
    dp__iso_begin(&iso->out, DP_ISO_INIT);
    dp__iso_put_u32(&iso->out, job ? dp_job_attempt(job) : 0);
    dp__iso_put_u64(&iso->out, (uint64_t)(ctx ? dp_ctx_remaining_ms(ctx) : -1));
    dp__iso_put_u64(&iso->out, spec->limits.cpu_ms);
    dp__iso_put_u64(&iso->out, spec->limits.memory_bytes);
    dp__iso_put_u64(&iso->out, spec->limits.open_files);
    dp__iso_put_u8(&iso->out, spec->fd >= 0);
    dp__iso_put_u8(&iso->out, mode);
    dp__iso_put_str(&iso->out, spec->plugin);
    dp__iso_put_str(&iso->out, spec->path);
    dp__iso_put_str(&iso->out, mode == DP_ISO_MODE_CHECKER ? "" : spec->type);
    dp__iso_put_str(&iso->out, spec->job_name);
    dp__iso_put_params(&iso->out, mode == DP_ISO_MODE_CHECKER ? NULL : spec->params);
    if (!dp__iso_end(&iso->out)) {
        iso_free(iso);
        *msg = strdup("out of memory");
        return NULL;
    }
    if (spawn_child(iso, runner, spec->fd, mode, err, sizeof err) != 0) {
        iso->dead = true;
        iso_free(iso);
        *msg = strdup(err);
        return NULL;
    }

    return iso;
}

int dp__isolate_checker_start(const dp_isolate_spec_t *spec, dp_isolate_t **out, char **msg)
{
    bool permanent;
    *out = NULL;
    dp_isolate_t *iso = launch(spec, NULL, DP_ISO_MODE_CHECKER, msg, &permanent);
    if (!iso)
        return -1;
    wait_result_t res = {0};
    char *death = NULL;
    wait_result(iso, NULL, DP_ISOLATE_CREATE_CHECK_MS, &res, &death);
    if (!res.got) {
        *msg = death;
        iso_free(iso);
        return -1;
    }
    free(death);
    if (res.result != 0) {
        /* The plugin did not load there: the child exits by itself. */
        *msg = res.msg;
        reap(iso, DP_ISOLATE_GRACE_MS, NULL);
        iso_free(iso);
        return -1;
    }
    free(res.msg);
    *out = iso;
    return 0;
}

int dp__isolate_check(dp_isolate_t *iso, const dp_isolate_spec_t *spec, char **msg)
{
    *msg = NULL;
    if (iso->dead) {
        *msg = xasprintf("plugin '%s' is no longer running to check the params of job '%s'", iso->plugin,
                         spec->job_name);
        return -1;
    }
    /* Messages (a crash's included) and log lines are this job's. */
    char *name = strdup(spec->job_name);
    if (!name) {
        *msg = strdup("out of memory");
        return -1;
    }
    free(iso->job_name);
    iso->job_name = name;
    iso->log = spec->log;
    iso->log_user = spec->log_user;
    dp__iso_begin(&iso->out, DP_ISO_CHECK);
    dp__iso_put_str(&iso->out, spec->type);
    dp__iso_put_str(&iso->out, spec->job_name);
    dp__iso_put_params(&iso->out, spec->params);
    (void)send_frame(iso);
    wait_result_t res = {0};
    char *death = NULL;
    wait_result(iso, NULL, DP_ISOLATE_CREATE_CHECK_MS, &res, &death);
    if (!res.got) {
        *msg = death;
        return -1;
    }
    free(death);
    if (res.result != 0) {
        *msg = res.msg ? res.msg : strdup("params refused (the plugin gave no message)");
        return -1;
    }
    free(res.msg);
    return 0;
}

bool dp__isolate_dead(const dp_isolate_t *iso)
{
    return iso->dead;
}

int dp__isolate_start(const dp_isolate_spec_t *spec, dp_job_t *job, dp_isolate_t **out, char **msg, bool *permanent)
{
    *out = NULL;
    dp_isolate_t *iso = launch(spec, job, DP_ISO_MODE_ATTEMPT, msg, permanent);
    if (!iso)
        return -1;

    wait_result_t res = {0};
    char *death = NULL;
    wait_result(iso, job, DP_ISOLATE_CREATE_CHECK_MS, &res, &death);
    if (!res.got) {
        *msg = death;
        iso_free(iso);
        return -1;
    }
    free(death);
    if (res.result != 0) {
        /* create refused: the child exits by itself. */
        *msg = res.msg;
        *permanent = (res.flags & DP_PLUGIN_ERROR_PERMANENT) != 0;
        reap(iso, DP_ISOLATE_GRACE_MS, NULL);
        iso_free(iso);
        return -1;
    }
    free(res.msg);
    *out = iso;
    return 0;
}

dp_plugin_result dp__isolate_call(dp_isolate_t *iso, dp_job_t *job, bool check, char **msg, unsigned *flags)
{
    *msg = NULL;
    *flags = 0;
    if (iso->dead) {
        *msg = xasprintf("plugin '%s' is no longer running for job '%s' (its process ended "
                         "earlier in this attempt)",
                         iso->plugin, iso->job_name);
        return DP_PLUGIN_ERROR;
    }
    dp_ctx_t *ctx = dp_job_ctx(job);
    dp__iso_begin(&iso->out, DP_ISO_CALL);
    dp__iso_put_u8(&iso->out, check);
    dp__iso_put_u32(&iso->out, ++iso->seq);
    dp__iso_put_u32(&iso->out, dp_job_attempt(job));
    dp__iso_put_u64(&iso->out, (uint64_t)dp_ctx_remaining_ms(ctx));
    (void)send_frame(iso);
    wait_result_t res = {0};
    char *death = NULL;
    wait_result(iso, job, 0, &res, &death);
    if (!res.got) {
        *msg = death;
        return DP_PLUGIN_ERROR;
    }
    free(death);
    *msg = res.msg;
    *flags = res.flags;
    return (dp_plugin_result)res.result;
}

void dp__isolate_end(dp_isolate_t *iso, dp_job_t *job, int how)
{
    if (!iso)
        return;
    if (!iso->dead) {
        dp__iso_begin(&iso->out, DP_ISO_END);
        dp__iso_put_u8(&iso->out, (uint8_t)how);
        /* A worker whose type has neither check nor end hook ends by
         * itself after run (runner.c): END may find its socket closed
         * already (EPIPE, or ECONNRESET), and the child is still to be
         * reaped and its exit (a crash in destroy) reported. errno is read
         * only when the send failed. */
        bool sent = send_frame(iso) == 0;
        bool gone = !sent && (errno == EPIPE || errno == ECONNRESET);
        if (sent || gone) {
            /* end (if asked) and destroy run in the child, which then exits;
             * serve its logs and store requests meanwhile, bounded like any
             * other call. */
            iso->ending = true;
            wait_result_t res = {0};
            char *death = NULL;
            wait_result(iso, job, DP_ISOLATE_GRACE_MS * 5, &res, &death);
            int status = iso->exit_status;
            if ((WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) && iso->log) {
                char *m = death_message(iso, status, " (while ending the instance)");
                iso->log(iso->log_user, job, iso->job_name, DP_LOG_WARN, m);
                free(m);
            }
            free(res.msg);
            free(death);
        } else {
            signal_kill_all(iso);
            reap(iso, DP_ISOLATE_GRACE_MS, NULL);
        }
    }
    iso_free(iso);
}

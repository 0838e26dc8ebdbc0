/*
 * isolate_zygote.c - zygotes, host side: per plugin version, a supervisor
 * that loaded the plugin once and forks a fresh worker per attempt
 * (host/runner/zygote.c), kept idle between attempts. The warm runner
 * starts each one (isolate_warm.c: a clone with CLONE_PARENT, so it is our
 * child, never a fork of this threaded process).
 *
 * Why: an attempt from a spare pays for two fresh processes (a supervisor
 * and its worker), their exits and the worker's dlopen of the plugin; from
 * a zygote it pays for one fork of a small process that has the plugin
 * loaded, and its exit. The zygote stays: we reap no process per attempt,
 * and the zygote tells us (DONE) when the worker is reaped and nothing it
 * started is left, with the worker's wait status.
 *
 * One attempt at a time per zygote (so every process it supervises is that
 * attempt's): attempts of one version under way at once take as many
 * zygotes. Idle ones wait here, keyed by the version's private copy
 * (device and inode: the copy stays open in the zygote, so the inode is
 * not reused while it lives); a hot swap loads a new copy, hence a new key
 * and new zygotes, and the old version's idle ones are ended after
 * ZYGOTE_IDLE_MS unused, or when more than ZYGOTE_IDLE_MAX are idle.
 *
 * Never fatal: a zygote that cannot start, refuses (its plugin started a
 * thread or a child while loading, or failed to load: the spare then
 * reports that as before) or dies makes take return NULL or the attempt
 * see its death, and a version whose zygote refused or died while loading
 * is not tried again. DAGGERPOOL_ZYGOTE=off turns zygotes off (a debugging
 * knob; how the tests and the benchmark reach the spares' path), and so
 * does DAGGERPOOL_WARM_RUNNER=off.
 */
#include "isolate_zygote.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "isolate_warm.h"
#include "isolate_wire.h"
#include "util.h"

/* How long a zygote may take to load its plugin before it is given up. */
#define ZYGOTE_START_MS 5000
/* Idle zygotes kept at most, and how long one may stay unused. */
#define ZYGOTE_IDLE_MAX 8u
#define ZYGOTE_IDLE_MS 30000u
/* Versions remembered as unable to have one. */
#define ZYGOTE_REFUSED_MAX 64u

struct dp_zygote {
    dev_t dev;
    ino_t ino;
    pid_t pid;
    int sock;     /* our end of its socket */
    bool done;    /* the attempt's DONE was read (or it died) */
    bool dead;    /* it exited, and was reaped */
    int status;   /* the worker's wait status once done */
    uint64_t put; /* when it went idle (ms) */
    dp_zygote_t *next;
};

static struct {
    pthread_mutex_t lock;
    dp_zygote_t *idle; /* most recently used first */
    unsigned nidle;
    struct {
        dev_t dev;
        ino_t ino;
    } refused[ZYGOTE_REFUSED_MAX];
    unsigned nrefused, next_refused;
    int off; /* 0 unknown, 1 off, -1 on */
} zp = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The process whose zygotes they are: a fork of it uses none. */
static _Atomic pid_t owner;

static bool off(void)
{
    if (zp.off == 0) {
        const char *z = getenv("DAGGERPOOL_ZYGOTE"), *w = getenv("DAGGERPOOL_WARM_RUNNER");
        bool o = (z && (strcmp(z, "off") == 0 || strcmp(z, "0") == 0)) ||
                 (w && (strcmp(w, "off") == 0 || strcmp(w, "0") == 0));
        zp.off = o ? 1 : -1;
    }
    return zp.off > 0;
}

static bool was_refused(dev_t dev, ino_t ino)
{
    for (unsigned i = 0; i < zp.nrefused; i++)
        if (zp.refused[i].dev == dev && zp.refused[i].ino == ino)
            return true;
    return false;
}

static void refuse(dev_t dev, ino_t ino)
{
    unsigned i = zp.next_refused++ % ZYGOTE_REFUSED_MAX;
    zp.refused[i].dev = dev;
    zp.refused[i].ino = ino;
    if (zp.nrefused < ZYGOTE_REFUSED_MAX)
        zp.nrefused++;
}

/* Reads one message of the zygote's, waiting up to ms (forever if
 * negative). 1 with *kind and *value, 0 if none came in time, -1 when its
 * socket closed or failed. */
static int read_msg(int sock, int64_t ms, uint32_t *kind, int32_t *value)
{
    uint64_t end = ms < 0 ? UINT64_MAX : dp__now_ms() + (uint64_t)ms;
    for (;;) {
        uint64_t now = dp__now_ms();
        int left = ms < 0 ? -1 : now >= end ? 0 : (int)(end - now);
        struct pollfd p = {.fd = sock, .events = POLLIN};
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        unsigned char msg[16];
        ssize_t n = recv(sock, msg, sizeof msg, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -1;
        uint32_t magic;
        if (n != 12)
            continue; /* not the zygote's: ignored */
        memcpy(&magic, msg, 4);
        memcpy(kind, msg + 4, 4);
        memcpy(value, msg + 8, 4);
        if (magic == DP_ISOLATE_ZYGOTE_MAGIC)
            return 1;
    }
}

static void tell(dp_zygote_t *z, uint32_t kind)
{
    unsigned char msg[12];
    uint32_t magic = DP_ISOLATE_ZYGOTE_MAGIC;
    int32_t zero = 0;
    memcpy(msg, &magic, 4);
    memcpy(msg + 4, &kind, 4);
    memcpy(msg + 8, &zero, 4);
    (void)send(z->sock, msg, sizeof msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Reaps the zygote, which has exited or is about to (its socket closed:
 * it ends on that); SIGKILL if it has not within a second. */
static int reap_zygote(pid_t pid)
{
    int st = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return r == pid ? st : 0;
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return 0;
    }
    return st;
}

/* Ends z (what an attempt under way started goes with it) and frees it. */
static void end(dp_zygote_t *z)
{
    if (!z)
        return;
    if (z->sock >= 0)
        close(z->sock);
    if (!z->dead)
        (void)reap_zygote(z->pid);
    free(z);
}

/* Starts a zygote for the version of plugin (dev, ino) through the warm
 * runner. NULL if it cannot serve (then, if the zygote itself refused or
 * died, the version is remembered). */
static dp_zygote_t *start(const char *runner, int plugin, dev_t dev, ino_t ino)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return NULL;
    int asked = dp__isolate_warm_zygote(runner, sv[1], plugin);
    close(sv[1]);
    if (asked != 0) {
        close(sv[0]);
        return NULL;
    }
    pid_t pid = 0;
    bool ready = false, gave_up = false;
    uint64_t end_at = dp__now_ms() + ZYGOTE_START_MS;
    for (;;) {
        uint64_t now = dp__now_ms();
        uint32_t kind;
        int32_t value;
        int r = now >= end_at ? 0 : read_msg(sv[0], (int64_t)(end_at - now), &kind, &value);
        if (r <= 0) {
            gave_up = r == 0 || pid > 0; /* too slow, or died loading */
            break;
        }
        if (kind == DP_ISOLATE_ZYGOTE_STARTED && value > 0 && pid == 0) {
            pid = (pid_t)value;
        } else if (kind == DP_ISOLATE_ZYGOTE_READY && pid > 0 && value == pid) {
            ready = true;
            break;
        } else if (kind == DP_ISOLATE_ZYGOTE_FAILED) {
            gave_up = true;
            break;
        }
    }
    dp_zygote_t *z = ready ? calloc(1, sizeof *z) : NULL;
    if (!z) {
        close(sv[0]);
        if (pid > 0) {
            if (!ready && gave_up)
                kill(pid, SIGKILL); /* too slow, or going: it holds nothing */
            (void)reap_zygote(pid);
        }
        if (gave_up) {
            pthread_mutex_lock(&zp.lock);
            refuse(dev, ino);
            pthread_mutex_unlock(&zp.lock);
        }
        return NULL;
    }
    z->dev = dev;
    z->ino = ino;
    z->pid = pid;
    z->sock = sv[0];
    return z;
}

/* Whether an idle zygote's socket says it is gone (closed, or anything
 * sent while no attempt was under way). */
static bool gone(const dp_zygote_t *z)
{
    struct pollfd p = {.fd = z->sock, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

/* Unlinks the idle zygotes that are gone, or unused too long, into *out. (lock) */
static void expire(uint64_t now, dp_zygote_t **out)
{
    for (dp_zygote_t **pp = &zp.idle; *pp;) {
        dp_zygote_t *z = *pp;
        if (now - z->put > ZYGOTE_IDLE_MS || gone(z)) {
            *pp = z->next;
            zp.nidle--;
            z->next = *out;
            *out = z;
        } else {
            pp = &z->next;
        }
    }
}

static void end_all(dp_zygote_t *list)
{
    while (list) {
        dp_zygote_t *next = list->next;
        end(list);
        list = next;
    }
}

dp_zygote_t *dp__isolate_zygote_take(const char *runner, int plugin)
{
    pid_t me = getpid();
    pid_t own = atomic_load(&owner);
    if (own != 0 && own != me)
        return NULL; /* a fork of the process whose zygotes they are */
    struct stat st;
    if (fstat(plugin, &st) != 0)
        return NULL;
    dp_zygote_t *found = NULL, *old = NULL;
    pthread_mutex_lock(&zp.lock);
    if (off() || was_refused(st.st_dev, st.st_ino)) {
        pthread_mutex_unlock(&zp.lock);
        return NULL;
    }
    if (own == 0)
        atomic_store(&owner, me);
    expire(dp__now_ms(), &old);
    for (dp_zygote_t **pp = &zp.idle; *pp; pp = &(*pp)->next) {
        if ((*pp)->dev == st.st_dev && (*pp)->ino == st.st_ino) {
            found = *pp;
            *pp = found->next;
            zp.nidle--;
            break;
        }
    }
    pthread_mutex_unlock(&zp.lock);
    end_all(old);
    if (!found)
        found = start(runner, plugin, st.st_dev, st.st_ino);
    if (found) {
        found->next = NULL;
        found->done = false;
        found->status = 0;
    }
    return found;
}

int dp__isolate_zygote_start(dp_zygote_t *z, int ctl, int cancel, int plugin)
{
    return dp__isolate_warm_send_request(z->sock, ctl, cancel, plugin);
}

pid_t dp__isolate_zygote_pid(const dp_zygote_t *z)
{
    return z->pid;
}

int dp__isolate_zygote_fd(const dp_zygote_t *z)
{
    return z->done ? -1 : z->sock;
}

int dp__isolate_zygote_wait(dp_zygote_t *z, int64_t ms, int *status)
{
    uint64_t end_at = ms < 0 ? UINT64_MAX : dp__now_ms() + (uint64_t)ms;
    while (!z->done) {
        uint64_t now = dp__now_ms();
        uint32_t kind;
        int32_t value;
        int r = read_msg(z->sock, ms < 0 ? -1 : now >= end_at ? 0 : (int64_t)(end_at - now), &kind, &value);
        if (r == 0)
            return 0;
        if (r < 0) {
            /* It died (killed from outside, or by our last resort): its
             * worker dies with it (its parent-death signal). */
            z->status = reap_zygote(z->pid);
            z->dead = z->done = true;
        } else if (kind == DP_ISOLATE_ZYGOTE_DONE) {
            z->status = value;
            z->done = true;
        }
    }
    *status = z->status;
    return 1;
}

void dp__isolate_zygote_term(dp_zygote_t *z)
{
    tell(z, DP_ISOLATE_ZYGOTE_TERM);
}

void dp__isolate_zygote_kill_all(dp_zygote_t *z)
{
    tell(z, DP_ISOLATE_ZYGOTE_KILL);
}

void dp__isolate_zygote_kill(dp_zygote_t *z)
{
    if (!z->dead)
        kill(z->pid, SIGKILL);
}

void dp__isolate_zygote_put(dp_zygote_t *z)
{
    if (!z)
        return;
    if (!z->done || z->dead || gone(z)) {
        end(z);
        return;
    }
    dp_zygote_t *old = NULL;
    uint64_t now = dp__now_ms();
    pthread_mutex_lock(&zp.lock);
    z->put = now;
    z->next = zp.idle;
    zp.idle = z;
    zp.nidle++;
    expire(now, &old);
    if (zp.nidle > ZYGOTE_IDLE_MAX) {
        /* The least recently used goes. */
        dp_zygote_t **pp = &zp.idle;
        while ((*pp)->next)
            pp = &(*pp)->next;
        dp_zygote_t *last = *pp;
        *pp = NULL;
        zp.nidle--;
        last->next = old;
        old = last;
    }
    pthread_mutex_unlock(&zp.lock);
    end_all(old);
}

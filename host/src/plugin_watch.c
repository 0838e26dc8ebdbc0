/*
 * plugin_watch.c - the plugin file watcher (dp_reloader_*): sees a plugin's
 * file change, waits until it is whole, and asks for the swap
 * (plugin_swap.c's reload, which loads, checks and swaps the new code).
 *
 * One inotify watch per directory that holds a loaded plugin file (a watch
 * on the file itself would follow the old inode when a new file is renamed
 * over it). A change is any of IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE,
 * IN_MODIFY or IN_ATTRIB naming the file. The file is sampled (stat) at each
 * change; once no change has come for settle_ms, it is sampled again, and
 * only if nothing moved (device, inode, size, mtime) and its ELF headers lie
 * within it is the reload tried. A reload that fails while the file is still
 * changing is retried; one that fails on a quiet file (or a file that stays
 * cut short) is reported as refused and the file waits for its next change.
 * A file whose bytes are those of the version that serves (a touch, or an
 * identical copy renamed over it) is left alone: the watcher keeps the size
 * and a hash of the bytes it read for each version it saw loaded, and
 * compares them when the file settles.
 *
 * Everything waits on one epoll descriptor (dp_reloader_fd): the inotify
 * descriptor, a timerfd armed for the soonest settle deadline, and an
 * eventfd poked by dp_reloader_trigger / dp_reloader_refresh (both
 * async-signal-safe: an atomic store and a write(2)).
 *
 * Lock order: `mu`, then the registry's (load_lock, then lock), which the
 * dp_plugins_* calls made under mu take; never the other way round. `mu`
 * serialises dispatch (and so everything in the file table). The requests
 * from signal handlers are atomics.
 */
#include "plugin_watch.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "plugin_registry.h"
#include "plugin_swap.h"
#include "util.h"

#define DEFAULT_SETTLE_MS 50
/* A quiet file that still looks cut short is sampled again this many times
 * (one settle interval apart) before it waits for its next change. */
#define MAX_INCOMPLETE_TRIES 40

#define WATCH_MASK                                                                                                     \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* The identity of a file's contents, as far as stat tells. */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    bool valid;
} file_id_t;

/* A file's bytes, as far as their length and a 64-bit hash tell. */
typedef struct content {
    uint64_t size, hash;
    bool known;
} content_t;

typedef struct wfile {
    char *plugin;
    char *path;
    char *dir;            /* where the watch is */
    char *base;           /* the name inotify reports */
    int wd;               /* -1: no watch (the directory is gone) */
    file_id_t loaded;     /* the file last loaded or refused (no retry until it moves) */
    content_t serving;    /* the bytes of the version that serves, read when it loaded */
    unsigned serving_gen; /* that version's generation */
    bool pending;         /* changed, not yet reloaded */
    file_id_t sample;     /* at the last change */
    uint64_t last_change_ns, first_change_ns;
    unsigned incomplete_tries;
    bool seen; /* still loaded at the last sync */
} wfile_t;

struct dp_reloader {
    dp_plugins_t *pl;
    dp_reloader_opts_t opts;
    pthread_mutex_t mu;
    int ep, in_fd, timer_fd, ev_fd;
    atomic_bool want_trigger, want_refresh;
    wfile_t *files; /* (mu) */
    size_t nfiles;
    atomic_ulong swaps, refused;
    /* The convenience thread. */
    pthread_t thread;
    int stop_fd;
    bool running;
};

static file_id_t file_id(const char *path)
{
    file_id_t id = {0};
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        id.dev = st.st_dev;
        id.ino = st.st_ino;
        id.size = st.st_size;
        id.mtime = st.st_mtim;
        id.valid = true;
    }
    return id;
}

static bool same_id(const file_id_t *a, const file_id_t *b)
{
    return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* A 64-bit hash of the bytes (xxHash64's round and avalanche, one lane):
 * it tells whether a file is the one read before, not a security check
 * (whoever can write the plugin file can load anything anyway), and the
 * size is compared beside it. */
#define H_P1 0x9E3779B185EBCA87ull
#define H_P2 0xC2B2AE3D27D4EB4Full
#define H_P3 0x165667B19E3779F9ull
#define H_P4 0x85EBCA77C2B2AE63ull

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t hash_word(uint64_t h, uint64_t w)
{
    w *= H_P2;
    w = rotl64(w, 31) * H_P1;
    h ^= w;
    return rotl64(h, 27) * H_P1 + H_P4;
}

/* Reads the file at path whole: its size and hash (known false when it
 * cannot be read). One pass of a few hundred KiB, only when a changed file
 * has settled or a version is loaded. */
static content_t file_content(const char *path)
{
    content_t c = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return c;
    unsigned char buf[65536];
    uint64_t h = H_P3, size = 0;
    for (;;) {
        /* Fill the buffer whole, so only the last one has a partial word. */
        size_t n = 0;
        while (n < sizeof(buf)) {
            ssize_t k = read(fd, buf + n, sizeof(buf) - n);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                close(fd);
                return c;
            }
            if (k == 0)
                break;
            n += (size_t)k;
        }
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, buf + i, 8);
            h = hash_word(h, w);
        }
        if (i < n) {
            uint64_t w = 0; /* the tail, zero-padded: the size tells it apart */
            memcpy(&w, buf + i, n - i);
            h = hash_word(h, w);
        }
        size += n;
        if (n < sizeof(buf))
            break;
    }
    close(fd);
    h ^= size;
    h ^= h >> 33;
    h *= H_P2;
    h ^= h >> 29;
    h *= H_P3;
    h ^= h >> 32;
    c.size = size;
    c.hash = h;
    c.known = true;
    return c;
}

static bool same_content(const content_t *a, const content_t *b)
{
    return a->known && b->known && a->size == b->size && a->hash == b->hash;
}

bool dp__elf_whole(const char *path)
{
    /* O_NONBLOCK: a FIFO put there cannot block the watcher thread. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return false;
    bool whole = false;
    struct stat st;
    Elf64_Ehdr eh;
    if (fstat(fd, &st) != 0)
        goto out;
    if (!S_ISREG(st.st_mode)) {
        whole = true; /* nothing to wait for: the loader refuses it */
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    ssize_t n = pread(fd, &eh, sizeof(eh), 0);
    if (n >= SELFMAG && memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
        whole = true; /* not ELF at all: let the loader say so */
        goto out;
    }
    if (n < (ssize_t)sizeof(eh))
        goto out;
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) {
        whole = true; /* not ours to judge; dlopen will refuse it */
        goto out;
    }
    if (eh.e_phoff + (uint64_t)eh.e_phnum * eh.e_phentsize > size ||
        eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize > size)
        goto out;
    if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
        whole = eh.e_phnum == 0;
        goto out;
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * sizeof(ph))) != (ssize_t)sizeof(ph))
            goto out;
        if (ph.p_type == PT_LOAD && ph.p_offset + ph.p_filesz > size)
            goto out;
    }
    whole = true;
out:
    close(fd);
    return whole;
}

/* ---- the file table ----------------------------------------------------- */

static void wfile_free(wfile_t *f)
{
    free(f->plugin);
    free(f->path);
    free(f->dir);
    free(f->base);
}

/* Adds (or renews) the inotify watch on f's directory. */
static void watch_dir(dp_reloader_t *r, wfile_t *f)
{
    if (f->wd >= 0)
        return;
    f->wd = inotify_add_watch(r->in_fd, f->dir, WATCH_MASK);
    if (f->wd < 0)
        dp__plugins_log(r->pl, DP_LOG_WARN, NULL, f->plugin,
                        "cannot watch %s for changes of plugin %s: %s; it is reloaded only on "
                        "request (SIGHUP)",
                        f->dir, f->plugin, strerror(errno));
}

struct sync_arg {
    dp_reloader_t *r;
    int rc;
};

static int sync_cb(const dp_plugin_info_t *info, void *arg)
{
    struct sync_arg *a = arg;
    dp_reloader_t *r = a->r;
    if (!info->current || !info->path || !info->name)
        return 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        wfile_t *f = &r->files[i];
        if (strcmp(f->plugin, info->name) == 0 && strcmp(f->path, info->path) == 0) {
            f->seen = true;
            return 0;
        }
    }
    wfile_t *grown = realloc(r->files, (r->nfiles + 1) * sizeof(*grown));
    if (!grown) {
        a->rc = DP_ENOMEM;
        return 1;
    }
    r->files = grown;
    wfile_t *f = &r->files[r->nfiles];
    memset(f, 0, sizeof(*f));
    f->wd = -1;
    f->seen = true;
    f->serving_gen = info->generation;
    f->plugin = strdup(info->name);
    f->path = strdup(info->path);
    char *slash = f->path ? strrchr(f->path, '/') : NULL;
    if (!f->path)
        f->dir = NULL;
    else if (!slash)
        f->dir = strdup(".");
    else if (slash == f->path)
        f->dir = strdup("/");
    else
        f->dir = strndup(f->path, (size_t)(slash - f->path));
    f->base = f->path ? strdup(slash ? slash + 1 : f->path) : NULL;
    if (!f->plugin || !f->path || !f->dir || !f->base) {
        wfile_free(f);
        a->rc = DP_ENOMEM;
        return 1;
    }
    /* This runs under the registry's lock: the watch is added after
     * (sync_files), outside it. */
    r->nfiles++;
    return 0;
}

/* Brings the table in line with the registry's current versions: new
 * plugins get a watch, unloaded ones are dropped. Holds mu. */
static int sync_files(dp_reloader_t *r)
{
    for (size_t i = 0; i < r->nfiles; i++)
        r->files[i].seen = false;
    size_t before = r->nfiles;
    struct sync_arg a = {r, DP_OK};
    dp_plugins_foreach(r->pl, sync_cb, &a);
    for (size_t i = before; i < r->nfiles; i++) {
        /* What serves is taken to be what is on disk now. */
        r->files[i].loaded = file_id(r->files[i].path);
        r->files[i].serving = file_content(r->files[i].path);
    }
    for (size_t i = 0; i < r->nfiles;) {
        wfile_t *f = &r->files[i];
        if (!f->seen) {
            /* The watch stays: another plugin may share the directory, and a
             * watch without files only costs a few ignored events. */
            wfile_free(f);
            r->files[i] = r->files[--r->nfiles];
            continue;
        }
        watch_dir(r, f);
        i++;
    }
    return a.rc;
}

/* ---- the timer ---------------------------------------------------------- */

static void arm_timer(dp_reloader_t *r)
{
    uint64_t soonest = 0;
    uint64_t settle = r->opts.settle_ms * 1000000u;
    for (size_t i = 0; i < r->nfiles; i++) {
        const wfile_t *f = &r->files[i];
        if (f->pending && (!soonest || f->last_change_ns + settle < soonest))
            soonest = f->last_change_ns + settle;
    }
    struct itimerspec its = {0};
    if (soonest) {
        if (soonest <= dp__now_ns())
            soonest = dp__now_ns() + 1; /* 0 would disarm */
        its.it_value.tv_sec = (time_t)(soonest / 1000000000u);
        its.it_value.tv_nsec = (long)(soonest % 1000000000u);
    }
    timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- reloading ---------------------------------------------------------- */

struct current_arg {
    const char *name;
    const char *version; /* interned: lives as long as the registry */
    unsigned generation;
};

static int current_cb(const dp_plugin_info_t *info, void *arg)
{
    struct current_arg *a = arg;
    if (!info->current || !info->name || strcmp(info->name, a->name) != 0)
        return 0;
    a->version = info->version;
    a->generation = info->generation;
    return 1;
}

/* The version of plugin `name` that serves now (version NULL, generation 0
 * if it is not loaded). */
static struct current_arg current_version(dp_reloader_t *r, const char *name)
{
    struct current_arg a = {name, NULL, 0};
    dp_plugins_foreach(r->pl, current_cb, &a);
    return a;
}

static void report(dp_reloader_t *r, const wfile_t *f, int rc, const char *err, const dp__reload_info_t *info,
                   bool triggered, uint64_t complete_ns)
{
    if (rc == DP_OK)
        atomic_fetch_add(&r->swaps, 1);
    else
        atomic_fetch_add(&r->refused, 1);
    if (rc == DP_OK)
        dp__plugins_log(r->pl, DP_LOG_DEBUG, NULL, f->plugin,
                        "plugin %s %s serves %.1f ms after its file was found whole", f->plugin, info->new_version,
                        (double)(info->swapped_ns - complete_ns) / 1e6);
    else
        dp__plugins_log(r->pl, DP_LOG_ERROR, NULL, f->plugin,
                        "reload of plugin %s refused, %s keeps serving: %s; the next change of "
                        "%s is tried again",
                        f->plugin, info->old_version ? info->old_version : "the old version", err, f->path);
    if (!r->opts.on_reload)
        return;
    dp_reload_event_t ev = {
        .plugin = f->plugin,
        .path = f->path,
        .status = rc,
        .error = rc == DP_OK ? NULL : err,
        .old_version = info->old_version,
        .new_version = rc == DP_OK ? info->new_version : NULL,
        .generation = rc == DP_OK ? info->new_generation : 0,
        .in_flight = info->in_flight,
        .triggered = triggered,
        .changed_ns = triggered ? 0 : f->first_change_ns,
        .complete_ns = complete_ns,
        .swapped_ns = rc == DP_OK ? info->swapped_ns : 0,
    };
    r->opts.on_reload(r->opts.user, &ev);
}

/* Tries f's reload now. Returns 1 if swapped, else 0. */
static int reload_file(dp_reloader_t *r, wfile_t *f, bool triggered)
{
    char err[4096] = "";
    dp__reload_info_t info;
    uint64_t complete_ns = dp__now_ns();
    file_id_t before = file_id(f->path);
    content_t bytes = file_content(f->path);
    int rc = dp__plugins_reload_ex(r->pl, f->plugin, &info, err, sizeof(err));
    file_id_t after = file_id(f->path);
    if (rc != DP_OK && !triggered) {
        if (!same_id(&before, &after) || !same_id(&before, &f->sample)) {
            /* It changed under us: still being written. Try again once it
             * settles, without a report. */
            f->sample = after;
            f->last_change_ns = dp__now_ns();
            return 0;
        }
    }
    report(r, f, rc, err, &info, triggered, complete_ns);
    f->pending = false;
    f->incomplete_tries = 0;
    f->first_change_ns = 0;
    if (rc == DP_OK) {
        f->loaded = before;
        /* The bytes read are those loaded only if the file did not move
         * meanwhile; if it did, its next settle compares with nothing and
         * reloads. */
        f->serving = bytes;
        f->serving.known = bytes.known && same_id(&before, &after);
        f->serving_gen = info.new_generation;
        return 1;
    }
    /* Refused: the old version serves on, but this file counts as seen, so
     * it is not tried again until it changes (the next event marks it
     * pending; a trigger tries it regardless). */
    f->loaded = before;
    return 0;
}

/* A settled file: reload it if it is whole and new. */
static int settle_file(dp_reloader_t *r, wfile_t *f, uint64_t now)
{
    file_id_t id = file_id(f->path);
    if (!id.valid) {
        /* Gone (deleted, or between an unlink and a rename): the next
         * event brings it back. */
        f->pending = false;
        return 0;
    }
    if (!same_id(&id, &f->sample)) {
        f->sample = id;
        f->last_change_ns = now;
        return 0;
    }
    if (same_id(&id, &f->loaded)) {
        f->pending = false; /* an event that changed nothing (chmod back, say) */
        f->first_change_ns = 0;
        return 0;
    }
    struct current_arg cur = current_version(r, f->plugin);
    if (!dp__elf_whole(f->path)) {
        if (++f->incomplete_tries < MAX_INCOMPLETE_TRIES) {
            f->last_change_ns = now;
            return 0;
        }
        /* Quiet for MAX_INCOMPLETE_TRIES settle intervals and still cut
         * short: a refused reload like any other (error, counted, the
         * callback told), not a passing remark. */
        char err[PATH_MAX + 256];
        snprintf(err, sizeof(err),
                 "%s looks cut short (its ELF headers point past its end of %lld bytes) and has "
                 "not changed for %llu ms; fix: install the whole file (write it beside, then "
                 "rename it over)",
                 f->path, (long long)id.size, (unsigned long long)(MAX_INCOMPLETE_TRIES * r->opts.settle_ms));
        dp__reload_info_t info = {.old_version = cur.version, .old_generation = cur.generation};
        report(r, f, DP_EPLUGIN, err, &info, false, dp__now_ns());
        f->loaded = id;
        f->pending = false;
        f->incomplete_tries = 0;
        f->first_change_ns = 0;
        return 0;
    }
    if (f->serving.known && cur.generation == f->serving_gen) {
        /* Whole, with a new inode or mtime, but maybe the same bytes
         * (touch, cp -p, an identical build renamed over it): compare
         * with what serves. A version loaded behind our back
         * (dp_plugins_reload) has another generation: not compared. */
        content_t now_bytes = file_content(f->path);
        if (same_content(&now_bytes, &f->serving)) {
            dp__plugins_log(r->pl, DP_LOG_INFO, NULL, f->plugin,
                            "%s changed on disk but holds the same bytes as plugin %s %s, which "
                            "serves: left alone (SIGHUP reloads it anyway)",
                            f->path, f->plugin, cur.version ? cur.version : "");
            f->loaded = id;
            f->pending = false;
            f->first_change_ns = 0;
            return 0;
        }
    }
    return reload_file(r, f, false);
}

static void on_inotify(dp_reloader_t *r, uint64_t now, bool *resync)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(r->in_fd, buf, sizeof(buf));
        if (n <= 0)
            return; /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                /* Events were lost: look at every file. */
                for (size_t i = 0; i < r->nfiles; i++) {
                    wfile_t *f = &r->files[i];
                    f->pending = true;
                    f->sample = file_id(f->path);
                    f->last_change_ns = now;
                    if (!f->first_change_ns)
                        f->first_change_ns = now;
                }
                continue;
            }
            if (ev->mask & IN_IGNORED) {
                for (size_t i = 0; i < r->nfiles; i++)
                    if (r->files[i].wd == ev->wd)
                        r->files[i].wd = -1;
                *resync = true;
                continue;
            }
            if (!ev->len)
                continue;
            for (size_t i = 0; i < r->nfiles; i++) {
                wfile_t *f = &r->files[i];
                if (f->wd != ev->wd || strcmp(f->base, ev->name) != 0)
                    continue;
                f->pending = true;
                f->sample = file_id(f->path);
                f->last_change_ns = now;
                f->incomplete_tries = 0;
                if (!f->first_change_ns)
                    f->first_change_ns = now;
            }
        }
    }
}

static void drain(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) > 0) {
    }
}

int dp_reloader_dispatch(dp_reloader_t *r)
{
    if (!r)
        return DP_EINVAL;
    pthread_mutex_lock(&r->mu);
    drain(r->ev_fd);
    drain(r->timer_fd);
    bool trigger = atomic_exchange(&r->want_trigger, false);
    bool resync = atomic_exchange(&r->want_refresh, false) || trigger;
    uint64_t now = dp__now_ns();
    on_inotify(r, now, &resync);
    int rc = DP_OK;
    if (resync)
        rc = sync_files(r);
    int swapped = 0;
    if (trigger) {
        for (size_t i = 0; i < r->nfiles; i++)
            swapped += reload_file(r, &r->files[i], true);
    }
    uint64_t settle = r->opts.settle_ms * 1000000u;
    now = dp__now_ns();
    for (size_t i = 0; i < r->nfiles; i++) {
        wfile_t *f = &r->files[i];
        if (f->pending && now >= f->last_change_ns + settle)
            swapped += settle_file(r, f, now);
    }
    arm_timer(r);
    pthread_mutex_unlock(&r->mu);
    return rc != DP_OK ? rc : swapped;
}

/* ---- life --------------------------------------------------------------- */

void dp_reloader_opts_init(dp_reloader_opts_t *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->settle_ms = DEFAULT_SETTLE_MS;
}

static int add_ep(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

dp_reloader_t *dp_reloader_new(dp_plugins_t *pl, const dp_reloader_opts_t *opts, char *err, size_t errlen)
{
    if (!pl) {
        if (err && errlen)
            snprintf(err, errlen, "dp_reloader_new: no registry");
        return NULL;
    }
    dp_reloader_t *r = calloc(1, sizeof(*r));
    if (!r) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->pl = pl;
    if (opts)
        r->opts = *opts;
    else
        dp_reloader_opts_init(&r->opts);
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->want_trigger, false);
    atomic_init(&r->want_refresh, false);
    atomic_init(&r->swaps, 0);
    atomic_init(&r->refused, 0);
    r->stop_fd = -1;
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    r->in_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    r->ev_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const char *what = r->ep < 0         ? "epoll_create1"
                       : r->in_fd < 0    ? "inotify_init1"
                       : r->timer_fd < 0 ? "timerfd_create"
                       : r->ev_fd < 0    ? "eventfd"
                                         : NULL;
    if (!what && (add_ep(r->ep, r->in_fd) != 0 || add_ep(r->ep, r->timer_fd) != 0 || add_ep(r->ep, r->ev_fd) != 0))
        what = "epoll_ctl";
    if (what) {
        if (err && errlen)
            snprintf(err, errlen, "cannot watch plugin files: %s: %s%s", what, strerror(errno),
                     errno == EMFILE ? " (fix: raise the inotify instance or file limit)" : "");
        dp_reloader_free(r);
        return NULL;
    }
    pthread_mutex_lock(&r->mu);
    int rc = sync_files(r);
    pthread_mutex_unlock(&r->mu);
    if (rc != DP_OK) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        dp_reloader_free(r);
        return NULL;
    }
    return r;
}

void dp_reloader_free(dp_reloader_t *r)
{
    if (!r)
        return;
    dp_reloader_stop(r);
    for (size_t i = 0; i < r->nfiles; i++)
        wfile_free(&r->files[i]);
    free(r->files);
    if (r->ep >= 0)
        close(r->ep);
    if (r->in_fd >= 0)
        close(r->in_fd);
    if (r->timer_fd >= 0)
        close(r->timer_fd);
    if (r->ev_fd >= 0)
        close(r->ev_fd);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int dp_reloader_fd(dp_reloader_t *r)
{
    return r ? r->ep : -1;
}

static void poke(dp_reloader_t *r)
{
    uint64_t one = 1;
    ssize_t w = write(r->ev_fd, &one, sizeof(one));
    (void)w; /* EAGAIN: the counter is full, so a dispatch is due anyway */
}

void dp_reloader_trigger(dp_reloader_t *r)
{
    if (!r)
        return;
    atomic_store(&r->want_trigger, true);
    poke(r);
}

void dp_reloader_refresh(dp_reloader_t *r)
{
    if (!r)
        return;
    atomic_store(&r->want_refresh, true);
    poke(r);
}

void dp_reloader_stats(dp_reloader_t *r, unsigned long *swaps, unsigned long *refused)
{
    if (swaps)
        *swaps = r ? atomic_load(&r->swaps) : 0;
    if (refused)
        *refused = r ? atomic_load(&r->refused) : 0;
}

static void *reloader_main(void *arg)
{
    dp_reloader_t *r = arg;
    struct pollfd fds[2] = {{.fd = r->ep, .events = POLLIN}, {.fd = r->stop_fd, .events = POLLIN}};
    for (;;) {
        int n = poll(fds, 2, -1);
        if (n < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (n > 0 && fds[0].revents)
            dp_reloader_dispatch(r);
    }
    return NULL;
}

int dp_reloader_start(dp_reloader_t *r)
{
    if (!r)
        return DP_EINVAL;
    if (r->running)
        return DP_EBUSY;
    r->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (r->stop_fd < 0)
        return DP_ESYS;
    if (pthread_create(&r->thread, NULL, reloader_main, r) != 0) {
        close(r->stop_fd);
        r->stop_fd = -1;
        return DP_ESYS;
    }
    r->running = true;
    return DP_OK;
}

void dp_reloader_stop(dp_reloader_t *r)
{
    if (!r || !r->running)
        return;
    uint64_t one = 1;
    ssize_t w = write(r->stop_fd, &one, sizeof(one));
    (void)w;
    pthread_join(r->thread, NULL);
    close(r->stop_fd);
    r->stop_fd = -1;
    r->running = false;
}

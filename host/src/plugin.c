/*
 * plugin.c - the plugin registry: finding, loading, checking and versioning
 * plugins, the host API table handed to them, and the adapter that turns a
 * plugin job type into an engine job.
 *
 * Versions. Each load of a plugin is a version: its own dlopen handle (of a
 * private copy of the file, see open_private_copy), its checked descriptor
 * and job types, a generation number and a count of the jobs pinned to it.
 * A plugin name has one current version and possibly older ones that still
 * have jobs in flight ("draining"). A job pins the current version when an
 * attempt starts and unpins it when the attempt ends; a version that is no
 * longer current is unloaded (fini, dlclose) when its last job unpins it.
 * A reload builds and checks the new version completely before one swap
 * under the lock, so a failed reload changes nothing.
 *
 * Lifetime. The registry is reference counted: the owner holds one
 * reference, and every job added with dp_plugins_add_job holds one until the
 * graph frees it. So graphs may outlive dp_plugins_free, and the strings
 * results point at (interned version strings, plugin names) stay valid while
 * any graph of this registry is alive.
 *
 * Lock order: load_lock before lock. load_lock serialises loads, reloads
 * and scans (plugin code, entry/init/fini, runs under it, never under lock);
 * lock guards the entries, the versions' pins, the interned strings and the
 * settings. No plugin code runs while `lock` is held.
 */
#include "plugin.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "isolate.h"
#include "params.h"

#ifndef DP_PLUGIN_RELDIR
#define DP_PLUGIN_RELDIR "lib/daggerpool/plugins"
#endif

/* Sizes of the v1.0 structs: the smallest a plugin may hand us. Later minors
 * only append, so these never change within major 1. */
#define DESC_V1_0_SIZE (offsetof(dp_plugin_desc, fini) + sizeof(void (*)(void)))
#define TYPE_V1_0_SIZE (offsetof(dp_job_type, destroy) + sizeof(void (*)(void *)))

/* A plugin that lists more types than this is taken to have forgotten the
 * NULL terminator. */
#define MAX_TYPES 1024

typedef struct ptype {
    const char *name; /* points into the plugin (valid while loaded) */
    dp_job_type ops;  /* the plugin's struct, copied into the host's size */
} ptype_t;

typedef struct pentry pentry_t;

typedef struct pversion {
    pentry_t *entry;          /* NULL for a scan probe */
    void *handle;
    int fd;                   /* the private copy behind the handle (a memfd, or an
                               * unlinked temporary file): isolated runners load it */
    dp_plugin_desc desc;      /* copied into the host's size, zero-filled */
    ptype_t *types;
    size_t ntypes;
    const char **type_names;  /* NULL-terminated, for dp_plugin_info_t */
    char *path;               /* the file it was loaded from */
    const char *version;      /* interned copy of desc.version (NULL: scan) */
    unsigned generation;
    uint64_t loaded_at_ms;
    unsigned jobs;            /* attempts pinned to it (lock) */
    bool current;             /* (lock) */
    bool inited;              /* init succeeded: call fini before dlclose */
    struct pversion *next;    /* in the entry's draining list (lock) */
} pversion_t;

/* A type that jobs of live graphs use, and which callbacks their specs call:
 * a reload must keep them. Counted per job (dp_plugins_add_job adds, the
 * job's free drops), so a type no graph references any more may go. */
typedef struct used_type {
    char *name;
    unsigned jobs;            /* jobs of this type (lock) */
    unsigned run, check;      /* of those, jobs whose spec calls run / check */
} used_type_t;

struct pentry {
    char *name;
    pversion_t *current;      /* NULL until loaded */
    pversion_t *draining;
    used_type_t *used;
    size_t nused;
    pentry_t *next;           /* sorted by name */
};

struct dp_plugins {
    pthread_mutex_t load_lock;
    pthread_mutex_t lock;
    unsigned refs;            /* owner + one per plugin job (lock) */
    char **paths;             /* search path (load_lock) */
    size_t npaths;
    bool allow_insecure;      /* (lock) */
    dp_log_cb log;            /* (lock) */
    void *log_user;
    dp_log_level_t log_level;
    dp_store_t *store;        /* (lock) */
    pentry_t *entries;        /* (lock) */
    char **interned;          /* (lock) */
    size_t ninterned, capinterned;
};

/* The handle behind every host API call: one create, run or check. */
struct dp_plugin_ctx {
    dp_plugins_t *pl;
    pversion_t *ver;
    dp_job_t *job;            /* NULL while checking params at add time */
    const char *job_name;
    char *error;              /* set_error's message (malloc'd) */
    unsigned error_flags;
};

/* One plugin job: the adapter behind the engine's run/check callbacks. */
typedef struct pjob {
    dp_plugins_t *pl;
    pentry_t *entry;
    const char *type;         /* TYPE of PLUGIN.TYPE (interned in pl) */
    const char *full_type;    /* (interned in pl) */
    dp_params_t *params;      /* the job's own copy, or lent (params_lent) */
    bool params_lent;         /* the caller's, for the graph's lifetime */
    /* The current attempt's instance (see the attempt_end contract: the
     * engine never calls one job's callbacks concurrently). */
    pversion_t *ver;
    const ptype_t *t;
    void *state;
    unsigned attempt;
    bool live;
    /* isolation = "process": the attempt's instance lives in a child
     * process (iso) instead of state; see isolate.h. */
    dp_isolation_t isolation;
    dp_limits_t limits;
    dp_isolate_t *iso;
    bool has_run, has_check;  /* what note_used counted for this job */
    bool counted;             /* note_used counted it: unnote on free */
} pjob_t;

static void unnote_used(pjob_t *pj);

/* ---- small helpers ------------------------------------------------------ */

static int seterr(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int seterr(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Plugin and type names: letters, digits, '_' and '-' (no '.', which
 * separates PLUGIN from TYPE). */
static bool valid_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

static void plog(dp_plugins_t *pl, dp_log_level_t level, const char *job, const char *plugin,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void plog(dp_plugins_t *pl, dp_log_level_t level, const char *job, const char *plugin,
                 const char *fmt, ...)
{
    pthread_mutex_lock(&pl->lock);
    dp_log_cb cb = pl->log;
    void *user = pl->log_user;
    dp_log_level_t max = pl->log_level;
    pthread_mutex_unlock(&pl->lock);
    if (!cb || level > max)
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    dp_log_record_t rec = {.level = level, .job = job, .attempt = 0, .plugin = plugin,
                           .message = buf, .time_ns = wall_ns()};
    cb(user, &rec);
}

/* Returns a copy of s that lives as long as the registry. Caller holds
 * lock. NULL when out of memory. */
static const char *intern_locked(dp_plugins_t *pl, const char *s)
{
    for (size_t i = 0; i < pl->ninterned; i++)
        if (strcmp(pl->interned[i], s) == 0)
            return pl->interned[i];
    if (pl->ninterned == pl->capinterned) {
        size_t cap = pl->capinterned ? pl->capinterned * 2 : 8;
        char **v = realloc(pl->interned, cap * sizeof(*v));
        if (!v)
            return NULL;
        pl->interned = v;
        pl->capinterned = cap;
    }
    char *c = strdup(s);
    if (!c)
        return NULL;
    pl->interned[pl->ninterned++] = c;
    return c;
}

/* ---- registry ----------------------------------------------------------- */

dp_plugins_t *dp_plugins_new(void)
{
    dp_plugins_t *pl = calloc(1, sizeof(*pl));
    if (!pl)
        return NULL;
    pthread_mutex_init(&pl->load_lock, NULL);
    pthread_mutex_init(&pl->lock, NULL);
    pl->refs = 1;
    pl->log_level = DP_LOG_INFO;
    return pl;
}

static void version_unload(pversion_t *v);

static void registry_destroy(dp_plugins_t *pl)
{
    pentry_t *e = pl->entries;
    while (e) {
        pentry_t *next = e->next;
        /* No job holds a pin: each would hold a registry reference. */
        if (e->current)
            version_unload(e->current);
        for (pversion_t *v = e->draining; v;) {
            pversion_t *vn = v->next;
            version_unload(v);
            v = vn;
        }
        for (size_t i = 0; i < e->nused; i++)
            free(e->used[i].name);
        free(e->used);
        free(e->name);
        free(e);
        e = next;
    }
    for (size_t i = 0; i < pl->npaths; i++)
        free(pl->paths[i]);
    free(pl->paths);
    for (size_t i = 0; i < pl->ninterned; i++)
        free(pl->interned[i]);
    free(pl->interned);
    pthread_mutex_destroy(&pl->lock);
    pthread_mutex_destroy(&pl->load_lock);
    free(pl);
}

static void registry_unref(dp_plugins_t *pl)
{
    pthread_mutex_lock(&pl->lock);
    bool last = --pl->refs == 0;
    pthread_mutex_unlock(&pl->lock);
    if (last)
        registry_destroy(pl);
}

void dp_plugins_free(dp_plugins_t *pl)
{
    if (pl)
        registry_unref(pl);
}

int dp_plugins_add_path(dp_plugins_t *pl, const char *dir)
{
    if (!pl || !dir || !*dir)
        return DP_EINVAL;
    char *copy = strdup(dir);
    if (!copy)
        return DP_ENOMEM;
    pthread_mutex_lock(&pl->load_lock);
    char **v = realloc(pl->paths, (pl->npaths + 1) * sizeof(*v));
    if (!v) {
        pthread_mutex_unlock(&pl->load_lock);
        free(copy);
        return DP_ENOMEM;
    }
    pl->paths = v;
    pl->paths[pl->npaths++] = copy;
    pthread_mutex_unlock(&pl->load_lock);
    return DP_OK;
}

int dp__plugins_add_path_list(dp_plugins_t *pl, const char *list)
{
    if (!pl)
        return DP_EINVAL;
    if (!list)
        return DP_OK;
    const char *s = list;
    while (*s) {
        const char *end = strchr(s, ':');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n) {
            char *dir = strndup(s, n);
            if (!dir)
                return DP_ENOMEM;
            int rc = dp_plugins_add_path(pl, dir);
            free(dir);
            if (rc != DP_OK)
                return rc;
        }
        s += n;
        if (*s == ':')
            s++;
    }
    return DP_OK;
}

int dp__plugins_default_dir(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return DP_ESYS;
    exe[n] = '\0';
    /* Strip the file name, then bin/: what is left is the prefix. */
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            return DP_ESYS;
        *slash = '\0';
    }
    int w = snprintf(buf, len, "%s/%s", exe[0] ? exe : "", DP_PLUGIN_RELDIR);
    return w < 0 || (size_t)w >= len ? DP_EINVAL : DP_OK;
}

void dp_plugins_allow_insecure(dp_plugins_t *pl, bool allow)
{
    if (!pl)
        return;
    pthread_mutex_lock(&pl->lock);
    pl->allow_insecure = allow;
    pthread_mutex_unlock(&pl->lock);
}

void dp_plugins_set_log(dp_plugins_t *pl, dp_log_cb log, void *user, dp_log_level_t level)
{
    if (!pl)
        return;
    pthread_mutex_lock(&pl->lock);
    pl->log = log;
    pl->log_user = user;
    pl->log_level = level;
    pthread_mutex_unlock(&pl->lock);
}

void dp_plugins_set_store(dp_plugins_t *pl, dp_store_t *store)
{
    if (!pl)
        return;
    pthread_mutex_lock(&pl->lock);
    pl->store = store;
    pthread_mutex_unlock(&pl->lock);
}

static pentry_t *find_entry_locked(dp_plugins_t *pl, const char *name)
{
    for (pentry_t *e = pl->entries; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static pentry_t *get_entry_locked(dp_plugins_t *pl, const char *name)
{
    pentry_t *e = find_entry_locked(pl, name);
    if (e)
        return e;
    if (!(e = calloc(1, sizeof(*e))))
        return NULL;
    if (!(e->name = strdup(name))) {
        free(e);
        return NULL;
    }
    pentry_t **pp = &pl->entries;
    while (*pp && strcmp((*pp)->name, name) < 0)
        pp = &(*pp)->next;
    e->next = *pp;
    *pp = e;
    return e;
}

/* ---- loading one version ----------------------------------------------- */

/*
 * Load path security, OpenSSH's StrictModes for the code we are about to
 * run: the plugin file and every directory in which a name on the way to
 * it is looked up - from / (or from the working directory's chain, for a
 * relative path) down to the file, through every symlink, to the directory
 * a link points into - must be owned by root or us and writable by no one
 * else; a directory that is sticky and owned by root (/tmp) may be writable
 * by all, since there no one can rename or remove a name they do not own.
 * Checking only the file and its own directory let a parent mode 777, or a
 * symlink into a 777 directory, hand the plugin to anyone.
 */

/* The owner and mode of one node (not a symlink) on the way to plugin. */
static int check_node(const char *node, bool is_dir, const char *plugin, char *err, size_t errlen)
{
    struct stat st;
    const char *what = is_dir ? "directory" : "file";
    if (stat(node, &st) != 0)
        return seterr(err, errlen, DP_EPLUGIN, "%s: cannot stat the %s %s: %s", plugin, what, node, strerror(errno));
    uid_t me = geteuid();
    char where[PATH_MAX + 64] = "";
    if (is_dir || strcmp(node, plugin) != 0)
        snprintf(where, sizeof where, ": %s, on the way to the plugin", node);
    if (st.st_uid != 0 && st.st_uid != me)
        return seterr(err, errlen, DP_EPLUGIN,
                      "%s: refusing an insecure plugin: the %s is owned by uid %u, neither root nor you (uid %u)%s, "
                      "so its owner could change the code you run; fix: chown it to yourself or root, or allow "
                      "insecure plugins (--allow-insecure-plugins)",
                      plugin, what, (unsigned)st.st_uid, (unsigned)me, where);
    bool shared_ok = is_dir && (st.st_mode & S_ISVTX) && st.st_uid == 0;
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !shared_ok)
        return seterr(err, errlen, DP_EPLUGIN,
                      "%s: refusing an insecure plugin: the %s is writable by %s (mode %04o)%s, so %s could put "
                      "other code in its place; fix: chmod go-w '%s'%s, or allow insecure plugins "
                      "(--allow-insecure-plugins)",
                      plugin, what, (st.st_mode & S_IWOTH) ? "others" : "its group", (unsigned)(st.st_mode & 07777),
                      where, (st.st_mode & S_IWOTH) ? "others" : "its group", node,
                      is_dir ? " (a directory all may write to: chmod +t, owned by root, as /tmp is)" : "");
    return DP_OK;
}

/* dir (absolute, resolved) and each of its parents up to /. */
static int check_dir_chain(const char *dir, const char *plugin, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (;;) {
        int rc = check_node(buf, true, plugin, err, errlen);
        if (rc != DP_OK || strcmp(buf, "/") == 0)
            return rc;
        char *slash = strrchr(buf, '/');
        if (!slash)
            return DP_OK;
        slash[slash == buf ? 1 : 0] = '\0';
    }
}

/* Walks path a name at a time as the kernel would, following symlinks
 * (40 at most, the kernel's limit), checking each directory a name is
 * looked up in and, last, the file. */
static int check_secure(const char *path, char *err, size_t errlen)
{
    char done[PATH_MAX], rest[PATH_MAX], cand[PATH_MAX], target[PATH_MAX], tmp[PATH_MAX];
    if (strlen(path) >= sizeof rest)
        return seterr(err, errlen, DP_EPLUGIN, "%s: the path is too long", path);
    int rc;
    if (path[0] == '/') {
        snprintf(done, sizeof done, "/");
        rc = check_node(done, true, path, err, errlen);
    } else {
        if (!getcwd(done, sizeof done))
            return seterr(err, errlen, DP_EPLUGIN, "%s: cannot get the working directory: %s", path,
                          strerror(errno));
        rc = check_dir_chain(done, path, err, errlen);
    }
    if (rc != DP_OK)
        return rc;
    snprintf(rest, sizeof rest, "%s", path);
    const char *p = rest;
    unsigned hops = 0;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            return DP_OK; /* ended on a directory: the caller refuses it */
        size_t len = strcspn(p, "/");
        char comp[NAME_MAX + 1];
        if (len > NAME_MAX)
            return seterr(err, errlen, DP_EPLUGIN, "%s: a name in it is too long", path);
        memcpy(comp, p, len);
        comp[len] = '\0';
        p += len;
        const char *q = p;
        while (*q == '/')
            q++;
        bool last = !*q;
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) { /* done's parent was checked on the way down */
            char *slash = strrchr(done, '/');
            if (slash)
                slash[slash == done ? 1 : 0] = '\0';
            continue;
        }
        if ((size_t)snprintf(cand, sizeof cand, "%s%s%s", done, strcmp(done, "/") == 0 ? "" : "/", comp) >=
            sizeof cand)
            return seterr(err, errlen, DP_EPLUGIN, "%s: the path is too long", path);
        struct stat st;
        if (lstat(cand, &st) != 0)
            return seterr(err, errlen, DP_EPLUGIN, "%s: cannot stat %s: %s", path, cand, strerror(errno));
        if (S_ISLNK(st.st_mode)) {
            /* The link's own directory (done) is checked: no one else can
             * change where it points. On to what it names. */
            ssize_t n = readlink(cand, target, sizeof target - 1);
            if (n < 0 || ++hops > 40)
                return seterr(err, errlen, DP_EPLUGIN, "%s: cannot follow the symlink %s: %s", path, cand,
                              n < 0 ? strerror(errno) : strerror(ELOOP));
            target[n] = '\0';
            if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s", target, p) >= sizeof tmp)
                return seterr(err, errlen, DP_EPLUGIN, "%s: the path is too long", path);
            memcpy(rest, tmp, strlen(tmp) + 1);
            p = rest;
            if (target[0] == '/')
                snprintf(done, sizeof done, "/"); /* checked at the start or in the cwd's chain */
            continue;
        }
        if (last)
            return check_node(cand, S_ISDIR(st.st_mode), path, err, errlen);
        if (!S_ISDIR(st.st_mode))
            return seterr(err, errlen, DP_EPLUGIN, "%s: %s is not a directory", path, cand);
        if ((rc = check_node(cand, true, path, err, errlen)) != DP_OK)
            return rc;
        memcpy(done, cand, strlen(cand) + 1);
    }
}

/* Checks for an ELF shared object before dlopen, whose messages for a
 * random file are cryptic. */
static int check_elf(int fd, const char *path, char *err, size_t errlen)
{
    unsigned char hdr[sizeof(Elf64_Ehdr)];
    ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
    if (n < 0)
        return seterr(err, errlen, DP_EPLUGIN, "%s: cannot read: %s", path, strerror(errno));
    if ((size_t)n < EI_NIDENT + 4 || memcmp(hdr, ELFMAG, SELFMAG) != 0)
        return seterr(err, errlen, DP_EPLUGIN,
                      "%s: not a shared object (no ELF header); fix: build the plugin as a "
                      "shared library (dp_add_plugin() in CMake, or cc -shared -fPIC)",
                      path);
    /* e_type sits at the same offset in 32- and 64-bit headers. */
    uint16_t type;
    memcpy(&type, hdr + EI_NIDENT, sizeof(type));
    if (hdr[EI_DATA] != ELFDATA2LSB)
        type = (uint16_t)((type >> 8) | (type << 8));
    if (type != ET_DYN)
        return seterr(err, errlen, DP_EPLUGIN,
                      "%s: not a shared object (ELF type %u: an executable or object file); "
                      "fix: build the plugin as a shared library (dp_add_plugin() in CMake, or "
                      "cc -shared -fPIC)",
                      path, (unsigned)type);
    return DP_OK;
}

static int copy_fd(int src, int dst)
{
    char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(src, buf, sizeof(buf), off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            return 0;
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(dst, buf + w, (size_t)(n - w));
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            w += k;
        }
        off += n;
    }
}

/* dlopen's own name lookup comes before the inode check: an object loaded
 * under the same name is returned as it is. memfd paths (/proc/self/fd/N)
 * repeat once N is reused, and dlclose may leave an object mapped, so ask
 * first whether the name is taken. */
static bool name_taken(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!h)
        return false;
    dlclose(h);
    return true;
}

/*
 * Opens a private copy of the plugin file, so that every load maps new code:
 * glibc hands back an object already loaded from the same path or inode, and
 * a file replaced in place would then be ignored (or, rewritten in place,
 * change under our feet). First a memfd, kept open while the version is
 * loaded so its /proc/self/fd/N name stays unique; where memfds cannot be
 * created or mapped executable (or DAGGERPOOL_PLUGIN_COPY=file asks for it,
 * which is how that path is tested), an unlinked copy in
 * $DAGGERPOOL_PLUGIN_TMPDIR, $TMPDIR or /tmp. *keep_fd is the copy's
 * descriptor either way, open while the version is: the job runner of an
 * isolated attempt loads exactly that copy.
 */
static void *open_private_copy(int src, const char *path, const char *name, int *keep_fd,
                               char *err, size_t errlen)
{
    char fdpath[64], why[512] = "";
    char mname[128];
    snprintf(mname, sizeof(mname), "daggerpool-plugin:%s", name);
    *keep_fd = -1;
    const char *how = getenv("DAGGERPOOL_PLUGIN_COPY");
    bool file_only = how && strcmp(how, "file") == 0;
    int mfd = file_only ? -1 : memfd_create(mname, MFD_CLOEXEC);
    if (mfd >= 0) {
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", mfd);
        if (copy_fd(src, mfd) == 0 && !name_taken(fdpath)) {
            void *h = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
            if (h) {
                *keep_fd = mfd;
                return h;
            }
            const char *e = dlerror();
            snprintf(why, sizeof(why), "%s", e ? e : "dlopen failed");
        }
        close(mfd);
    }

    const char *dir = getenv("DAGGERPOOL_PLUGIN_TMPDIR");
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/daggerpool-%s-XXXXXX.so", dir, name);
    int fd = mkostemps(tmp, 3, O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: cannot be loaded: %s; and no private copy could be made in %s: %s; fix: set "
               "DAGGERPOOL_PLUGIN_TMPDIR to a writable directory that allows executables",
               path, why[0] ? why : "memfd_create failed", dir, strerror(errno));
        return NULL;
    }
    void *h = NULL;
    if (copy_fd(src, fd) == 0 && !name_taken(tmp))
        h = dlopen(tmp, RTLD_NOW | RTLD_LOCAL);
    const char *e = h ? NULL : dlerror();
    if (!h && !why[0])
        snprintf(why, sizeof(why), "%s", e ? e : "could not write a private copy");
    unlink(tmp);
    /* Kept open like the memfd: an isolated job's runner loads the pinned
     * version from this descriptor (the file has no name any more). */
    if (h)
        *keep_fd = fd;
    else
        close(fd);
    if (!h)
        seterr(err, errlen, DP_EPLUGIN,
               "%s: cannot be loaded: %s; fix: check that it was built for this system and "
               "that its libraries are installed (ldd '%s')",
               path, why, path);
    return h;
}

/* Copies a plugin struct of `have` bytes into one of `want` bytes: a smaller
 * one is zero-filled (zero means the old behaviour), a larger one is accepted
 * only if the bytes we do not know are zero (the kernel's
 * copy_struct_from_user rule). */
static bool copy_struct(void *dst, size_t want, const void *src, size_t have)
{
    memset(dst, 0, want);
    if (have > want) {
        const unsigned char *tail = (const unsigned char *)src + want;
        for (size_t i = 0; i < have - want; i++)
            if (tail[i])
                return false;
        have = want;
    }
    memcpy(dst, src, have);
    return true;
}

static void version_free(pversion_t *v)
{
    free(v->types);
    free(v->type_names);
    free(v->path);
    free(v);
}

/* Calls fini (if init ran), unloads the code and frees v. Never under lock:
 * fini is plugin code. */
static void version_unload(pversion_t *v)
{
    if (v->inited && v->desc.fini)
        v->desc.fini();
    if (v->handle)
        dlclose(v->handle);
    if (v->fd >= 0)
        close(v->fd);
    version_free(v);
}

static int refuse(pversion_t *v, int code)
{
    version_unload(v);
    return code;
}

/* Looks for an entry symbol of another major, to say so instead of "not a
 * plugin". Returns the major or -1. */
static int other_major(void *handle)
{
    char sym[64];
    for (int m = 0; m < 100; m++) {
        if (m == DP_PLUGIN_ABI_MAJOR)
            continue;
        snprintf(sym, sizeof(sym), "dp_plugin_entry_v%d", m);
        if (dlsym(handle, sym))
            return m;
    }
    return -1;
}

/*
 * Loads the file at path as plugin `name`: a private copy, the entry point,
 * every check, then init. Registers nothing. On success *out is a version
 * with generation 0 and no entry; on failure err names the file, the reason
 * and the fix. Caller holds load_lock.
 */
static int load_version(dp_plugins_t *pl, const char *name, const char *path, pversion_t **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return seterr(err, errlen, errno == ENOENT ? DP_ENOTFOUND : DP_EPLUGIN,
                      "%s: %s (plugin '%s'); fix: check the path, or build and install the "
                      "plugin there",
                      path, strerror(errno), name);
    if (!S_ISREG(st.st_mode))
        return seterr(err, errlen, DP_EPLUGIN,
                      "%s: not a regular file (plugin '%s'); fix: point to the plugin's .so file",
                      path, name);

    pthread_mutex_lock(&pl->lock);
    bool insecure_ok = pl->allow_insecure;
    pthread_mutex_unlock(&pl->lock);
    if (!insecure_ok) {
        int rc = check_secure(path, err, errlen);
        if (rc != DP_OK)
            return rc;
    }

    /* O_NONBLOCK: a FIFO put at path since the stat above cannot block
     * the open; only a regular file goes on. */
    int src = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (src < 0)
        return seterr(err, errlen, DP_EPLUGIN, "%s: cannot open: %s (plugin '%s')", path,
                      strerror(errno), name);
    if (fstat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(src);
        return seterr(err, errlen, DP_EPLUGIN,
                      "%s: not a regular file (plugin '%s'); fix: point to the plugin's .so file", path, name);
    }
    int rc = check_elf(src, path, err, errlen);
    if (rc != DP_OK) {
        close(src);
        return rc;
    }

    pversion_t *v = calloc(1, sizeof(*v));
    if (!v || !(v->path = strdup(path))) {
        free(v);
        close(src);
        return seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    v->fd = -1;
    v->handle = open_private_copy(src, path, name, &v->fd, err, errlen);
    close(src);
    if (!v->handle)
        return refuse(v, DP_EPLUGIN);
    v->loaded_at_ms = wall_ms();

    dp_plugin_entry_fn entry;
    void *sym = dlsym(v->handle, DP_PLUGIN_ENTRY_NAME);
    memcpy(&entry, &sym, sizeof(entry)); /* object to function pointer, as POSIX allows */
    if (!entry) {
        int m = other_major(v->handle);
        if (m >= 0)
            seterr(err, errlen, DP_EPLUGIN,
                   "%s: built for plugin ABI %d (it exports dp_plugin_entry_v%d), but this host "
                   "speaks ABI %d (dp_plugin_entry_v%d); fix: rebuild the plugin against this "
                   "host's <daggerpool/plugin.h>, or use a daggerpool of major %d",
                   path, m, m, DP_PLUGIN_ABI_MAJOR, DP_PLUGIN_ABI_MAJOR, m);
        else
            seterr(err, errlen, DP_EPLUGIN,
                   "%s: not a daggerpool plugin: it does not export %s; fix: define it with "
                   "DP_PLUGIN_EXPORT (see <daggerpool/plugin.h>) and build with dp_add_plugin()",
                   path, DP_PLUGIN_ENTRY_NAME);
        return refuse(v, DP_EPLUGIN);
    }

    const dp_plugin_desc *d = entry(dp__plugins_host_api());
    if (!d) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: the plugin refused this host (host ABI %d.%d, daggerpool %s): its entry "
               "point returned NULL; fix: use a newer daggerpool, or a plugin built for this one",
               path, DP_PLUGIN_ABI_MAJOR, DP_PLUGIN_ABI_MINOR, DP_VERSION_STRING);
        return refuse(v, DP_EPLUGIN);
    }
    if (d->struct_size < DESC_V1_0_SIZE) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: its dp_plugin_desc is %u bytes, smaller than any ABI %d header makes it "
               "(%zu); fix: set .struct_size = sizeof(dp_plugin_desc) and rebuild",
               path, (unsigned)d->struct_size, DP_PLUGIN_ABI_MAJOR, (size_t)DESC_V1_0_SIZE);
        return refuse(v, DP_EPLUGIN);
    }
    /* The major and minor come first so that an incompatible plugin gets the
     * version message, not a layout one. */
    if (d->abi_major != DP_PLUGIN_ABI_MAJOR) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: built for plugin ABI %u.%u, but this host speaks ABI %d.%d (the major must "
               "match); fix: rebuild the plugin against this host's <daggerpool/plugin.h>",
               path, (unsigned)d->abi_major, (unsigned)d->abi_minor, DP_PLUGIN_ABI_MAJOR,
               DP_PLUGIN_ABI_MINOR);
        return refuse(v, DP_EPLUGIN);
    }
    if (d->abi_minor > DP_PLUGIN_ABI_MINOR) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: built for plugin ABI %u.%u, newer than this host's %d.%d; fix: upgrade "
               "daggerpool to one that speaks ABI %u.%u or later, or rebuild the plugin against "
               "this host's <daggerpool/plugin.h>",
               path, (unsigned)d->abi_major, (unsigned)d->abi_minor, DP_PLUGIN_ABI_MAJOR,
               DP_PLUGIN_ABI_MINOR, (unsigned)d->abi_major, (unsigned)d->abi_minor);
        return refuse(v, DP_EPLUGIN);
    }
    if (!copy_struct(&v->desc, sizeof(v->desc), d, d->struct_size)) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: its dp_plugin_desc (%u bytes) has fields this host does not know (it "
               "knows %zu bytes) set; fix: rebuild the plugin against this host's header",
               path, (unsigned)d->struct_size, sizeof(v->desc));
        return refuse(v, DP_EPLUGIN);
    }
    const dp_plugin_desc *desc = &v->desc;
    if (!valid_name(desc->name)) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: its plugin name '%s' is not valid; fix: use letters, digits, '_' and '-' "
               "in dp_plugin_desc.name",
               path, desc->name ? desc->name : "(null)");
        return refuse(v, DP_EPLUGIN);
    }
    if (strcmp(desc->name, name) != 0) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: the plugin calls itself '%s' but was loaded as '%s'; fix: rename the file "
               "to %s.so (or the workflow's plugins key to %s), or set dp_plugin_desc.name to "
               "\"%s\"",
               path, desc->name, name, desc->name, desc->name, name);
        return refuse(v, DP_EPLUGIN);
    }
    if (!desc->version || !*desc->version) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: plugin '%s' declares no version; fix: set dp_plugin_desc.version (e.g. "
               "\"1.0.0\")",
               path, name);
        return refuse(v, DP_EPLUGIN);
    }

    size_t n = 0;
    while (desc->job_types && n < MAX_TYPES && desc->job_types[n])
        n++;
    if (n == 0) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: plugin '%s' declares no job types; fix: list them in "
               "dp_plugin_desc.job_types, ending with NULL",
               path, name);
        return refuse(v, DP_EPLUGIN);
    }
    if (n == MAX_TYPES) {
        seterr(err, errlen, DP_EPLUGIN,
               "%s: plugin '%s' lists %d or more job types: is the job_types array "
               "NULL-terminated? fix: end it with NULL",
               path, name, MAX_TYPES);
        return refuse(v, DP_EPLUGIN);
    }
    v->types = calloc(n, sizeof(*v->types));
    v->type_names = calloc(n + 1, sizeof(*v->type_names));
    if (!v->types || !v->type_names) {
        seterr(err, errlen, DP_ENOMEM, "out of memory");
        return refuse(v, DP_ENOMEM);
    }
    for (size_t i = 0; i < n; i++) {
        const dp_job_type *t = desc->job_types[i];
        if (t->struct_size < TYPE_V1_0_SIZE || !copy_struct(&v->types[i].ops,
                                                            sizeof(v->types[i].ops), t,
                                                            t->struct_size)) {
            seterr(err, errlen, DP_EPLUGIN,
                   "%s: job type #%zu of plugin '%s' has struct_size %u (this host accepts "
                   "%zu to %zu, or larger with unknown fields zero); fix: set .struct_size = "
                   "sizeof(dp_job_type) and rebuild",
                   path, i + 1, name, (unsigned)t->struct_size, (size_t)TYPE_V1_0_SIZE,
                   sizeof(dp_job_type));
            return refuse(v, DP_EPLUGIN);
        }
        const dp_job_type *ops = &v->types[i].ops;
        if (!valid_name(ops->name)) {
            seterr(err, errlen, DP_EPLUGIN,
                   "%s: job type #%zu of plugin '%s' has the invalid name '%s'; fix: use "
                   "letters, digits, '_' and '-'",
                   path, i + 1, name, ops->name ? ops->name : "(null)");
            return refuse(v, DP_EPLUGIN);
        }
        if (!ops->run && !ops->check) {
            seterr(err, errlen, DP_EPLUGIN,
                   "%s: job type '%s.%s' has neither run nor check, so it could do nothing; "
                   "fix: give it a run function, a check function, or both",
                   path, name, ops->name);
            return refuse(v, DP_EPLUGIN);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(v->types[j].name, ops->name) == 0) {
                seterr(err, errlen, DP_EPLUGIN,
                       "%s: job type '%s.%s' is declared twice; fix: give each job type of "
                       "the plugin its own name",
                       path, name, ops->name);
                return refuse(v, DP_EPLUGIN);
            }
        }
        v->types[i].name = ops->name;
        v->type_names[i] = ops->name;
    }
    v->ntypes = n;

    if (desc->init) {
        char ierr[1024] = "";
        if (desc->init(ierr, sizeof(ierr)) != 0) {
            ierr[sizeof(ierr) - 1] = '\0';
            seterr(err, errlen, DP_EPLUGIN,
                   "%s: plugin '%s' %s failed to initialise: %s; fix: see the plugin's "
                   "message",
                   path, name, desc->version, ierr[0] ? ierr : "(no message)");
            return refuse(v, DP_EPLUGIN);
        }
        v->inited = true;
    }
    *out = v;
    return DP_OK;
}

/* Finds NAME.so on the search path. Caller holds load_lock. */
static int find_on_path(dp_plugins_t *pl, const char *name, char *path, size_t len, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < pl->npaths; i++) {
        snprintf(path, len, "%s/%s.so", pl->paths[i], name);
        /* A name that is there but cannot be followed (a symlink loop or a
         * dangling link) is the plugin meant: loading it says why. */
        struct stat st;
        if (access(path, F_OK) == 0 || lstat(path, &st) == 0)
            return DP_OK;
    }
    char dirs[1024] = "";
    size_t off = 0;
    for (size_t i = 0; i < pl->npaths && off < sizeof(dirs); i++)
        off += (size_t)snprintf(dirs + off, sizeof(dirs) - off, "%s%s", i ? ", " : "",
                                pl->paths[i]);
    return seterr(err, errlen, DP_ENOTFOUND,
                  "%s.so: plugin '%s' not found (searched: %s); fix: add the directory that "
                  "holds %s.so to plugin_path, --plugin-path or DAGGERPOOL_PLUGIN_PATH, or give "
                  "its path in the workflow's plugins group",
                  name, name, pl->npaths ? dirs : "no directories", name);
}

/* ---- load, reload ------------------------------------------------------- */

int dp_plugins_load(dp_plugins_t *pl, const char *name, const char *path, char *err,
                    size_t errlen)
{
    if (!pl || !name)
        return seterr(err, errlen, DP_EINVAL, "dp_plugins_load: no registry or name");
    if (!valid_name(name))
        return seterr(err, errlen, DP_EINVAL,
                      "'%s' is not a valid plugin name; fix: use letters, digits, '_' and '-'",
                      name);
    pthread_mutex_lock(&pl->load_lock);
    pthread_mutex_lock(&pl->lock);
    pentry_t *e = find_entry_locked(pl, name);
    pversion_t *cur = e ? e->current : NULL;
    int rc = DP_OK;
    if (cur && path && strcmp(path, cur->path) != 0)
        rc = seterr(err, errlen, DP_EPLUGIN,
                    "%s: plugin '%s' is already loaded from %s; fix: load each plugin name from "
                    "one file",
                    path, name, cur->path);
    pthread_mutex_unlock(&pl->lock);
    if (cur) {
        pthread_mutex_unlock(&pl->load_lock);
        return rc;
    }

    char found[PATH_MAX];
    if (!path) {
        rc = find_on_path(pl, name, found, sizeof(found), err, errlen);
        if (rc != DP_OK) {
            pthread_mutex_unlock(&pl->load_lock);
            return rc;
        }
        path = found;
    }
    pversion_t *v;
    rc = load_version(pl, name, path, &v, err, errlen);
    if (rc != DP_OK) {
        pthread_mutex_unlock(&pl->load_lock);
        return rc;
    }

    pthread_mutex_lock(&pl->lock);
    e = get_entry_locked(pl, name);
    const char *ver = intern_locked(pl, v->desc.version);
    if (!e || !ver) {
        pthread_mutex_unlock(&pl->lock);
        pthread_mutex_unlock(&pl->load_lock);
        version_unload(v);
        return seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    v->entry = e;
    v->version = ver;
    v->generation = 1;
    v->current = true;
    e->current = v;
    pthread_mutex_unlock(&pl->lock);
    pthread_mutex_unlock(&pl->load_lock);
    plog(pl, DP_LOG_DEBUG, NULL, name, "loaded plugin %s %s (ABI %u.%u) from %s", name, ver,
         (unsigned)v->desc.abi_major, (unsigned)v->desc.abi_minor, v->path);
    return DP_OK;
}

static const ptype_t *find_type(const pversion_t *v, const char *type)
{
    for (size_t i = 0; i < v->ntypes; i++)
        if (strcmp(v->types[i].name, type) == 0)
            return &v->types[i];
    return NULL;
}

int dp__plugins_reload_ex(dp_plugins_t *pl, const char *name, dp__reload_info_t *info,
                          char *err, size_t errlen)
{
    if (info)
        memset(info, 0, sizeof(*info));
    if (!pl || !name)
        return seterr(err, errlen, DP_EINVAL, "dp_plugins_reload: no registry or name");
    pthread_mutex_lock(&pl->load_lock);
    pthread_mutex_lock(&pl->lock);
    pentry_t *e = find_entry_locked(pl, name);
    if (!e || !e->current) {
        pthread_mutex_unlock(&pl->lock);
        pthread_mutex_unlock(&pl->load_lock);
        return seterr(err, errlen, DP_ENOTFOUND,
                      "plugin '%s' is not loaded, so it cannot be reloaded; fix: load it first",
                      name);
    }
    /* The path changes only under load_lock, which we hold, so it can be
     * read after dropping lock. */
    const char *path = e->current->path;
    if (info)
        info->old_version = e->current->version;
    pthread_mutex_unlock(&pl->lock);

    pversion_t *nv;
    int rc = load_version(pl, name, path, &nv, err, errlen);
    if (rc != DP_OK) {
        pthread_mutex_unlock(&pl->load_lock);
        return rc;
    }

    pthread_mutex_lock(&pl->lock);
    /* Every type that jobs of live graphs use must still be there, with the
     * callbacks their specs call. The counts change under lock (a graph may
     * be freed meanwhile), and no plugin code runs here. */
    for (size_t i = 0; i < e->nused; i++) {
        const used_type_t *u = &e->used[i];
        if (!u->jobs)
            continue;
        const ptype_t *t = find_type(nv, u->name);
        const char *missing = !t ? "the job type" : (u->run && !t->ops.run) ? "run"
                                                  : (u->check && !t->ops.check) ? "check"
                                                                                : NULL;
        if (missing) {
            seterr(err, errlen, DP_EPLUGIN,
                   "%s: reload refused: the new version %s of plugin '%s' lacks %s of '%s.%s', "
                   "which jobs use (%u of them); the old version keeps serving; fix: restore it "
                   "in the plugin, or remove those jobs",
                   path, nv->desc.version, name, missing, name, u->name, u->jobs);
            pthread_mutex_unlock(&pl->lock);
            pthread_mutex_unlock(&pl->load_lock);
            version_unload(nv);
            return DP_EPLUGIN;
        }
    }
    const char *ver = intern_locked(pl, nv->desc.version);
    if (!ver) {
        pthread_mutex_unlock(&pl->lock);
        pthread_mutex_unlock(&pl->load_lock);
        version_unload(nv);
        return seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    pversion_t *old = e->current;
    nv->entry = e;
    nv->version = ver;
    nv->generation = old->generation + 1;
    nv->current = true;
    e->current = nv;
    old->current = false;
    unsigned in_flight = old->jobs;
    const char *old_ver = old->version;
    unsigned old_gen = old->generation;
    if (in_flight) {
        old->next = e->draining;
        e->draining = old;
    }
    if (info) {
        info->old_version = old_ver;
        info->new_version = ver;
        info->old_generation = old_gen;
        info->new_generation = nv->generation;
        info->in_flight = in_flight;
        info->swapped_ns = mono_ns();
    }
    pthread_mutex_unlock(&pl->lock);
    pthread_mutex_unlock(&pl->load_lock);
    if (!in_flight)
        version_unload(old);
    plog(pl, DP_LOG_INFO, NULL, name,
         "reloaded plugin %s: %s (generation %u) -> %s (generation %u); %u job(s) still in "
         "flight finish on the old version",
         name, old_ver, old_gen, ver, nv->generation, in_flight);
    return DP_OK;
}

int dp_plugins_reload(dp_plugins_t *pl, const char *name, char *err, size_t errlen)
{
    return dp__plugins_reload_ex(pl, name, NULL, err, errlen);
}

void dp__plugins_log(dp_plugins_t *pl, dp_log_level_t level, const char *plugin,
                     const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    plog(pl, level, NULL, plugin, "%s", buf);
}

int dp__plugins_loaded_path(dp_plugins_t *pl, const char *name, char *buf, size_t len)
{
    if (!pl || !name)
        return DP_EINVAL;
    pthread_mutex_lock(&pl->lock);
    pentry_t *e = find_entry_locked(pl, name);
    int rc = DP_ENOTFOUND;
    if (e && e->current) {
        snprintf(buf, len, "%s", e->current->path);
        rc = DP_OK;
    }
    pthread_mutex_unlock(&pl->lock);
    return rc;
}

/* ---- pins --------------------------------------------------------------- */

static pversion_t *pin(dp_plugins_t *pl, pentry_t *e)
{
    pthread_mutex_lock(&pl->lock);
    pversion_t *v = e->current;
    if (v)
        v->jobs++;
    pthread_mutex_unlock(&pl->lock);
    return v;
}

/* Drops a pin; unloads the version if it was the last pin of an old one.
 * This may run fini on a worker thread: plugins are told fini runs "after
 * the last job using this copy has ended", on whatever thread that was. */
static void unpin(dp_plugins_t *pl, pversion_t *v)
{
    pthread_mutex_lock(&pl->lock);
    bool unload = --v->jobs == 0 && !v->current;
    if (unload) {
        pversion_t **pp = &v->entry->draining;
        while (*pp && *pp != v)
            pp = &(*pp)->next;
        if (*pp)
            *pp = v->next;
    }
    pthread_mutex_unlock(&pl->lock);
    if (unload) {
        plog(pl, DP_LOG_DEBUG, NULL, v->entry->name,
             "unloading plugin %s %s (generation %u): its last job ended", v->entry->name,
             v->version, v->generation);
        version_unload(v);
    }
}

/* ---- the host API ------------------------------------------------------- */

static void host_vlog(dp_plugin_ctx *ctx, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void host_vlog(dp_plugin_ctx *ctx, int level, const char *fmt, va_list ap)
{
    if (!ctx || !fmt)
        return;
    if (level < DP_LOG_ERROR)
        level = DP_LOG_ERROR;
    if (level > DP_LOG_DEBUG)
        level = DP_LOG_DEBUG;
    char buf[1024];
    char *msg = buf;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    if (n >= (int)sizeof(buf)) {
        msg = malloc((size_t)n + 1);
        if (msg)
            vsnprintf(msg, (size_t)n + 1, fmt, ap2);
        else
            msg = buf; /* truncated beats nothing */
    }
    va_end(ap2);
    if (ctx->job)
        dp_job_log(ctx->job, (dp_log_level_t)level, "%s", msg);
    else
        plog(ctx->pl, (dp_log_level_t)level, ctx->job_name, ctx->ver->entry->name, "%s", msg);
    if (msg != buf)
        free(msg);
}

static void host_log(dp_plugin_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void host_log(dp_plugin_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_vlog(ctx, level, fmt, ap);
    va_end(ap);
}

static void ctx_set_error(dp_plugin_ctx *ctx, unsigned flags, char *msg)
{
    free(ctx->error);
    ctx->error = msg;
    ctx->error_flags = flags;
}

static void host_set_error(dp_plugin_ctx *ctx, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void host_set_error(dp_plugin_ctx *ctx, unsigned flags, const char *fmt, ...)
{
    if (!ctx || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    /* A huge message is cut (with its full length noted), as it is for an
     * isolated job. */
    ctx_set_error(ctx, flags,
                  msg ? dp__isolate_cap_message(msg) : strdup("(out of memory formatting the error)"));
}

static const char *host_job_name(dp_plugin_ctx *ctx)
{
    return ctx ? ctx->job_name : NULL;
}

static unsigned host_attempt(dp_plugin_ctx *ctx)
{
    return ctx && ctx->job ? dp_job_attempt(ctx->job) : 0;
}

static int host_is_cancelled(dp_plugin_ctx *ctx)
{
    return ctx && ctx->job ? dp_ctx_done(dp_job_ctx(ctx->job)) : 0;
}

static int64_t host_remaining_ms(dp_plugin_ctx *ctx)
{
    return ctx && ctx->job ? dp_ctx_remaining_ms(dp_job_ctx(ctx->job)) : -1;
}

static int host_sleep_ms(dp_plugin_ctx *ctx, uint64_t ms)
{
    if (ctx && ctx->job)
        return dp_ctx_sleep(dp_job_ctx(ctx->job), ms) == 0 ? 0 : -1;
    /* No job (params being checked at add time): nothing can cancel. */
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

static int host_cancel_fd(dp_plugin_ctx *ctx)
{
    return ctx && ctx->job ? dp_ctx_fd(dp_job_ctx(ctx->job)) : -1;
}

static int host_params_check_known(dp_plugin_ctx *ctx, const dp_params *p,
                                   const char *const *known)
{
    char buf[1024];
    if (dp__params_check_known(p, known, buf, sizeof(buf)) == 0)
        return 0;
    if (ctx)
        ctx_set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, strdup(buf));
    return -1;
}

static dp_store_t *ctx_store(dp_plugin_ctx *ctx)
{
    dp_store_t *s = ctx && ctx->job ? dp_job_store(ctx->job) : NULL;
    if (!s && ctx) {
        pthread_mutex_lock(&ctx->pl->lock);
        s = ctx->pl->store;
        pthread_mutex_unlock(&ctx->pl->lock);
    }
    return s;
}

static int host_store_set(dp_plugin_ctx *ctx, const char *key, const void *data, size_t len)
{
    dp_store_t *s = ctx_store(ctx);
    if (!s || !key || (len && !data))
        return -1;
    return dp_store_set_copy(s, key, data, len) == DP_OK ? 0 : -1;
}

struct get_args {
    void *buf;
    size_t cap, len;
};

static void store_get_cb(const void *value, size_t len, void *arg)
{
    struct get_args *a = arg;
    a->len = len;
    if (a->buf && a->cap)
        memcpy(a->buf, value, len < a->cap ? len : a->cap);
}

static int host_store_get(dp_plugin_ctx *ctx, const char *key, void *buf, size_t cap,
                          size_t *len)
{
    dp_store_t *s = ctx_store(ctx);
    if (!s || !key)
        return -1;
    struct get_args a = {buf, cap, 0};
    int rc = dp_store_with(s, key, store_get_cb, &a);
    if (rc == DP_ENOTFOUND)
        return 1;
    if (rc != DP_OK)
        return -1;
    if (len)
        *len = a.len;
    return 0;
}

static int host_store_delete(dp_plugin_ctx *ctx, const char *key)
{
    dp_store_t *s = ctx_store(ctx);
    if (!s || !key)
        return -1;
    int rc = dp_store_delete(s, key);
    return rc == DP_OK ? 0 : rc == DP_ENOTFOUND ? 1 : -1;
}

static const dp_host_api host_api = {
    .struct_size = sizeof(dp_host_api),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .host_version = DP_VERSION_STRING,
    .log = host_log,
    .set_error = host_set_error,
    .job_name = host_job_name,
    .attempt = host_attempt,
    .is_cancelled = host_is_cancelled,
    .remaining_ms = host_remaining_ms,
    .sleep_ms = host_sleep_ms,
    .cancel_fd = host_cancel_fd,
    DP__HOST_API_PARAM_GETTERS,
    .params_check_known = host_params_check_known,
    .store_set = host_store_set,
    .store_get = host_store_get,
    .store_delete = host_store_delete,
};

const dp_host_api *dp__plugins_host_api(void)
{
    return &host_api;
}

/* ---- the job adapter ---------------------------------------------------- */

/* The message of a failed plugin call: set_error's, else a failed param
 * getter's, else a generic one. *permanent says whether to retry. */
static const char *call_error(const dp_plugin_ctx *ctx, const dp_params_t *params,
                              bool *permanent)
{
    if (ctx->error) {
        *permanent = (ctx->error_flags & DP_PLUGIN_ERROR_PERMANENT) != 0;
        return ctx->error;
    }
    const char *perr = dp__params_error(params);
    if (perr) {
        *permanent = true; /* params do not change between attempts */
        return perr;
    }
    *permanent = false;
    return NULL;
}

/* Logs a line of an isolated job's child: as the job during an attempt,
 * else (add-time params check) as the registry logs. */
static void iso_log(void *user, dp_job_t *job, const char *job_name, int level, const char *msg)
{
    pjob_t *pj = user;
    if (level < DP_LOG_ERROR)
        level = DP_LOG_ERROR;
    if (level > DP_LOG_DEBUG)
        level = DP_LOG_DEBUG;
    if (job)
        dp_job_log(job, (dp_log_level_t)level, "%s", msg);
    else
        plog(pj->pl, (dp_log_level_t)level, job_name, pj->entry->name, "%s", msg);
}

/* Starts pj's instance on version v in a child process (create runs there);
 * job is NULL for the add-time params check. See dp__isolate_start. */
static int isolate_start(pjob_t *pj, pversion_t *v, dp_job_t *job, const char *job_name,
                         dp_isolate_t **iso, char **msg, bool *perm)
{
    pthread_mutex_lock(&pj->pl->lock);
    dp_store_t *store = pj->pl->store;
    pthread_mutex_unlock(&pj->pl->lock);
    dp_isolate_spec_t spec = {
        .plugin = pj->entry->name,
        .path = v->path,
        .fd = v->fd,
        .type = pj->type,
        .job_name = job_name,
        .params = pj->params,
        .limits = pj->limits,
        .log = iso_log,
        .log_user = pj,
        .store = store,
    };
    return dp__isolate_start(&spec, job, iso, msg, perm);
}

/* Ends the attempt's instance: the type's end hook (ABI 1.1) when the
 * engine ends the attempt (job given), then destroy, then unpin. */
static void instance_end(pjob_t *pj, dp_job_t *job)
{
    if (!pj->live)
        return;
    /* Cut short: the attempt's context is done (run cancelled or timed
     * out, or the job's own timeout); a readiness wait that gave up is not. */
    bool cut = job && dp_ctx_done(dp_job_ctx(job));
    if (pj->iso) {
        dp__isolate_end(pj->iso, job, !job ? DP_ISO_END_QUIET : cut ? DP_ISO_END_CUT : DP_ISO_END_DONE);
        pj->iso = NULL;
    } else {
        if (job && pj->t->ops.end) {
            dp_plugin_ctx ctx = {.pl = pj->pl, .ver = pj->ver, .job = job,
                                 .job_name = dp_job_name(job)};
            pj->t->ops.end(&ctx, pj->state);
            free(ctx.error); /* set_error is ignored in end */
        }
        if (pj->t->ops.destroy)
            pj->t->ops.destroy(pj->state);
    }
    unpin(pj->pl, pj->ver);
    pj->live = false;
    pj->state = NULL;
    pj->ver = NULL;
    pj->t = NULL;
}

/* Starts the attempt's instance on the current version: pin, create. */
static dp_outcome_t instance_start(pjob_t *pj, dp_job_t *job)
{
    pversion_t *v = pin(pj->pl, pj->entry);
    if (!v)
        return dp_job_fail(job, true, "%s: plugin '%s' is not loaded", pj->full_type,
                           pj->entry->name);
    const ptype_t *t = find_type(v, pj->type);
    if (!t) {
        unpin(pj->pl, v);
        return dp_job_fail(job, true, "%s: plugin '%s' %s has no job type '%s'", pj->full_type,
                           pj->entry->name, v->version, pj->type);
    }
    dp_job_set_version(job, v->version);
    void *state = NULL;
    if (pj->isolation == DP_ISOLATION_PROCESS) {
        char *msg = NULL;
        bool perm = false;
        if (isolate_start(pj, v, job, dp_job_name(job), &pj->iso, &msg, &perm) != 0) {
            dp_outcome_t o = dp_job_fail(job, perm, "%s: %s", pj->full_type,
                                         msg ? msg : "create failed without a message");
            free(msg);
            unpin(pj->pl, v);
            return o;
        }
    } else if (t->ops.create) {
        dp_plugin_ctx ctx = {.pl = pj->pl, .ver = v, .job = job, .job_name = dp_job_name(job)};
        dp__params_clear_error(pj->params);
        if (t->ops.create(&ctx, pj->params, &state) != 0) {
            bool perm;
            const char *msg = call_error(&ctx, pj->params, &perm);
            dp_outcome_t o = dp_job_fail(job, perm, "%s: %s", pj->full_type,
                                         msg ? msg : "create failed without a message");
            free(ctx.error);
            unpin(pj->pl, v);
            return o;
        }
        free(ctx.error);
    }
    pj->ver = v;
    pj->t = t;
    pj->state = state;
    pj->attempt = dp_job_attempt(job);
    pj->live = true;
    return DP_READY;
}

typedef dp_plugin_result (*plugin_call_fn)(dp_plugin_ctx *ctx, void *state);

static dp_outcome_t instance_call(pjob_t *pj, dp_job_t *job, plugin_call_fn fn, const char *what)
{
    if (!fn)
        return dp_job_fail(job, true, "%s: plugin '%s' %s has no %s for this type",
                           pj->full_type, pj->entry->name, pj->ver->version, what);
    dp_plugin_ctx ctx = {.pl = pj->pl, .ver = pj->ver, .job = job, .job_name = dp_job_name(job)};
    dp__params_clear_error(pj->params);
    dp_plugin_result r;
    if (pj->iso) {
        char *m = NULL;
        unsigned fl = 0;
        r = dp__isolate_call(pj->iso, job, strcmp(what, "check") == 0, &m, &fl);
        if (m)
            ctx_set_error(&ctx, fl, m);
    } else {
        r = fn(&ctx, pj->state);
    }
    dp_outcome_t o;
    switch (r) {
    case DP_PLUGIN_READY:
        o = DP_READY;
        break;
    case DP_PLUGIN_NOT_READY:
        o = DP_NOT_READY;
        break;
    case DP_PLUGIN_ERROR: {
        bool perm;
        const char *msg = call_error(&ctx, pj->params, &perm);
        o = msg ? dp_job_fail(job, perm, "%s", msg)
                : dp_job_fail(job, false, "%s: %s failed without a message", pj->full_type, what);
        break;
    }
    default:
        o = dp_job_fail(job, true, "%s: %s returned %d, which is not a dp_plugin_result",
                        pj->full_type, what, (int)r);
        break;
    }
    free(ctx.error);
    return o;
}

static dp_outcome_t pjob_run(dp_job_t *job, void *user)
{
    pjob_t *pj = user;
    /* run opens every attempt; an instance still live here means the engine
     * did not call attempt_end: end it now rather than leak it. */
    instance_end(pj, NULL);
    dp_outcome_t o = instance_start(pj, job);
    if (o != DP_READY)
        return o;
    return instance_call(pj, job, pj->t->ops.run, "run");
}

static dp_outcome_t pjob_check(dp_job_t *job, void *user)
{
    pjob_t *pj = user;
    if (pj->live && pj->attempt != dp_job_attempt(job))
        instance_end(pj, NULL);
    if (!pj->live) {
        dp_outcome_t o = instance_start(pj, job);
        if (o != DP_READY)
            return o;
    }
    return instance_call(pj, job, pj->t->ops.check, "check");
}

static void pjob_attempt_end(dp_job_t *job, void *user)
{
    instance_end(user, job);
}

static void pjob_free(void *user)
{
    pjob_t *pj = user;
    if (!pj)
        return;
    instance_end(pj, NULL);
    if (pj->counted)
        unnote_used(pj);
    if (!pj->params_lent)
        dp_params_free(pj->params);
    dp_plugins_t *pl = pj->pl;
    free(pj);
    registry_unref(pl);
}

/* Counts n more jobs of `type` with these callbacks. Caller holds load_lock
 * (so that no reload swaps versions between the type check and this) and
 * lock. */
static int note_used_locked(pentry_t *e, const char *type, unsigned n, bool run, bool check)
{
    int rc = DP_OK;
    size_t i;
    for (i = 0; i < e->nused; i++)
        if (strcmp(e->used[i].name, type) == 0)
            break;
    if (i == e->nused) {
        used_type_t *u = realloc(e->used, (e->nused + 1) * sizeof(*u));
        char *name = strdup(type);
        if (u)
            e->used = u;
        if (!u || !name) {
            free(name);
            rc = DP_ENOMEM;
            goto out;
        }
        e->used[i] = (used_type_t){.name = name};
        e->nused++;
    }
    e->used[i].jobs += n;
    e->used[i].run += run ? n : 0;
    e->used[i].check += check ? n : 0;
out:
    return rc;
}

/* Drops n counts of note_used_locked. Caller holds lock. */
static void unnote_used_locked(pentry_t *e, const char *type, unsigned n, bool run, bool check)
{
    for (size_t i = 0; i < e->nused; i++) {
        used_type_t *u = &e->used[i];
        if (strcmp(u->name, type) == 0) {
            unsigned k = n < u->jobs ? n : u->jobs;
            u->jobs -= k;
            u->run -= run ? (k < u->run ? k : u->run) : 0;
            u->check -= check ? (k < u->check ? k : u->check) : 0;
            break;
        }
    }
}

/* Drops the count note_used took for pj (its graph is freeing it). */
static void unnote_used(pjob_t *pj)
{
    dp_plugins_t *pl = pj->pl;
    pentry_t *e = pj->entry;
    pthread_mutex_lock(&pl->lock);
    for (size_t i = 0; i < e->nused; i++) {
        used_type_t *u = &e->used[i];
        if (strcmp(u->name, pj->type) == 0 && u->jobs) {
            u->jobs--;
            u->run -= pj->has_run && u->run;
            u->check -= pj->has_check && u->check;
            break;
        }
    }
    pthread_mutex_unlock(&pl->lock);
}

static void list_types(const pversion_t *v, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < v->ntypes && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", v->types[i].name);
}

/* The checks of a job's spec that need no plugin. */
static int precheck(const dp_job_spec_t *spec, const char *jname, const char *type, const char **dot,
                    char *err, size_t errlen)
{
    *dot = strchr(type, '.');
    if (!*dot || *dot == type || !(*dot)[1])
        return seterr(err, errlen, DP_EINVAL,
                      "job '%s': type '%s' is not of the form PLUGIN.TYPE; fix: name the plugin "
                      "and its job type, e.g. core.sleep or shell.command",
                      jname, type);
    if (spec->isolation != DP_ISOLATION_NONE && spec->isolation != DP_ISOLATION_PROCESS)
        return seterr(err, errlen, DP_EINVAL,
                      "job '%s': isolation %d is not a dp_isolation_t; fix: use "
                      "DP_ISOLATION_NONE or DP_ISOLATION_PROCESS",
                      jname, (int)spec->isolation);
    if (spec->isolation != DP_ISOLATION_PROCESS &&
        (spec->limits.cpu_ms || spec->limits.memory_bytes || spec->limits.open_files))
        return seterr(err, errlen, DP_EINVAL,
                      "job '%s': limits apply only to a job isolated in its own process; fix: "
                      "set isolation = \"process\" (DP_ISOLATION_PROCESS), or drop the limits",
                      jname);
    return DP_OK;
}

/* A job type resolved for adding jobs: its plugin loaded, the current
 * version pinned, the type found, its names interned. On success the caller
 * holds load_lock (so that no reload swaps versions until it is released)
 * and a pin on *v. */
typedef struct resolved {
    pentry_t *e;
    pversion_t *v;
    const ptype_t *t;
    const char *itype, *ifull; /* interned TYPE and PLUGIN.TYPE */
} resolved_t;

static int resolve_type(dp_plugins_t *pl, const char *jname, const char *type, const char *dot,
                        resolved_t *r, char *err, size_t errlen)
{
    char *plugin = strndup(type, (size_t)(dot - type));
    if (!plugin)
        return seterr(err, errlen, DP_ENOMEM, "out of memory");
    char lerr[2048];
    int rc = dp_plugins_load(pl, plugin, NULL, lerr, sizeof(lerr));
    if (rc != DP_OK) {
        seterr(err, errlen, rc, "job '%s' (type '%s'): %s", jname, type, lerr);
        free(plugin);
        return rc;
    }
    pthread_mutex_lock(&pl->load_lock);
    pthread_mutex_lock(&pl->lock);
    r->e = find_entry_locked(pl, plugin);
    pthread_mutex_unlock(&pl->lock);
    free(plugin);
    r->v = pin(pl, r->e);
    r->t = r->v ? find_type(r->v, dot + 1) : NULL;
    if (!r->t) {
        char types[1024] = "";
        if (r->v)
            list_types(r->v, types, sizeof(types));
        seterr(err, errlen, DP_ENOTFOUND,
               "job '%s' (type '%s'): plugin '%s' has no job type '%s' (it has: %s); fix: use "
               "one of its types, or another plugin",
               jname, type, r->e->name, dot + 1, types);
        if (r->v)
            unpin(pl, r->v);
        pthread_mutex_unlock(&pl->load_lock);
        return DP_ENOTFOUND;
    }
    pthread_mutex_lock(&pl->lock);
    r->itype = intern_locked(pl, dot + 1);
    r->ifull = intern_locked(pl, type);
    pthread_mutex_unlock(&pl->lock);
    if (!r->itype || !r->ifull) {
        unpin(pl, r->v);
        pthread_mutex_unlock(&pl->load_lock);
        return seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    return DP_OK;
}

/* Adds one job of resolved type r (caller holds load_lock and a pin on
 * r->v). params are copied, or lent when lend. counted: the caller already
 * counted this job in note_used and in the registry's references (a job
 * refused here gives both back). */
static int add_resolved(dp_plugins_t *pl, dp_graph_t *g, const dp_job_spec_t *spec, const char *jname,
                        const char *type, const resolved_t *r, const dp_params_t *params, bool lend,
                        bool counted, char *err, size_t errlen)
{
    const ptype_t *t = r->t;
    bool has_run = t->ops.run != NULL, has_check = t->ops.check != NULL;
    pjob_t *pj = calloc(1, sizeof(*pj));
    if (pj) {
        pj->pl = pl;
        pj->entry = r->e;
        pj->type = r->itype;
        pj->full_type = r->ifull;
        pj->isolation = spec->isolation;
        pj->limits = spec->limits;
        pj->has_run = has_run;
        pj->has_check = has_check;
        pj->counted = counted;
        pj->params_lent = lend && params;
        /* A lent params object is only read through const getters, but
         * their diagnostics are recorded in it: one per job, as a copy. */
        pj->params = lend && params ? (dp_params_t *)(uintptr_t)params
                                    : params ? dp_params_clone(params) : dp_params_new();
    }
    if (!pj || !pj->params) {
        if (pj && counted) {
            pj->params_lent = true; /* nothing to free */
            pjob_free(pj);          /* gives back the count and the reference */
        } else {
            free(pj);
        }
        return seterr(err, errlen, DP_ENOMEM, "out of memory");
    }

    /* Check the params now, on this version: a bad param is refused before
     * anything runs. */
    int rc;
    if (pj->isolation == DP_ISOLATION_PROCESS) {
        /* In a child too: a create that crashes must not take the host. */
        dp_isolate_t *iso = NULL;
        char *msg = NULL;
        bool perm;
        if (isolate_start(pj, r->v, NULL, jname, &iso, &msg, &perm) != 0) {
            rc = seterr(err, errlen, DP_EINVAL, "job '%s' (type '%s'): %s", jname, type,
                        msg ? msg : "params refused (the plugin gave no message)");
            free(msg);
            goto refused;
        }
        dp__isolate_end(iso, NULL, DP_ISO_END_QUIET);
    } else if (t->ops.create) {
        dp_plugin_ctx ctx = {.pl = pl, .ver = r->v, .job = NULL, .job_name = jname};
        void *state = NULL;
        if (lend)
            dp__params_clear_error(pj->params);
        if (t->ops.create(&ctx, pj->params, &state) != 0) {
            bool perm;
            const char *msg = call_error(&ctx, pj->params, &perm);
            rc = seterr(err, errlen, DP_EINVAL, "job '%s' (type '%s'): %s", jname, type,
                        msg ? msg : "params refused (the plugin gave no message)");
            free(ctx.error);
            goto refused;
        }
        free(ctx.error);
        if (t->ops.destroy)
            t->ops.destroy(state);
    }
    if (!counted) {
        pthread_mutex_lock(&pl->lock);
        rc = note_used_locked(r->e, pj->type, 1, has_run, has_check);
        if (rc == DP_OK)
            pl->refs++;
        pthread_mutex_unlock(&pl->lock);
        if (rc != DP_OK) {
            if (!pj->params_lent)
                dp_params_free(pj->params);
            free(pj);
            return seterr(err, errlen, rc, "out of memory");
        }
        pj->counted = true;
    }

    dp_job_spec_t s = *spec;
    s.run = has_run ? pjob_run : NULL;
    s.check = has_check ? pjob_check : NULL;
    s.user = pj;
    s.user_free = pjob_free;
    s.plugin = r->e->name;
    s.attempt_end = pjob_attempt_end;
    rc = dp_graph_add_job(g, &s, err, errlen);
    if (rc != DP_OK) {
        /* The graph did not take the job (nor call user_free). */
        pjob_free(pj);
        return rc;
    }
    return DP_OK;

refused:
    if (counted) {
        pjob_free(pj);
    } else {
        if (!pj->params_lent)
            dp_params_free(pj->params);
        free(pj);
    }
    return rc;
}

int dp_plugins_add_job(dp_plugins_t *pl, dp_graph_t *g, const dp_job_spec_t *spec,
                       const char *type, const dp_params_t *params, char *err, size_t errlen)
{
    if (!pl || !g || !spec || !type)
        return seterr(err, errlen, DP_EINVAL, "dp_plugins_add_job: missing argument");
    const char *jname = spec->name ? spec->name : "(unnamed)";
    const char *dot;
    int rc = precheck(spec, jname, type, &dot, err, errlen);
    if (rc != DP_OK)
        return rc;
    resolved_t r;
    if ((rc = resolve_type(pl, jname, type, dot, &r, err, errlen)) != DP_OK)
        return rc;
    rc = add_resolved(pl, g, spec, jname, type, &r, params, false, false, err, errlen);
    unpin(pl, r.v);
    pthread_mutex_unlock(&pl->load_lock);
    return rc;
}

/* ---- adding many jobs ---------------------------------------------------- */

/* Jobs counted ahead in note_used and the references per take of lock. */
#define BATCH_COUNT 4096

struct dp__plugin_batch {
    dp_plugins_t *pl;
    char *type;        /* the resolved type as the caller wrote it; NULL: none */
    resolved_t r;      /* valid while type: load_lock held, r.v pinned */
    unsigned ahead;    /* jobs counted but not added yet */
};

dp__plugin_batch_t *dp__plugins_batch_new(dp_plugins_t *pl)
{
    dp__plugin_batch_t *b = pl ? calloc(1, sizeof(*b)) : NULL;
    if (b)
        b->pl = pl;
    return b;
}

/* Gives back what was counted ahead, the pin and load_lock. */
static void batch_release(dp__plugin_batch_t *b)
{
    if (!b->type)
        return;
    dp_plugins_t *pl = b->pl;
    if (b->ahead) {
        pthread_mutex_lock(&pl->lock);
        unnote_used_locked(b->r.e, b->r.itype, b->ahead, b->r.t->ops.run != NULL,
                           b->r.t->ops.check != NULL);
        pl->refs -= b->ahead; /* the owner's reference remains */
        pthread_mutex_unlock(&pl->lock);
        b->ahead = 0;
    }
    unpin(pl, b->r.v);
    pthread_mutex_unlock(&pl->load_lock);
    free(b->type);
    b->type = NULL;
}

void dp__plugins_batch_free(dp__plugin_batch_t *b)
{
    if (!b)
        return;
    batch_release(b);
    free(b);
}

int dp__plugins_batch_add(dp__plugin_batch_t *b, dp_graph_t *g, const dp_job_spec_t *spec,
                          const char *type, dp_params_t *params, char *err, size_t errlen)
{
    if (!b || !g || !spec || !type)
        return seterr(err, errlen, DP_EINVAL, "dp_plugins_add_job: missing argument");
    dp_plugins_t *pl = b->pl;
    const char *jname = spec->name ? spec->name : "(unnamed)";
    const char *dot;
    int rc = precheck(spec, jname, type, &dot, err, errlen);
    if (rc != DP_OK)
        return rc;
    if (!b->type || strcmp(b->type, type) != 0) {
        batch_release(b);
        if (!(b->type = strdup(type)))
            return seterr(err, errlen, DP_ENOMEM, "out of memory");
        if ((rc = resolve_type(pl, jname, type, dot, &b->r, err, errlen)) != DP_OK) {
            free(b->type);
            b->type = NULL;
            return rc;
        }
    }
    if (!b->ahead) {
        pthread_mutex_lock(&pl->lock);
        rc = note_used_locked(b->r.e, b->r.itype, BATCH_COUNT, b->r.t->ops.run != NULL,
                              b->r.t->ops.check != NULL);
        if (rc == DP_OK) {
            pl->refs += BATCH_COUNT;
            b->ahead = BATCH_COUNT;
        }
        pthread_mutex_unlock(&pl->lock);
        if (rc != DP_OK)
            return seterr(err, errlen, rc, "out of memory");
    }
    b->ahead--;
    return add_resolved(pl, g, spec, jname, type, &b->r, params, true, true, err, errlen);
}

/* ---- listing ------------------------------------------------------------ */

static void fill_info(dp_plugin_info_t *info, const pversion_t *v)
{
    memset(info, 0, sizeof(*info));
    info->name = v->desc.name;
    info->version = v->version ? v->version : v->desc.version;
    info->description = v->desc.description;
    info->path = v->path;
    info->abi_major = v->desc.abi_major;
    info->abi_minor = v->desc.abi_minor;
    info->types = v->type_names;
    info->loaded_at_ms = v->loaded_at_ms;
    info->generation = v->generation;
    info->jobs_in_flight = v->jobs;
    info->current = v->current;
}

int dp_plugins_foreach(dp_plugins_t *pl, int (*fn)(const dp_plugin_info_t *info, void *arg),
                       void *arg)
{
    if (!pl || !fn)
        return DP_EINVAL;
    /* fn runs under lock (the versions cannot go away meanwhile): it must
     * not call into the registry. */
    pthread_mutex_lock(&pl->lock);
    int rc = 0;
    for (pentry_t *e = pl->entries; e && !rc; e = e->next) {
        dp_plugin_info_t info;
        if (e->current) {
            fill_info(&info, e->current);
            rc = fn(&info, arg);
        }
        for (pversion_t *v = e->draining; v && !rc; v = v->next) {
            fill_info(&info, v);
            rc = fn(&info, arg);
        }
    }
    pthread_mutex_unlock(&pl->lock);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Probes each NAME.so of one directory. */
static int scan_dir(dp_plugins_t *pl, const char *dir,
                    int (*fn)(const dp_plugin_info_t *info, void *arg), void *arg)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* a missing search directory is not an error */
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= 3 || strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **v = realloc(names, cap * sizeof(*v));
            if (!v) {
                rc = DP_ENOMEM;
                break;
            }
            names = v;
        }
        if (!(names[n] = strndup(de->d_name, len - 3))) {
            rc = DP_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n && !rc; i++) {
        char path[PATH_MAX], err[PATH_MAX + 2048] = "";
        snprintf(path, sizeof(path), "%s/%s.so", dir, names[i]);
        pversion_t *v = NULL;
        dp_plugin_info_t info;
        if (!valid_name(names[i])) {
            memset(&info, 0, sizeof(info));
            snprintf(err, sizeof(err), "%s: '%s' is not a valid plugin name; fix: rename it",
                     path, names[i]);
        } else if (load_version(pl, names[i], path, &v, err, sizeof(err)) == DP_OK) {
            fill_info(&info, v);
        } else {
            memset(&info, 0, sizeof(info));
        }
        if (!v) {
            info.name = names[i];
            info.path = path;
            info.error = err;
        }
        rc = fn(&info, arg);
        if (v)
            version_unload(v);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int dp_plugins_scan(dp_plugins_t *pl, int (*fn)(const dp_plugin_info_t *info, void *arg),
                    void *arg)
{
    if (!pl || !fn)
        return DP_EINVAL;
    pthread_mutex_lock(&pl->load_lock);
    int rc = 0;
    for (size_t i = 0; i < pl->npaths && !rc; i++)
        rc = scan_dir(pl, pl->paths[i], fn, arg);
    pthread_mutex_unlock(&pl->load_lock);
    return rc;
}

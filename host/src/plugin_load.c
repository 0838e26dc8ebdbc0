/*
 * plugin_load.c - loading one version of a plugin from its file: the
 * security checks on the file and the way to it, the private copy that is
 * dlopen'd, the entry point, the checks of the descriptor and the job types
 * against the ABI, and init. The result is a version that belongs to no
 * entry yet: plugin_swap.c installs it, or dp_plugins_scan (at the end of
 * this file) describes it and unloads it again.
 *
 * Every refusal names the file, the reason and the fix; tests/plugins and
 * tests/hostile hold each message to its text.
 *
 * Lock order: load_lock, then lock (plugin_int.h). The caller of the loader
 * holds load_lock; the loader takes lock once, briefly, to read
 * allow_insecure. The plugin's entry point and init run here, under
 * load_lock only; a scan holds load_lock throughout, and its probes' fini
 * too runs under it.
 */
#include "plugin_load.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host_api.h"
#include "plugin_registry.h"
#include "util.h"

/* Sizes of the v1.0 structs: the smallest a plugin may hand us. Later minors
 * only append, so these never change within major 1. */
#define DESC_V1_0_SIZE (offsetof(dp_plugin_desc, fini) + sizeof(void (*)(void)))
#define TYPE_V1_0_SIZE (offsetof(dp_job_type, destroy) + sizeof(void (*)(void *)))

/* A plugin that lists more types than this is taken to have forgotten the
 * NULL terminator. */
#define MAX_TYPES 1024

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
        return dp__seterr(err, errlen, DP_EPLUGIN, "%s: cannot stat the %s %s: %s", plugin, what, node,
                          strerror(errno));
    uid_t me = geteuid();
    char where[PATH_MAX + 64] = "";
    if (is_dir || strcmp(node, plugin) != 0)
        snprintf(where, sizeof where, ": %s, on the way to the plugin", node);
    if (st.st_uid != 0 && st.st_uid != me)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: refusing an insecure plugin: the %s is owned by uid %u, neither root "
                          "nor you (uid %u)%s, so its owner could change the code you run; fix: chown "
                          "it to yourself or root, or allow insecure plugins (--allow-insecure-plugins)",
                          plugin, what, (unsigned)st.st_uid, (unsigned)me, where);
    bool shared_ok = is_dir && (st.st_mode & S_ISVTX) && st.st_uid == 0;
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !shared_ok)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: refusing an insecure plugin: the %s is writable by %s (mode %04o)%s, so "
                          "%s could put other code in its place; fix: chmod go-w '%s'%s, or allow "
                          "insecure plugins (--allow-insecure-plugins)",
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
        return dp__seterr(err, errlen, DP_EPLUGIN, "%s: the path is too long", path);
    int rc;
    if (path[0] == '/') {
        snprintf(done, sizeof done, "/");
        rc = check_node(done, true, path, err, errlen);
    } else {
        if (!getcwd(done, sizeof done))
            return dp__seterr(err, errlen, DP_EPLUGIN, "%s: cannot get the working directory: %s", path,
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
            return dp__seterr(err, errlen, DP_EPLUGIN, "%s: a name in it is too long", path);
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
        if ((size_t)snprintf(cand, sizeof cand, "%s%s%s", done, strcmp(done, "/") == 0 ? "" : "/", comp) >= sizeof cand)
            return dp__seterr(err, errlen, DP_EPLUGIN, "%s: the path is too long", path);
        struct stat st;
        if (lstat(cand, &st) != 0)
            return dp__seterr(err, errlen, DP_EPLUGIN, "%s: cannot stat %s: %s", path, cand, strerror(errno));
        if (S_ISLNK(st.st_mode)) {
            /* The link's own directory (done) is checked: no one else can
             * change where it points. On to what it names. */
            ssize_t n = readlink(cand, target, sizeof target - 1);
            if (n < 0 || ++hops > 40)
                return dp__seterr(err, errlen, DP_EPLUGIN, "%s: cannot follow the symlink %s: %s", path, cand,
                                  n < 0 ? strerror(errno) : strerror(ELOOP));
            target[n] = '\0';
            if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s", target, p) >= sizeof tmp)
                return dp__seterr(err, errlen, DP_EPLUGIN, "%s: the path is too long", path);
            memcpy(rest, tmp, strlen(tmp) + 1);
            p = rest;
            if (target[0] == '/')
                snprintf(done, sizeof done, "/"); /* checked at the start or in the cwd's chain */
            continue;
        }
        if (last)
            return check_node(cand, S_ISDIR(st.st_mode), path, err, errlen);
        if (!S_ISDIR(st.st_mode))
            return dp__seterr(err, errlen, DP_EPLUGIN, "%s: %s is not a directory", path, cand);
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
        return dp__seterr(err, errlen, DP_EPLUGIN, "%s: cannot read: %s", path, strerror(errno));
    if ((size_t)n < EI_NIDENT + 4 || memcmp(hdr, ELFMAG, SELFMAG) != 0)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: not a shared object (no ELF header); fix: build the plugin as a "
                          "shared library (dp_add_plugin() in CMake, or cc -shared -fPIC)",
                          path);
    /* e_type sits at the same offset in 32- and 64-bit headers. */
    uint16_t type;
    memcpy(&type, hdr + EI_NIDENT, sizeof(type));
    if (hdr[EI_DATA] != ELFDATA2LSB)
        type = (uint16_t)((type >> 8) | (type << 8));
    if (type != ET_DYN)
        return dp__seterr(err, errlen, DP_EPLUGIN,
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
    void *h = dp__plugins_dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!h)
        return false;
    dp__plugins_dlclose(h);
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
static void *open_private_copy(int src, const char *path, const char *name, int *keep_fd, char *err, size_t errlen)
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
            void *h = dp__plugins_dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
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
        dp__seterr(err, errlen, DP_EPLUGIN,
                   "%s: cannot be loaded: %s; and no private copy could be made in %s: %s; fix: set "
                   "DAGGERPOOL_PLUGIN_TMPDIR to a writable directory that allows executables",
                   path, why[0] ? why : "memfd_create failed", dir, strerror(errno));
        return NULL;
    }
    void *h = NULL;
    if (copy_fd(src, fd) == 0 && !name_taken(tmp))
        h = dp__plugins_dlopen(tmp, RTLD_NOW | RTLD_LOCAL);
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
        dp__seterr(err, errlen, DP_EPLUGIN,
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

static int refuse(dp_pversion_t *v, int code)
{
    dp__pversion_unload(v);
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

/* The checks that need none of the file's code: it exists and is a regular
 * file, it and the way to it are secure (unless the registry allows
 * insecure plugins), and it is an ELF shared object. On success *src is
 * the file opened for reading. */
static int open_plugin_file(dp_plugins_t *pl, const char *name, const char *path, int *src, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return dp__seterr(err, errlen, errno == ENOENT ? DP_ENOTFOUND : DP_EPLUGIN,
                          "%s: %s (plugin '%s'); fix: check the path, or build and install the "
                          "plugin there",
                          path, strerror(errno), name);
    if (!S_ISREG(st.st_mode))
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: not a regular file (plugin '%s'); fix: point to the plugin's .so file", path, name);

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
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return dp__seterr(err, errlen, DP_EPLUGIN, "%s: cannot open: %s (plugin '%s')", path, strerror(errno), name);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: not a regular file (plugin '%s'); fix: point to the plugin's .so file", path, name);
    }
    int rc = check_elf(fd, path, err, errlen);
    if (rc != DP_OK) {
        close(fd);
        return rc;
    }
    *src = fd;
    return DP_OK;
}

/* The entry point of v's code, or NULL with err saying why (another
 * major's entry point, or none at all). */
static dp_plugin_entry_fn find_entry(const dp_pversion_t *v, const char *path, char *err, size_t errlen)
{
    dp_plugin_entry_fn entry;
    void *sym = dlsym(v->handle, DP_PLUGIN_ENTRY_NAME);
    memcpy(&entry, &sym, sizeof(entry)); /* object to function pointer, as POSIX allows */
    if (entry)
        return entry;
    int m = other_major(v->handle);
    if (m >= 0)
        dp__seterr(err, errlen, DP_EPLUGIN,
                   "%s: built for plugin ABI %d (it exports dp_plugin_entry_v%d), but this host "
                   "speaks ABI %d (dp_plugin_entry_v%d); fix: rebuild the plugin against this "
                   "host's <daggerpool/plugin.h>, or use a daggerpool of major %d",
                   path, m, m, DP_PLUGIN_ABI_MAJOR, DP_PLUGIN_ABI_MAJOR, m);
    else
        dp__seterr(err, errlen, DP_EPLUGIN,
                   "%s: not a daggerpool plugin: it does not export %s; fix: define it with "
                   "DP_PLUGIN_EXPORT (see <daggerpool/plugin.h>) and build with dp_add_plugin()",
                   path, DP_PLUGIN_ENTRY_NAME);
    return NULL;
}

/* Checks the descriptor the entry point returned (d, NULL if it refused
 * the host) against the ABI and copies it into v->desc. */
static int check_desc(dp_pversion_t *v, const dp_plugin_desc *d, const char *name, const char *path, char *err,
                      size_t errlen)
{
    if (!d)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: the plugin refused this host (host ABI %d.%d, daggerpool %s): its entry "
                          "point returned NULL; fix: use a newer daggerpool, or a plugin built for this one",
                          path, DP_PLUGIN_ABI_MAJOR, DP_PLUGIN_ABI_MINOR, DP_VERSION_STRING);
    if (d->struct_size < DESC_V1_0_SIZE)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: its dp_plugin_desc is %u bytes, smaller than any ABI %d header makes it "
                          "(%zu); fix: set .struct_size = sizeof(dp_plugin_desc) and rebuild",
                          path, (unsigned)d->struct_size, DP_PLUGIN_ABI_MAJOR, (size_t)DESC_V1_0_SIZE);
    /* The major and minor come first so that an incompatible plugin gets the
     * version message, not a layout one. */
    if (d->abi_major != DP_PLUGIN_ABI_MAJOR)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: built for plugin ABI %u.%u, but this host speaks ABI %d.%d (the major must "
                          "match); fix: rebuild the plugin against this host's <daggerpool/plugin.h>",
                          path, (unsigned)d->abi_major, (unsigned)d->abi_minor, DP_PLUGIN_ABI_MAJOR,
                          DP_PLUGIN_ABI_MINOR);
    if (d->abi_minor > DP_PLUGIN_ABI_MINOR)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: built for plugin ABI %u.%u, newer than this host's %d.%d; fix: upgrade "
                          "daggerpool to one that speaks ABI %u.%u or later, or rebuild the plugin against "
                          "this host's <daggerpool/plugin.h>",
                          path, (unsigned)d->abi_major, (unsigned)d->abi_minor, DP_PLUGIN_ABI_MAJOR,
                          DP_PLUGIN_ABI_MINOR, (unsigned)d->abi_major, (unsigned)d->abi_minor);
    if (!copy_struct(&v->desc, sizeof(v->desc), d, d->struct_size))
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: its dp_plugin_desc (%u bytes) has fields this host does not know (it "
                          "knows %zu bytes) set; fix: rebuild the plugin against this host's header",
                          path, (unsigned)d->struct_size, sizeof(v->desc));
    const dp_plugin_desc *desc = &v->desc;
    if (!dp__plugin_valid_name(desc->name))
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: its plugin name '%s' is not valid; fix: use letters, digits, '_' and '-' "
                          "in dp_plugin_desc.name",
                          path, desc->name ? desc->name : "(null)");
    if (strcmp(desc->name, name) != 0)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: the plugin calls itself '%s' but was loaded as '%s'; fix: rename the file "
                          "to %s.so (or the workflow's plugins key to %s), or set dp_plugin_desc.name to "
                          "\"%s\"",
                          path, desc->name, name, desc->name, desc->name, name);
    if (!desc->version || !*desc->version)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: plugin '%s' declares no version; fix: set dp_plugin_desc.version (e.g. "
                          "\"1.0.0\")",
                          path, name);
    return DP_OK;
}

/* Checks v->desc's job types and copies them into v->types. */
static int check_types(dp_pversion_t *v, const char *name, const char *path, char *err, size_t errlen)
{
    const dp_plugin_desc *desc = &v->desc;
    size_t n = 0;
    while (desc->job_types && n < MAX_TYPES && desc->job_types[n])
        n++;
    if (n == 0)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: plugin '%s' declares no job types; fix: list them in "
                          "dp_plugin_desc.job_types, ending with NULL",
                          path, name);
    if (n == MAX_TYPES)
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: plugin '%s' lists %d or more job types: is the job_types array "
                          "NULL-terminated? fix: end it with NULL",
                          path, name, MAX_TYPES);
    v->types = calloc(n, sizeof(*v->types));
    v->type_names = calloc(n + 1, sizeof(*v->type_names));
    if (!v->types || !v->type_names)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const dp_job_type *t = desc->job_types[i];
        if (t->struct_size < TYPE_V1_0_SIZE ||
            !copy_struct(&v->types[i].ops, sizeof(v->types[i].ops), t, t->struct_size))
            return dp__seterr(err, errlen, DP_EPLUGIN,
                              "%s: job type #%zu of plugin '%s' has struct_size %u (this host accepts "
                              "%zu to %zu, or larger with unknown fields zero); fix: set .struct_size = "
                              "sizeof(dp_job_type) and rebuild",
                              path, i + 1, name, (unsigned)t->struct_size, (size_t)TYPE_V1_0_SIZE, sizeof(dp_job_type));
        const dp_job_type *ops = &v->types[i].ops;
        if (!dp__plugin_valid_name(ops->name))
            return dp__seterr(err, errlen, DP_EPLUGIN,
                              "%s: job type #%zu of plugin '%s' has the invalid name '%s'; fix: use "
                              "letters, digits, '_' and '-'",
                              path, i + 1, name, ops->name ? ops->name : "(null)");
        if (!ops->run && !ops->check)
            return dp__seterr(err, errlen, DP_EPLUGIN,
                              "%s: job type '%s.%s' has neither run nor check, so it could do nothing; "
                              "fix: give it a run function, a check function, or both",
                              path, name, ops->name);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(v->types[j].name, ops->name) == 0)
                return dp__seterr(err, errlen, DP_EPLUGIN,
                                  "%s: job type '%s.%s' is declared twice; fix: give each job type of "
                                  "the plugin its own name",
                                  path, name, ops->name);
        }
        v->types[i].name = ops->name;
        v->type_names[i] = ops->name;
    }
    v->ntypes = n;
    return DP_OK;
}

/* Runs the plugin's init, if it has one. */
static int run_init(dp_pversion_t *v, const char *name, const char *path, char *err, size_t errlen)
{
    const dp_plugin_desc *desc = &v->desc;
    if (!desc->init)
        return DP_OK;
    char ierr[1024] = "";
    if (desc->init(ierr, sizeof(ierr)) != 0) {
        ierr[sizeof(ierr) - 1] = '\0';
        return dp__seterr(err, errlen, DP_EPLUGIN,
                          "%s: plugin '%s' %s failed to initialise: %s; fix: see the plugin's "
                          "message",
                          path, name, desc->version, ierr[0] ? ierr : "(no message)");
    }
    v->inited = true;
    return DP_OK;
}

/* The steps in order; the first refusal unloads what was loaded. */
int dp__pversion_load(dp_plugins_t *pl, const char *name, const char *path, dp_pversion_t **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    int src;
    int rc = open_plugin_file(pl, name, path, &src, err, errlen);
    if (rc != DP_OK)
        return rc;

    dp_pversion_t *v = calloc(1, sizeof(*v));
    if (!v || !(v->path = strdup(path))) {
        free(v);
        close(src);
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    v->fd = -1;
    v->handle = open_private_copy(src, path, name, &v->fd, err, errlen);
    close(src);
    if (!v->handle)
        return refuse(v, DP_EPLUGIN);
    v->loaded_at_ms = dp__wall_ms();

    dp_plugin_entry_fn entry = find_entry(v, path, err, errlen);
    if (!entry)
        return refuse(v, DP_EPLUGIN);
    rc = check_desc(v, entry(dp__plugins_host_api()), name, path, err, errlen);
    if (rc == DP_OK)
        rc = check_types(v, name, path, err, errlen);
    if (rc == DP_OK)
        rc = run_init(v, name, path, err, errlen);
    if (rc != DP_OK)
        return refuse(v, rc);
    *out = v;
    return DP_OK;
}

const dp_ptype_t *dp__pversion_find_type(const dp_pversion_t *v, const char *type)
{
    for (size_t i = 0; i < v->ntypes; i++)
        if (strcmp(v->types[i].name, type) == 0)
            return &v->types[i];
    return NULL;
}

/* ---- scanning the search path ------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Probes each NAME.so of one directory. */
static int scan_dir(dp_plugins_t *pl, const char *dir, int (*fn)(const dp_plugin_info_t *info, void *arg), void *arg)
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
        dp_pversion_t *v = NULL;
        dp_plugin_info_t info;
        if (!dp__plugin_valid_name(names[i])) {
            memset(&info, 0, sizeof(info));
            snprintf(err, sizeof(err), "%s: '%s' is not a valid plugin name; fix: rename it", path, names[i]);
        } else if (dp__pversion_load(pl, names[i], path, &v, err, sizeof(err)) == DP_OK) {
            dp__pversion_info(&info, v);
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
            dp__pversion_unload(v);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int dp_plugins_scan(dp_plugins_t *pl, int (*fn)(const dp_plugin_info_t *info, void *arg), void *arg)
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

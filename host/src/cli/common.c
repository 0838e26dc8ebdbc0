/* common.c - what the subcommands share: usage errors, the plugin search
 * path, the heap for large workflow files, output files written whole. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "plugin.h"
#include "util.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *e = dp__text_escape(msg);
    fprintf(stderr, "daggerpool%s%s: %s; try 'daggerpool%s%s --help'\n", cmd ? " " : "", cmd ? cmd : "", e ? e : msg,
            cmd ? " " : "", cmd ? cmd : "");
    free(e);
    return CLI_EXIT_INVALID;
}

static bool messages_json;

void cli_messages_json(void)
{
    messages_json = true;
    cli_signals_json(true);
}

/* A message as one JSON log line (the JSON writer escapes what needs it). */
static void put_json_message(FILE *out, const char *msg)
{
    char *line = cli_json_line(dp__wall_ns(), DP_LOG_ERROR, NULL, 0, NULL, msg, NULL);
    fprintf(out, "%s\n", line ? line : "{\"level\":\"error\",\"message\":\"out of memory\"}");
    free(line);
}

void cli_errorf(const char *cmd, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (messages_json) {
        put_json_message(stderr, msg);
        return;
    }
    char *e = dp__text_escape(msg);
    fprintf(stderr, "daggerpool%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", e ? e : "(out of memory)");
    free(e);
}

void cli_put_lines(FILE *out, const char *text)
{
    const char *p = text ? text : "";
    do {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, len);
        if (messages_json && line) {
            put_json_message(out, line);
        } else {
            char *e = line ? dp__text_escape(line) : NULL;
            fprintf(out, "%s\n", e ? e : "(out of memory)");
            free(e);
        }
        free(line);
        p = nl ? nl + 1 : NULL;
    } while (p && *p);
}

bool cli_parse_uint(const char *text, unsigned min, unsigned max, unsigned *out)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

/* libconfig reads a file into a tree of one malloc per setting, name and
 * string: a large workflow becomes hundreds of MiB of small blocks, and with
 * 4 KiB pages much of the parse is page faults, each a trap into the kernel
 * (dearer still on a VM). So before such a file is read, the main heap is
 * grown once, in advance, to about what the parse will use, and that range
 * is marked for transparent huge pages: malloc then carves the tree out of
 * 2 MiB pages, a few faults where there were thousands.
 * Kept for the figures in bench/README.md ("Heap tuning and hand-built
 * rows: with and without"): `daggerpool run` on 100 000 jobs 0.98 s with
 * it, 1.16 s without (53 000 page faults instead of 1 100).
 *   - Growing the heap reserves address space only: a page is backed when
 *     malloc first touches it, so the resident size is what is used (to
 *     the next 2 MiB), not the reservation.
 *   - M_TRIM_THRESHOLD keeps the tree's memory when it is freed: the
 *     graphs built right after reuse those pages instead of faulting in
 *     new ones. M_MMAP_THRESHOLD (32 MiB, the most glibc takes) puts the
 *     graphs' large arrays in that heap too rather than in fresh mappings.
 *   - Where the heap is not glibc's (ASan, valgrind) sbrk(0) does not move
 *     and nothing is marked; where THP is off the advice does nothing;
 *     where the reservation is refused malloc falls back as usual. The
 *     worst case is the old speed.
 *   - A file that needs more than the estimate gets ordinary pages beyond
 *     it.
 *   - No fastbins while the file is read (M_MXFAST 0, cli_heap_loaded puts
 *     them back): a fastbin defers the merging of a freed block to the next
 *     large request, which then walks every deferred block again; for a
 *     tree of millions of blocks freed at once, merging each as it is freed
 *     is cheaper. */
static bool heap_prepared;

void cli_heap_for_workflow(const char *path)
{
    struct stat st;
    if (heap_prepared || !path || stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (4 << 20))
        return;
    heap_prepared = true;
    /* ~10 bytes of tree per byte of file in a plain workflow, up to ~20 in
     * one of one-letter names; the rest of the load reuses it. */
    const size_t huge = (size_t)2 << 20;
    size_t want = (size_t)st.st_size * 24;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psize > 0 && want > (size_t)pages / 2 * (size_t)psize)
        want = (size_t)pages / 2 * (size_t)psize;
    if (want > INT_MAX)
        want = INT_MAX;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    mallopt(M_MXFAST, 0);
    mallopt(M_TOP_PAD, (int)want);
    /* One block past the free top forces one sbrk of want and more. */
    uintptr_t before = (uintptr_t)sbrk(0);
    void *p = malloc(1 << 20);
    uintptr_t after = (uintptr_t)sbrk(0);
    mallopt(M_TOP_PAD, 128 << 10); /* glibc's default again */
    uintptr_t lo = (before + huge - 1) & ~(uintptr_t)(huge - 1), hi = after & ~(uintptr_t)(huge - 1);
    if (p && before != (uintptr_t)-1 && after != (uintptr_t)-1 && hi > lo)
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    free(p);
}

void cli_heap_loaded(void)
{
    static bool done;
    if (heap_prepared && !done) {
        done = true;
        /* glibc's DEFAULT_MXFAST: jobs and plugins make many small, short
         * lived blocks, which fastbins serve best. */
        mallopt(M_MXFAST, (int)(64 * sizeof(size_t) / 4));
    }
}

void cli_heap_settle(void)
{
    static bool done;
    if (heap_prepared && !done) {
        done = true;
        /* The tree's freed pages were kept for the graphs built right after
         * the load; a watch keeps running for days, and would otherwise
         * hold them (the size of libconfig's whole tree) to the end. */
        mallopt(M_TRIM_THRESHOLD, 128 << 10); /* glibc's default */
        malloc_trim(0);
    }
}

bool cli_list_push(char ***list, size_t *n, char *item)
{
    char **grown = realloc(*list, (*n + 1) * sizeof *grown);
    if (!grown)
        return false;
    grown[(*n)++] = item;
    *list = grown;
    return true;
}

bool cli_check_dirs(const char *cmd, char **dirs, size_t ndirs)
{
    for (size_t i = 0; i < ndirs; i++) {
        struct stat st;
        if (stat(dirs[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            cli_usage_error(cmd, "--plugin-path %s: %s", dirs[i],
                            errno == ENOENT || errno == 0 ? "no such directory" : strerror(errno));
            return false;
        }
    }
    return true;
}

void cli_plugin_search_path(dp_plugins_t *pl, const dp_workflow_t *wf, char **dirs, size_t ndirs)
{
    const char *dir;
    for (size_t i = 0; wf && (dir = dp_workflow_plugin_path(wf, i)); i++)
        dp_plugins_add_path(pl, dir);
    for (size_t i = 0; i < ndirs; i++)
        dp_plugins_add_path(pl, dirs[i]);
    const char *env = getenv("DAGGERPOOL_PLUGIN_PATH");
    if (env && *env)
        dp__plugins_add_path_list(pl, env);
    char def[PATH_MAX];
    if (dp__plugins_default_dir(def, sizeof def) == DP_OK)
        dp_plugins_add_path(pl, def);
}

/* ---- files ------------------------------------------------------------ */

/* "a directory", "a FIFO", ... for messages. */
static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
           : S_ISLNK(m)  ? "a symlink"
                         : "not a regular file";
}

/* realpath of path's directory, "/" and path's last name; NULL when the
 * directory does not resolve (errno set) or the name is empty (EISDIR). */
static char *resolve_in_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        errno = EISDIR;
        return NULL;
    }
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return NULL;
    char *rdir = realpath(dir, NULL);
    free(dir);
    if (!rdir)
        return NULL;
    size_t n = strlen(rdir) + 1 + strlen(base) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s%s", rdir, strcmp(rdir, "/") == 0 ? "" : "/", base);
    free(rdir);
    return out;
}

void cli_file_id(const char *path, cli_file_id_t *id)
{
    memset(id, 0, sizeof *id);
    struct stat st;
    if (stat(path, &st) == 0) {
        id->exists = true;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
    }
    id->resolved = resolve_in_dir(path);
}

bool cli_same_file(const cli_file_id_t *a, const cli_file_id_t *b)
{
    if (a->exists && b->exists)
        return a->dev == b->dev && a->ino == b->ino;
    /* One that exists and one that does not are two files; two that do not
     * exist yet are one when they resolve to the same name. */
    return !a->exists && !b->exists && a->resolved && b->resolved && strcmp(a->resolved, b->resolved) == 0;
}

void cli_file_id_free(cli_file_id_t *id)
{
    free(id->resolved);
    id->resolved = NULL;
}

int cli_open_regular(const char *cmd, const char *flag, const char *path, int flags, const char *fix)
{
    if (!*path) {
        cli_errorf(cmd, "%s '': an empty file name; fix: %s", flag, fix);
        return -1;
    }
    /* stat first: even opening some devices does something (a tape
     * rewinds); O_NONBLOCK so that a FIFO put there since cannot block the
     * open, fstat to judge what was opened. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        cli_errorf(cmd, "%s %s: %s, not a regular file; fix: %s", flag, path, file_kind(st.st_mode), fix);
        return -1;
    }
    int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0) {
        cli_errorf(cmd, "%s %s: %s; fix: %s", flag, path, strerror(errno), fix);
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cli_errorf(cmd, "%s %s: %s, not a regular file; fix: %s", flag, path, file_kind(st.st_mode), fix);
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* ---- output files ------------------------------------------------------ */

#define OUT_BUF (1u << 20)

bool out_file_check(out_file_t *o, const char *cmd, const char *flag, const char *what, const char *path)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    o->flag = flag;
    o->what = what;
    o->slot = -1;
    if (strcmp(path, "-") == 0)
        return true;
    if (!*path) {
        cli_errorf(cmd,
                   "%s '': cannot write the %s there: an empty file name; fix: name a file, or - for standard "
                   "output",
                   flag, what);
        return false;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            /* Not followed: a link in a shared directory could point the
             * rename at any file the command may write. */
            char to[PATH_MAX];
            ssize_t n = readlink(path, to, sizeof to - 1);
            to[n > 0 ? n : 0] = '\0';
            cli_errorf(cmd,
                       "%s %s: cannot write the %s there: a symlink (to %s), which the new file renamed over the "
                       "name would replace; fix: name the file itself, or a new one",
                       flag, path, what, to);
            return false;
        }
        if (!S_ISREG(st.st_mode)) {
            /* rename(2) would put a regular file in its place: a device
             * node, a FIFO or a socket gone, a directory a late error. */
            cli_errorf(cmd,
                       "%s %s: cannot write the %s there: %s, not a regular file, which the new file renamed over "
                       "the name would replace; fix: name a regular file or a new one, or - for standard output",
                       flag, path, what, file_kind(st.st_mode));
            return false;
        }
    } else if (errno != ENOENT) {
        cli_errorf(cmd, "%s %s: cannot write the %s there: %s", flag, path, what, strerror(errno));
        return false;
    }
    cli_file_id(path, &o->id);
    if (!o->id.resolved) {
        const char *why = errno == EISDIR   ? "names a directory"
                          : errno == ENOENT ? "no such directory"
                                            : strerror(errno);
        cli_errorf(cmd, "%s %s: cannot write the %s there: %s; fix: name a file in an existing directory", flag, path,
                   what, why);
        cli_file_id_free(&o->id);
        return false;
    }
    o->target = o->id.resolved;
    return true;
}

bool out_file_open(out_file_t *o, const char *cmd)
{
    if (!o->target) {
        o->f = stdout;
        return true;
    }
    size_t n = strlen(o->target) + 48;
    char *tmp = malloc(n);
    if (!tmp)
        return false;
    snprintf(tmp, n, "%s.tmp.%ld.XXXXXX", o->target, (long)getpid());
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        cli_errorf(cmd, "cannot write the %s to %s: %s", o->what, o->path, strerror(errno));
        free(tmp);
        return false;
    }
    /* mkostemp makes it 0600; a result is as readable as any new file. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    o->tmp = tmp;
    o->slot = cli_tmp_register(tmp);
    if (!(o->f = fdopen(fd, "w"))) {
        close(fd);
        cli_errorf(cmd, "cannot write the %s to %s: %s", o->what, o->path, strerror(errno));
        out_file_discard(o);
        return false;
    }
    /* A large result is tens of MB: written 1 MiB at a time, not in
     * stdio's default 4 KiB (thousands of write(2) calls; bench/README.md,
     * "output buffers"). glibc ignores setvbuf's size without a buffer:
     * ours, freed after fclose. */
    if ((o->buf = malloc(OUT_BUF)))
        setvbuf(o->f, o->buf, _IOFBF, OUT_BUF);
    return true;
}

bool out_file_commit(out_file_t *o, const char *cmd)
{
    if (o->f == stdout) {
        o->f = NULL;
        if (fflush(stdout) == 0 && !ferror(stdout))
            return true;
        cli_errorf(cmd, "cannot write the %s to standard output: %s", o->what, strerror(errno));
        return false;
    }
    errno = 0;
    bool ok = o->f && fflush(o->f) == 0 && !ferror(o->f);
    int err = errno ? errno : EIO;
    if (o->f && fclose(o->f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    o->f = NULL;
    free(o->buf);
    o->buf = NULL;
    /* What was checked before the run may have changed since: still never
     * replace anything but a regular file. */
    struct stat st;
    if (ok && lstat(o->target, &st) == 0 && !S_ISREG(st.st_mode)) {
        cli_errorf(cmd, "%s %s: became %s during the run; it was not replaced, the %s is not written", o->flag, o->path,
                   file_kind(st.st_mode), o->what);
        out_file_discard(o);
        return false;
    }
    if (ok && rename(o->tmp, o->target) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        cli_errorf(cmd, "cannot write the %s to %s: %s", o->what, o->path, strerror(err));
        out_file_discard(o);
        return false;
    }
    cli_tmp_forget(o->slot);
    o->slot = -1;
    free(o->tmp);
    o->tmp = NULL;
    cli_file_id_free(&o->id);
    o->target = NULL;
    return true;
}

void out_file_discard(out_file_t *o)
{
    if (o->f && o->f != stdout)
        fclose(o->f);
    o->f = NULL;
    free(o->buf);
    o->buf = NULL;
    if (o->tmp) {
        unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
    }
    cli_tmp_forget(o->slot);
    o->slot = -1;
    cli_file_id_free(&o->id);
    o->target = NULL;
}

void cli_run_opts(const dp_workflow_t *wf, const cli_run_flags_t *flags, dp_run_opts_t *opts)
{
    dp_run_opts_init(opts);
    dp_workflow_run_opts(wf, opts);
    if (flags->jobs)
        opts->max_concurrent_jobs = flags->jobs;
    if (flags->timeout_set)
        opts->timeout_ms = flags->timeout_ms;
    if (flags->keep_going)
        opts->fail_fast = false;
}

dp_workflow_t *cli_workflow_build(const char *file, dp_plugins_t *pl, char **dirs, size_t ndirs, char *err)
{
    cli_heap_for_workflow(file);
    dp_workflow_t *wf = dp__workflow_load_for_build(file, err, 16384);
    if (!wf) {
        cli_put_lines(stderr, err);
        return NULL;
    }
    cli_heap_loaded();
    cli_plugin_search_path(pl, wf, dirs, ndirs);
    if (dp_workflow_build(wf, pl, err, 16384) != DP_OK) {
        cli_put_lines(stderr, err);
        dp_workflow_free(wf);
        return NULL;
    }
    return wf;
}

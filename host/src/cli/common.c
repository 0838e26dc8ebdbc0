/* common.c - what the subcommands share: usage errors, the plugin search
 * path, the heap for large workflow files, output files written whole. */
#include <errno.h>
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
#include "plugin.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "daggerpool%s%s: %s; try 'daggerpool%s%s --help'\n", cmd ? " " : "", cmd ? cmd : "", msg,
            cmd ? " " : "", cmd ? cmd : "");
    return CLI_EXIT_INVALID;
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
 * string: a 100 000-job workflow (18 MB) becomes ~190 MiB of small blocks,
 * and with 4 KiB pages half the parse is page faults (48 000 of them, each
 * a trap into a kernel that, on a VM, costs ~8 us). So before such a file
 * is read, the main heap is grown once, in advance, to about what the parse
 * will use, and that range is marked for transparent huge pages: malloc
 * then carves the tree out of 2 MiB pages, ~100 faults instead. Measured
 * in bench/README.md (the parse alone: 0.9-1.1 s -> 0.35-0.4 s).
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
 *     is cheaper (config_destroy 66-70 ms -> 43-46 ms, the parse the same). */
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
         * hold them (~200 MiB for a 100 000-job file) to the end. */
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

#define OUT_BUF (1u << 20)

bool out_file_open(out_file_t *o, const char *path, const char *cmd, const char *what)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        return true;
    }
    char *tmp = malloc(strlen(path) + 32);
    if (!tmp)
        return false;
    sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    o->f = fopen(tmp, "w");
    if (!o->f) {
        fprintf(stderr, "daggerpool %s: cannot write the %s to %s: %s\n", cmd, what, path, strerror(errno));
        free(tmp);
        return false;
    }
    /* A large result is tens of MB: written 1 MiB at a time, not in
     * stdio's default 4 KiB (4 800 write(2) calls for 100 000 jobs). glibc
     * ignores setvbuf's size without a buffer: ours, freed after fclose. */
    if ((o->buf = malloc(OUT_BUF)))
        setvbuf(o->f, o->buf, _IOFBF, OUT_BUF);
    o->tmp = tmp;
    return true;
}

bool out_file_commit(out_file_t *o, const char *cmd)
{
    if (o->f == stdout) {
        o->f = NULL;
        return fflush(stdout) == 0;
    }
    bool ok = o->f && fflush(o->f) == 0 && !ferror(o->f);
    if (o->f && fclose(o->f) != 0)
        ok = false;
    o->f = NULL;
    free(o->buf);
    o->buf = NULL;
    if (ok && rename(o->tmp, o->path) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "daggerpool %s: cannot write %s: %s\n", cmd, o->path, strerror(errno));
        unlink(o->tmp);
    }
    free(o->tmp);
    o->tmp = NULL;
    return ok;
}

void out_file_discard(out_file_t *o)
{
    if (o->f && o->f != stdout)
        fclose(o->f);
    free(o->buf);
    o->buf = NULL;
    if (o->tmp) {
        unlink(o->tmp);
        free(o->tmp);
    }
    o->f = NULL;
    o->tmp = NULL;
}

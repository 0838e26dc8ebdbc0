/*
 * config.c - the workflow file (DESIGN.md "The workflow file").
 *
 * Two steps, so that a file's mistakes are found before any plugin code is
 * loaded and so that the caller decides the plugin search order:
 *
 *   dp_workflow_load   libconfig parse of the stream this file makes of the
 *                      workflow and its @includes (each file checked before
 *                      it is read: "The text libconfig reads"), then every
 *                      key checked against what it may be (unknown keys,
 *                      types, durations, names, dependencies, cycles).
 *                      Everything is copied out of
 *                      libconfig (dependencies as job indices), and its
 *                      tree is freed before the cycle check. The shape
 *                      graph (for drawing) is built on first use.
 *   dp_workflow_build  explicit plugins loaded, each job added through a
 *                      dp__plugins_batch (type resolved, params checked by
 *                      the type's create, as dp_plugins_add_job does).
 *
 * Problems are collected, not just the first: a user fixing a file wants
 * the whole list. Each is one line "FILE:LINE: what; expected; fix". A
 * workflow loaded for its build (dp__workflow_load_for_build) carries its
 * problems to dp_workflow_build, which adds those of plugins, types and
 * params to the same list.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dag.h"
#include "hash.h"
#include "plugin.h"
#include "text.h"
#include "strarena.h"
#include "util.h"

/* Problems listed before the rest is summarised as "... and N more". */
#define MAX_PROBLEMS 20

/* A slot of the job name index. A million dependencies are looked up in
 * it, in no order: the name is in the slot, and part of the hash, so that
 * a probe touches the slot and the name it finds, not the job too. */
struct name_slot {
    const char *name; /* NULL: free */
    uint32_t id;      /* index in wf->jobs */
    uint32_t tag;     /* the hash's high bits */
};

/* A job as read. Kept small: a 100 000-job file has 100 000 of them, made
 * while libconfig's tree is still in memory. */
typedef struct wf_job {
    char *name;       /* in wf->names */
    const char *type; /* interned in wf->types */
    const char *file; /* interned in wf->files */
    int line;
    uint32_t ndeps;
    size_t dep_off;   /* its dependencies: wf->dep_ids[dep_off .. dep_off + ndeps) */
    dp_params_t *params;
    /* Scheduling settings (name/run/check set at build): NULL for
     * wf->spec0, the defaults of dp_job_spec_init, which most jobs have;
     * else one of wf->specs, shared by jobs in a row with equal settings. */
    const dp_job_spec_t *spec;
} wf_job_t;

typedef struct wf_plugin {
    char *name;
    char *path; /* resolved against the file's directory */
    const char *file;
    int line;
} wf_plugin_t;

struct dp_workflow {
    char *path; /* as given */
    char *dir;  /* its directory: base of relative paths and @include */
    char *name;
    unsigned max_concurrent_jobs;
    uint64_t timeout_ms;
    bool fail_fast;
    char **plugin_path;
    size_t n_plugin_path;
    wf_plugin_t *plugins;
    size_t nplugins;
    wf_job_t *jobs;
    size_t njobs;
    char **files; /* every file name a setting came from (includes) */
    size_t nfiles;
    char **types; /* distinct job types; jobs point at them */
    size_t ntypes;
    dp_strarena_t names;      /* the jobs' names, many to a malloc */
    uint32_t *dep_ids;        /* every job's dependencies, by index in jobs */
    size_t ndep_ids, dep_cap;
    struct name_slot *index;  /* job names: open addressing */
    size_t index_mask;        /* slots - 1 (a power of two) */
    dp_job_spec_t spec0;      /* dp_job_spec_init's */
    dp_job_spec_t **specs;    /* the other settings, one per distinct run */
    size_t nspecs;
    pthread_mutex_t shape_lock; /* the shape is made on first use, */
    dp_graph_t *shape;
    dp_workflow_t *self;        /* through this from a const workflow */
    dp_graph_t *graph;
    int build_rc; /* first answer of dp_workflow_build, 1 = not yet */
    char *build_err;
    /* A workflow with problems, kept for its build to list those of its
     * plugins, types and params too (dp__workflow_load_for_build): the
     * problems, their number, and the jobs not to build (by index: a
     * problem in their params, which the type would misjudge). */
    char *load_problems;
    unsigned load_count;
    uint8_t *unbuildable;
};

/* ------------------------------------------------------------------------ */
/* Problem list                                                              */
/* ------------------------------------------------------------------------ */

typedef struct problems {
    char *buf;
    size_t len;
    size_t used;
    unsigned count;
} problems_t;

static void problem(problems_t *pr, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem(problems_t *pr, const char *file, int line, const char *fmt, ...)
{
    pr->count++;
    if (!pr->buf || pr->len == 0 || pr->count > MAX_PROBLEMS)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One problem, one line: the names in it (jobs, keys, files) may hold
     * any bytes, and a raw newline would forge a FILE:LINE line of its own,
     * an ESC a terminal escape. Escaped as the summary escapes them. */
    char *emsg = dp__text_escape(msg), *efile = dp__text_escape(file);
    int n;
    if (line > 0)
        n = snprintf(pr->buf + pr->used, pr->len - pr->used, "%s%s:%d: %s", pr->used ? "\n" : "",
                     efile ? efile : file, line, emsg ? emsg : msg);
    else
        n = snprintf(pr->buf + pr->used, pr->len - pr->used, "%s%s: %s", pr->used ? "\n" : "", efile ? efile : file,
                     emsg ? emsg : msg);
    free(emsg);
    free(efile);
    if (n > 0)
        pr->used += (size_t)n < pr->len - pr->used ? (size_t)n : pr->len - pr->used - 1;
}

static void problems_finish(problems_t *pr)
{
    if (pr->count > MAX_PROBLEMS && pr->buf && pr->len > pr->used + 1) {
        int n = snprintf(pr->buf + pr->used, pr->len - pr->used, "\n... and %u more problems",
                         pr->count - MAX_PROBLEMS);
        if (n > 0)
            pr->used += (size_t)n < pr->len - pr->used ? (size_t)n : pr->len - pr->used - 1;
    }
}

/* ------------------------------------------------------------------------ */
/* The text libconfig reads                                                  */
/* ------------------------------------------------------------------------ */

/*
 * libconfig opens no file here: it reads one stream (fopencookie) made of
 * the workflow file with every @include spliced in, so that
 *  - each file is checked before it is read: a regular file (a FIFO would
 *    block in fopen; a directory or /proc/self/mem made libconfig's scanner
 *    call exit(2)), read with read(2) whose errors are reported, within a
 *    bound on the total size;
 *  - an @include is relative to the including file's directory, or
 *    absolute, and one that fails names the path tried;
 *  - nesting deeper than MAX_NESTING is refused with that limit (libconfig's
 *    parser runs out of stack at ~5000 levels: "memory exhausted");
 *  - an integer libconfig would misread (1.5 keeps a decimal without L in
 *    32 bits, and saturates or wraps beyond 64) is handed over as one it
 *    reads exactly: with an L when it fits in 64 bits, else as a stand-in
 *    that int_value resolves to the text as written.
 * Strings, comments, names and numbers are told apart as libconfig's
 * scanner (scanner.l) does, so that an @include or a number is one here
 * exactly when it is one there, and no '@' reaches libconfig. A mistake
 * ends the stream early (an error from the cookie would make flex call
 * exit(2)) and is reported instead of whatever libconfig then says. The
 * stream's line numbers are libconfig's; segs map them back to files.
 */

/* The workflow file and its includes together, at most. */
#define MAX_WORKFLOW_BYTES (512u << 20)
#define MAX_WORKFLOW_MIB 512
/* Includes within includes, at most. */
#define MAX_INCLUDE_DEPTH 10
/* { }, ( ) and [ ] within each other, at most. */
#define MAX_NESTING 100
/* Integers handed over as stand-ins (INT64_MIN + index), at most. */
#define MAX_ODD_INTS 65536

typedef enum { LX_CODE, LX_STRING, LX_BLOCK_COMMENT, LX_LINE_COMMENT } lex_state_t;

typedef struct src_file {
    int fd;
    const char *path; /* as messages show it: interned in wf->files, or wf->path */
    char *written;    /* an included file's name as its @include wrote it */
    dev_t dev;
    ino_t ino;
    int line;         /* the line being read, from 1 */
    char *buf;        /* read, not yet handed on: buf[off .. len) */
    size_t cap, off, len, scanned;
    bool eof;
} src_file_t;

/* From stream line `from` on, lines are those of file from its line `line`. */
typedef struct line_seg {
    unsigned from;
    const char *file;
    int line;
} line_seg_t;

/* An integer literal libconfig would misread, handed over as a stand-in. */
typedef struct odd_int {
    const char *file;
    int line;
    char text[48]; /* as written (cut, with "...", if longer) */
    bool fits;     /* in 64 bits: then value is it */
    bool used;     /* a setting's reader met it */
    long long value;
} odd_int_t;

typedef struct src {
    dp_workflow_t *wf;
    src_file_t files[MAX_INCLUDE_DEPTH + 1];
    int depth;          /* files[0 .. depth] are open; -1 once the stream ended */
    lex_state_t state;  /* libconfig's scanner's, carried from line to line */
    const char *state_file;
    int state_line;     /* where the string or comment began */
    bool bol;           /* at the start of a line (libconfig's ^) */
    unsigned nest;
    char open[MAX_NESTING + 1]; /* the brackets open: '{', '(' or '[' */
    unsigned out_line;  /* the stream's line being handed on */
    line_seg_t *segs;
    size_t nsegs, segcap;
    odd_int_t *odd;
    size_t nodd, oddcap;
    char *rewrite;      /* a line whose integers are handed over rewritten */
    size_t rwcap;
    const char *out;    /* what the next read hands on */
    size_t nout;
    unsigned long long total;
    char *err;          /* the mistake that ended the stream, malloc'd */
    bool oom;
} src_t;

static void src_fail(src_t *src, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void src_fail(src_t *src, const char *file, int line, const char *fmt, ...)
{
    if (src->err || src->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = dp__vasprintf(fmt, ap);
    va_end(ap);
    if (msg)
        src->err = line > 0 ? dp__asprintf("%s:%d: %s", file, line, msg) : dp__asprintf("%s: %s", file, msg);
    if (!src->err)
        src->oom = true;
    free(msg);
}

/* The file and line of the stream's line `line`. */
static void src_where(const src_t *src, unsigned line, const char **file, int *fline)
{
    size_t lo = 0, hi = src->nsegs; /* the last seg with from <= line */
    if (hi > 1) {
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (src->segs[mid].from <= line)
                lo = mid;
            else
                hi = mid;
        }
    }
    const line_seg_t *sg = &src->segs[lo];
    *file = sg->file;
    *fline = line >= sg->from ? sg->line + (int)(line - sg->from) : sg->line;
}

static bool src_seg(src_t *src, const char *file, int line)
{
    if (src->nsegs && src->segs[src->nsegs - 1].from == src->out_line)
        src->nsegs--; /* nothing of the previous one was handed on */
    if (src->nsegs == src->segcap) {
        size_t ncap = src->segcap ? src->segcap * 2 : 8;
        line_seg_t *ns = realloc(src->segs, ncap * sizeof *ns);
        if (!ns) {
            src->oom = true;
            return false;
        }
        src->segs = ns;
        src->segcap = ncap;
    }
    src->segs[src->nsegs++] = (line_seg_t){.from = src->out_line, .file = file, .line = line};
    return true;
}

/* Interns a file name so that jobs, plugins and messages can point at it. */
static const char *src_intern(src_t *src, const char *file)
{
    dp_workflow_t *wf = src->wf;
    if (strcmp(file, wf->path) == 0)
        return wf->path;
    for (size_t i = 0; i < wf->nfiles; i++)
        if (strcmp(wf->files[i], file) == 0)
            return wf->files[i];
    char **nf = realloc(wf->files, (wf->nfiles + 1) * sizeof *nf);
    if (nf)
        wf->files = nf;
    char *copy = nf ? dp__strdup(file) : NULL;
    if (!copy) {
        src->oom = true;
        return NULL;
    }
    wf->files[wf->nfiles++] = copy;
    return copy;
}

static const char *not_regular(mode_t mode)
{
    if (S_ISDIR(mode))
        return "it is a directory, not a regular file";
    if (S_ISFIFO(mode))
        return "it is a FIFO (named pipe), not a regular file";
    if (S_ISCHR(mode))
        return "it is a character device, not a regular file";
    if (S_ISBLK(mode))
        return "it is a block device, not a regular file";
    if (S_ISSOCK(mode))
        return "it is a socket, not a regular file";
    return "it is not a regular file";
}

/* Plain ASCII classes, as libconfig's scanner has them, whatever the locale. */
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_xdigit(char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_alpha(char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* Opens path for reading if it is a regular file; else -1 with why (static
 * text or strerror). Checked before and after the open: a FIFO would block
 * the open, a device may act on it. */
static int open_regular(const char *path, struct stat *st, const char **why)
{
    if (stat(path, st) != 0) {
        *why = strerror(errno);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        *why = not_regular(st->st_mode);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) { /* replaced in between */
        *why = S_ISREG(st->st_mode) ? strerror(errno) : not_regular(st->st_mode);
        close(fd);
        return -1;
    }
    return fd;
}

/* Makes files[depth + 1] the file at path, open as fd, read from the
 * stream's next line on; written: its name in the @include, if any. */
static bool src_push(src_t *src, const char *path, const char *written, int fd, const struct stat *st)
{
    const char *shown = src_intern(src, path);
    char *buf = malloc(65536), *w = written ? dp__strdup(written) : NULL;
    if (!shown || !buf || (written && !w)) {
        free(buf);
        free(w);
        close(fd);
        src->oom = true;
        return false;
    }
    src_file_t *f = &src->files[++src->depth];
    *f = (src_file_t){.fd = fd, .path = shown, .written = w, .dev = st->st_dev, .ino = st->st_ino, .line = 1,
                      .buf = buf, .cap = 65536};
    src->bol = true;
    return src_seg(src, shown, 1);
}

/* An @include at the start of a line: "[ \t]*@include[ \t]+\"PATH\"", as
 * libconfig's scanner has it (\\ and \" escaped in PATH). 1 if line is one
 * (the file is open, and what follows the closing quote is read after it),
 * 0 if it is not, -1 on a mistake. */
static int include_directive(src_t *src, src_file_t *f, const char *line, size_t n)
{
    const char *p = line, *end = line + n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if ((size_t)(end - p) < 9 || memcmp(p, "@include", 8) != 0 || (p[8] != ' ' && p[8] != '\t'))
        return 0;
    p += 8;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p != '"')
        return 0; /* '@' alone: lex refuses it */
    p++;
    char name[PATH_MAX];
    size_t len = 0;
    bool closed = false;
    while (p < end && *p != '\n') {
        char c = *p++;
        if (c == '"') {
            closed = true;
            break;
        }
        if (c == '\\') {
            if (p == end || (*p != '\\' && *p != '"'))
                break;
            c = *p++;
        }
        if (c == '\0')
            break;
        if (len + 1 >= sizeof name) {
            src_fail(src, f->path, f->line, "@include: the file name is longer than %zu bytes", sizeof name - 1);
            return -1;
        }
        name[len++] = c;
    }
    name[len] = '\0';
    if (!closed || !len) {
        src_fail(src, f->path, f->line, "@include needs a file name in double quotes on its line, such as "
                                        "@include \"jobs.cfg\" (\\\\ and \\\" are the only escapes)");
        return -1;
    }
    /* Relative to the including file's directory, as C's #include "...". */
    char *path;
    if (name[0] == '/')
        path = dp__strdup(name);
    else {
        const char *slash = strrchr(f->path, '/');
        path = !slash ? dp__strdup(name)
                      : dp__asprintf("%.*s/%s", (int)(slash == f->path ? 0 : slash - f->path), f->path, name);
    }
    if (!path) {
        src->oom = true;
        return -1;
    }
    if (src->depth >= MAX_INCLUDE_DEPTH) {
        src_fail(src, f->path, f->line, "@include \"%s\": includes are nested more than %d deep; daggerpool "
                                        "follows at most %d levels of @include", name, MAX_INCLUDE_DEPTH,
                 MAX_INCLUDE_DEPTH);
        free(path);
        return -1;
    }
    struct stat st;
    const char *why;
    int fd = open_regular(path, &st, &why);
    if (fd < 0) {
        src_fail(src, f->path, f->line, "@include \"%s\": cannot read %s: %s; an @include names a workflow "
                                        "file, relative to the including file's directory or absolute",
                 name, path, why);
        free(path);
        return -1;
    }
    for (int i = 0; i <= src->depth; i++)
        if (src->files[i].dev == st.st_dev && src->files[i].ino == st.st_ino) {
            src_fail(src, f->path, f->line, "@include \"%s\": %s is %s, which is being read: a file cannot "
                                            "include itself, directly or through others; remove this @include",
                     name, path, i == 0 ? "the workflow file" : "an included file");
            close(fd);
            free(path);
            return -1;
        }
    f->off += (size_t)(p - line); /* the rest of the line follows the included file */
    f->scanned = f->off;
    bool ok = src_push(src, path, name, fd, &st);
    free(path);
    if (ok)
        src->bol = true;
    return ok ? 1 : -1;
}

/* Ends the top file; its includer goes on after the @include. */
static bool src_pop(src_t *src)
{
    src_file_t *f = &src->files[src->depth];
    if (src->depth > 0 && (src->state == LX_STRING || src->state == LX_BLOCK_COMMENT)) {
        src_fail(src, src->state_file, src->state_line,
                 "this %s is not closed before the end of the included file %s; close it in the same file",
                 src->state == LX_STRING ? "string" : "/* comment", f->path);
        return false;
    }
    close(f->fd);
    free(f->buf);
    free(f->written);
    f->buf = f->written = NULL;
    if (src->depth-- == 0)
        return true;
    src_file_t *up = &src->files[src->depth];
    if (!src->bol) { /* the included file's last line, ended */
        src->out = "\n";
        src->nout = 1;
        src->out_line++;
        if (src->state == LX_LINE_COMMENT)
            src->state = LX_CODE;
    }
    src->bol = false;
    return src_seg(src, up->path, up->line);
}

/* Makes buf[off ..] hold the file's next line, '\n' included, or the rest of
 * the file; *n its length (0: the file is done). */
static bool line_ready(src_t *src, src_file_t *f, size_t *n)
{
    for (;;) {
        const char *nl = memchr(f->buf + f->scanned, '\n', f->len - f->scanned);
        if (nl) {
            *n = (size_t)(nl + 1 - (f->buf + f->off));
            return true;
        }
        f->scanned = f->len;
        if (f->eof) {
            *n = f->len - f->off;
            return true;
        }
        if (f->off) {
            memmove(f->buf, f->buf + f->off, f->len - f->off);
            f->len -= f->off;
            f->scanned -= f->off;
            f->off = 0;
        }
        if (f->len == f->cap) { /* a long line */
            char *nb = realloc(f->buf, f->cap * 2);
            if (!nb) {
                src->oom = true;
                return false;
            }
            f->buf = nb;
            f->cap *= 2;
        }
        ssize_t r = read(f->fd, f->buf + f->len, f->cap - f->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            const src_file_t *up = src->depth ? &src->files[src->depth - 1] : NULL;
            if (!up)
                src_fail(src, f->path, 0, "cannot read the workflow file: %s", strerror(errno));
            else /* up is still at its @include */
                src_fail(src, up->path, up->line, "@include \"%s\": cannot read %s: %s", f->written, f->path,
                         strerror(errno));
            return false;
        }
        if (r == 0)
            f->eof = true;
        f->len += (size_t)r;
        src->total += (size_t)r;
        if (src->total > MAX_WORKFLOW_BYTES) {
            src_fail(src, f->path, f->line, "the workflow is larger than %d MiB (with its includes); daggerpool "
                                            "reads at most %d MiB of workflow files", MAX_WORKFLOW_MIB,
                     MAX_WORKFLOW_MIB);
            return false;
        }
    }
}

/* Whether libconfig reads the integer literal as written: in 32 bits
 * without L, in 64 with it (scanner.l's {integer}, {integer64}, {hex},
 * {hex64}). tok: [-+]?digits or 0x..., without the L. */
static bool int_literal(const char *tok, size_t len, bool hex, long long *value)
{
    const char *p = tok, *end = tok + len;
    bool neg = false;
    if (!hex && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    if (hex)
        p += 2;
    unsigned long long mag = 0, base = hex ? 16 : 10;
    for (; p < end; p++) {
        unsigned d = *p <= '9' ? (unsigned)(*p - '0') : (unsigned)((*p | 0x20) - 'a' + 10);
        if (mag > (ULLONG_MAX - d) / base)
            return false;
        mag = mag * base + d;
    }
    if (neg ? mag > (unsigned long long)LLONG_MAX + 1 : mag > (unsigned long long)LLONG_MAX)
        return false;
    *value = neg ? (long long)(0 - mag) : (long long)mag;
    return true;
}

/* One number token of libconfig's scanner at p (its longest match): its
 * length; *int_len the length of an integer's digits (0 for a float) and
 * *l whether an L or LL follows them. */
static size_t number_token(const char *p, const char *end, size_t *int_len, bool *hex, bool *l)
{
    const char *q = p;
    *int_len = 0;
    *hex = *l = false;
    if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && is_xdigit(p[2])) {
        q = p + 2;
        while (q < end && is_xdigit(*q))
            q++;
        *hex = true;
    } else {
        if (*q == '-' || *q == '+')
            q++;
        const char *digits = q;
        while (q < end && is_digit(*q))
            q++;
        bool has_digits = q > digits, is_float = false;
        if (q < end && *q == '.') {
            is_float = true;
            for (q++; q < end && is_digit(*q);)
                q++;
        }
        if ((has_digits || is_float) && q < end && (*q == 'e' || *q == 'E')) {
            const char *e = q + 1;
            if (e < end && (*e == '-' || *e == '+'))
                e++;
            if (e < end && is_digit(*e)) {
                while (e < end && is_digit(*e))
                    e++;
                q = e;
                is_float = true;
            }
        }
        if (is_float || !has_digits)
            return (size_t)(q - p) ? (size_t)(q - p) : 1;
    }
    *int_len = (size_t)(q - p);
    if (q < end && *q == 'L') {
        *l = true;
        q++;
        if (q < end && *q == 'L')
            q++;
    }
    return (size_t)(q - p);
}

/* Appends text to the rewritten line. */
static bool rw_add(src_t *src, size_t *used, const char *text, size_t len)
{
    if (*used + len + 1 > src->rwcap) {
        size_t ncap = src->rwcap ? src->rwcap : 256;
        while (ncap < *used + len + 1)
            ncap *= 2;
        char *nb = realloc(src->rewrite, ncap);
        if (!nb) {
            src->oom = true;
            return false;
        }
        src->rewrite = nb;
        src->rwcap = ncap;
    }
    memcpy(src->rewrite + *used, text, len);
    *used += len;
    return true;
}

/* The integer literal tok (len bytes, L suffix excluded) of line, as
 * libconfig should read it: NULL when it does already, else the text to
 * hand over instead (in buf). */
static const char *odd_integer(src_t *src, src_file_t *f, const char *tok, size_t len, bool hex, bool l,
                               size_t toklen, char *buf, size_t buflen)
{
    long long v = 0;
    bool fits = int_literal(tok, len, hex, &v);
    bool exact = fits && (l || (v >= INT_MIN && v <= INT_MAX));
    bool standin = fits && v < LLONG_MIN + MAX_ODD_INTS; /* looks like one: handed over as one */
    /* An array's items have one type: a rewritten one would make libconfig
     * refuse the array. No array of integers is read; one beyond 64 bits is
     * refused (report_odd_ints), as written. */
    bool in_array = src->nest && src->open[src->nest - 1] == '[';
    if ((exact && !standin) || (in_array && fits))
        return NULL;
    if (fits && !standin) { /* in 64 bits: libconfig reads it so with an L */
        snprintf(buf, buflen, "%lldL", v);
        return buf;
    }
    if (src->nodd == MAX_ODD_INTS) {
        src_fail(src, f->path, f->line, "more than %d integers beyond 64 bits (or near its lowest value); "
                                        "write them as strings", MAX_ODD_INTS);
        return NULL;
    }
    if (src->nodd == src->oddcap) {
        size_t ncap = src->oddcap ? src->oddcap * 2 : 8;
        odd_int_t *no = realloc(src->odd, ncap * sizeof *no);
        if (!no) {
            src->oom = true;
            return NULL;
        }
        src->odd = no;
        src->oddcap = ncap;
    }
    odd_int_t *o = &src->odd[src->nodd];
    *o = (odd_int_t){.file = f->path, .line = f->line, .fits = fits, .value = v};
    if (toklen < sizeof o->text)
        memcpy(o->text, tok, toklen);
    else
        snprintf(o->text, sizeof o->text, "%.*s...", (int)sizeof o->text - 4, tok);
    if (in_array) {
        src->nodd++; /* recorded, handed over as it is */
        return NULL;
    }
    snprintf(buf, buflen, "%lldL", LLONG_MIN + (long long)src->nodd++);
    return buf;
}

/* Lexes one line (or the rest of one) of the top file as libconfig's
 * scanner would, and makes it (its integers rewritten where needed) what
 * the stream hands on next. */
static bool lex_line(src_t *src, src_file_t *f, const char *line, size_t n)
{
    const char *p = line, *end = line + n, *copied = line;
    size_t used = 0;
    bool rewritten = false;
    /* libconfig would cut a string at a NUL, or call it garbage. */
    if (memchr(line, '\0', n)) {
        src_fail(src, f->path, f->line, "a NUL byte; a workflow file is text");
        return false;
    }
    while (p < end) {
        switch (src->state) {
        case LX_STRING:
            while (p < end && *p != '"' && *p != '\\')
                p++;
            if (p == end)
                continue;
            if (*p == '"')
                src->state = LX_CODE;
            else if (p + 1 < end && (p[1] == '"' || p[1] == '\\'))
                p++;
            p++;
            continue;
        case LX_BLOCK_COMMENT:
            while (p < end && *p != '*')
                p++;
            if (p + 1 < end && p[1] == '/') {
                src->state = LX_CODE;
                p++;
            }
            if (p < end)
                p++;
            continue;
        case LX_LINE_COMMENT: /* to the end of the line: the end of this piece */
            p = end;
            if (end[-1] == '\n')
                src->state = LX_CODE;
            continue;
        case LX_CODE: break;
        }
        char c = *p;
        if (c == '"' || c == '#' || (c == '/' && p + 1 < end && (p[1] == '*' || p[1] == '/'))) {
            src->state = c == '"' ? LX_STRING : c == '/' && p[1] == '*' ? LX_BLOCK_COMMENT : LX_LINE_COMMENT;
            src->state_file = f->path;
            src->state_line = f->line;
            p += c == '/' ? 2 : 1;
            continue;
        }
        if (c == '{' || c == '(' || c == '[') {
            src->open[src->nest < MAX_NESTING ? src->nest : MAX_NESTING] = c;
            if (++src->nest > MAX_NESTING) {
                src_fail(src, f->path, f->line, "groups, lists and arrays are nested more than %d deep here; "
                                                "daggerpool reads at most %d levels of { }, ( ) and [ ]",
                         MAX_NESTING, MAX_NESTING);
                return false;
            }
        } else if (c == '}' || c == ')' || c == ']') {
            if (src->nest)
                src->nest--;
        } else if (c == '@') {
            src_fail(src, f->path, f->line, "syntax error at '@': the only use of '@' is @include \"FILE\" at the "
                                            "start of a line");
            return false;
        } else if (is_alpha(c) || c == '*') { /* a name, digits and all */
            for (p++; p < end && (is_alpha(*p) || is_digit(*p) || *p == '-' || *p == '_' || *p == '*');)
                p++;
            continue;
        } else if (is_digit(c) || c == '.' ||
                   ((c == '-' || c == '+') && p + 1 < end && (is_digit(p[1]) || p[1] == '.'))) {
            size_t int_len;
            bool hex, l;
            size_t len = number_token(p, end, &int_len, &hex, &l);
            char buf[64];
            const char *with = int_len ? odd_integer(src, f, p, int_len, hex, l, len, buf, sizeof buf) : NULL;
            if (src->err || src->oom)
                return false;
            if (with) {
                if (!rw_add(src, &used, copied, (size_t)(p - copied)) || !rw_add(src, &used, with, strlen(with)))
                    return false;
                copied = p + len;
                rewritten = true;
            }
            p += len;
            continue;
        }
        p++;
    }
    if (rewritten && !rw_add(src, &used, copied, (size_t)(end - copied)))
        return false;
    src->out = rewritten ? src->rewrite : line;
    src->nout = rewritten ? used : n;
    f->off += n;
    f->scanned = f->off > f->scanned ? f->off : f->scanned;
    src->bol = line[n - 1] == '\n';
    if (src->bol) {
        f->line++;
        src->out_line++;
    }
    return true;
}

/* The next piece of the stream into out/nout; false at its end. */
static bool src_next(src_t *src)
{
    while (src->depth >= 0 && !src->err && !src->oom) {
        src_file_t *f = &src->files[src->depth];
        size_t n;
        if (!line_ready(src, f, &n))
            return false;
        if (n == 0) {
            if (!src_pop(src))
                return false;
            if (src->nout)
                return true;
            continue;
        }
        const char *line = f->buf + f->off;
        if (src->bol && src->state == LX_CODE) {
            int r = include_directive(src, f, line, n);
            if (r < 0)
                return false;
            if (r > 0)
                continue;
        }
        return lex_line(src, f, line, n);
    }
    return false;
}

/* fopencookie's read: never an error (flex would call exit(2)); a mistake
 * ends the stream, and src->err says what it was. */
static ssize_t src_read(void *cookie, char *buf, size_t size)
{
    src_t *src = cookie;
    size_t done = 0;
    while (done < size) {
        if (!src->nout && !src_next(src))
            break;
        size_t n = src->nout < size - done ? src->nout : size - done;
        memcpy(buf + done, src->out, n);
        src->out += n;
        src->nout -= n;
        done += n;
    }
    return (ssize_t)done;
}

/* Opens the workflow file; false with err set. */
static bool src_open(src_t *src, dp_workflow_t *wf, char *err, size_t errlen)
{
    memset(src, 0, sizeof *src);
    src->wf = wf;
    src->depth = -1;
    src->out_line = 1;
    struct stat st;
    const char *why;
    int fd = open_regular(wf->path, &st, &why);
    if (fd < 0) {
        dp__seterr(err, errlen, DP_ECONFIG, "%s: cannot read the workflow file: %s", wf->path, why);
        return false;
    }
    if (!src_push(src, wf->path, NULL, fd, &st)) {
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory reading %s", wf->path);
        return false;
    }
    return true;
}

static void src_close(src_t *src)
{
    for (; src->depth >= 0; src->depth--) {
        close(src->files[src->depth].fd);
        free(src->files[src->depth].buf);
        free(src->files[src->depth].written);
    }
    free(src->segs);
    free(src->odd);
    free(src->rewrite);
    free(src->err);
}

/* ------------------------------------------------------------------------ */
/* Suggestions                                                               */
/* ------------------------------------------------------------------------ */

const char *dp__nearest_word(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    for (size_t i = 0; candidates && candidates[i]; i++) {
        size_t d = dp__edit_distance(word, candidates[i]);
        if (d < bestd) {
            bestd = d;
            best = candidates[i];
        }
    }
    /* A typo is a couple of edits, more in a long word, or a word whose
     * beginning is right ("retry" for "retries"); beyond that the
     * suggestion would only confuse. */
    size_t len = strlen(word), limit = len / 3 > 2 ? len / 3 : 2;
    if (!best)
        return NULL;
    size_t prefix = 0;
    while (word[prefix] && word[prefix] == best[prefix])
        prefix++;
    return (bestd <= limit && bestd < len) || prefix >= 4 ? best : NULL;
}

/* ------------------------------------------------------------------------ */
/* Reading settings                                                          */
/* ------------------------------------------------------------------------ */

/* A dependency on a name that is no job's (yet: reported by check_names). */
typedef struct wf_unknown {
    uint32_t job;     /* index in wf->jobs */
    const char *name; /* libconfig's: valid only while the file is read */
    const char *file;
    int line;
} wf_unknown_t;

typedef struct reader {
    dp_workflow_t *wf;
    problems_t *pr;
    src_t *src;     /* the stream libconfig read: its lines' files, odd integers */
    bool oom;
    bool dropped;   /* a job could not be read (no usable name) */
    bool dups;      /* two jobs have one name */
    size_t next;    /* the index read_job gives the next readable job */
    uint32_t *mark; /* by job index: the last job + 1 whose depends_on named it */
    wf_unknown_t *unknown;
    size_t nunknown, unknown_cap;
    const dp_job_spec_t *last_spec; /* the last job's settings, if not spec0 */
    size_t specs_cap;
} reader_t;

/* Job names: in the workflow's string arena, freed with the workflow. */
static char *copy_name(reader_t *rd, const char *name)
{
    char *out = dp__strarena_copy(&rd->wf->names, name);
    if (!out)
        rd->oom = true;
    return out;
}

/* One copy per distinct type: many jobs, few types. */
static const char *intern_type(reader_t *rd, const char *type)
{
    dp_workflow_t *wf = rd->wf;
    for (size_t i = wf->ntypes; i-- > 0;)
        if (strcmp(wf->types[i], type) == 0)
            return wf->types[i];
    char **nt = realloc(wf->types, (wf->ntypes + 1) * sizeof *nt);
    if (nt)
        wf->types = nt;
    if (!nt || !(nt[wf->ntypes] = dp__strdup(type))) {
        rd->oom = true;
        return NULL;
    }
    return nt[wf->ntypes++];
}

static const char *file_of(reader_t *rd, const config_setting_t *s)
{
    if (!s || rd->src->nsegs < 2)
        return rd->wf->path;
    const char *file;
    int line;
    src_where(rd->src, config_setting_source_line(s), &file, &line);
    return file;
}

static int line_of(reader_t *rd, const config_setting_t *s)
{
    if (!s)
        return 0;
    if (rd->src->nsegs < 2)
        return (int)config_setting_source_line(s);
    const char *file;
    int line;
    src_where(rd->src, config_setting_source_line(s), &file, &line);
    return line;
}

#define PROBLEM(rd, s, ...) problem((rd)->pr, file_of(rd, s), line_of(rd, s), __VA_ARGS__)

static const char *type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP: return "a group { ... }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array [ ... ]";
    case CONFIG_TYPE_LIST: return "a list ( ... )";
    default: return "nothing";
    }
}

static bool is_int(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static bool in_list(const char *key, const char *const *list)
{
    for (size_t k = 0; list[k]; k++)
        if (strcmp(key, list[k]) == 0)
            return true;
    return false;
}

/* Refuses member m, whose key is not in known, suggesting the nearest
 * known key. where: "in job 'B'" and the like. */
static void unknown_key(reader_t *rd, const config_setting_t *m, const char *const *known, const char *where)
{
    const char *key = config_setting_name(m);
    char list[256] = "";
    size_t used = 0;
    for (size_t k = 0; known[k]; k++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", known[k]);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    const char *near = dp__nearest_word(key, known);
    if (near)
        PROBLEM(rd, m, "unknown key '%s' %s; did you mean '%s'? (known keys: %s)", key, where, near, list);
    else
        PROBLEM(rd, m, "unknown key '%s' %s; known keys: %s", key, where, list);
}

static void check_keys(reader_t *rd, const config_setting_t *group, const char *const *known, const char *where)
{
    for (int i = 0; i < config_setting_length(group); i++) {
        const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
        if (!in_list(config_setting_name(m), known))
            unknown_key(rd, m, known, where);
    }
}

/* An integer setting's value as written: true with *v, or false with
 * *text, the value as written, for one beyond 64 bits. The stream handed
 * libconfig a stand-in (LLONG_MIN + its index in src->odd) for each integer
 * it would have misread (see odd_integer). */
static bool int_value(reader_t *rd, const config_setting_t *s, long long *v, const char **text)
{
    long long x = config_setting_get_int64(s);
    src_t *src = rd->src;
    if (src->nodd && x < LLONG_MIN + (long long)src->nodd) {
        odd_int_t *o = &src->odd[(unsigned long long)x - (unsigned long long)LLONG_MIN];
        o->used = true;
        if (!o->fits) {
            *text = o->text;
            return false;
        }
        x = o->value;
    }
    *v = x;
    return true;
}

/* Integers beyond 64 bits that no setting's reader met (in a list, under
 * an unknown key): refused all the same. */
static void report_odd_ints(reader_t *rd)
{
    for (size_t i = 0; i < rd->src->nodd; i++) {
        const odd_int_t *o = &rd->src->odd[i];
        if (!o->fits && !o->used)
            problem(rd->pr, o->file, o->line, "integer %s is out of range: integers are 64-bit, from %lld to %lld",
                    o->text, LLONG_MIN, LLONG_MAX);
    }
}

/* Each getter: false (and a problem reported) when s has the wrong type or
 * value; *out untouched then. */

static bool get_string(reader_t *rd, const config_setting_t *s, const char *what, const char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        PROBLEM(rd, s, "%s must be a string in double quotes, found %s", what, type_name(s));
        return false;
    }
    *out = config_setting_get_string(s);
    return true;
}

static bool get_bool(reader_t *rd, const config_setting_t *s, const char *what, bool *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        PROBLEM(rd, s, "%s must be a boolean (true or false), found %s", what, type_name(s));
        return false;
    }
    *out = config_setting_get_bool(s);
    return true;
}

static bool get_uint(reader_t *rd, const config_setting_t *s, const char *what, long long min, long long max,
                     unsigned *out)
{
    if (!is_int(s)) {
        PROBLEM(rd, s, "%s must be an integer, found %s", what, type_name(s));
        return false;
    }
    long long v;
    const char *text;
    if (!int_value(rd, s, &v, &text)) {
        PROBLEM(rd, s, "%s must be between %lld and %lld, found %s", what, min, max, text);
        return false;
    }
    if (v < min || v > max) {
        PROBLEM(rd, s, "%s must be between %lld and %lld, found %lld", what, min, max, v);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

static bool get_float(reader_t *rd, const config_setting_t *s, const char *what, double min, double max,
                      double *out)
{
    double v;
    long long iv;
    const char *text;
    if (is_int(s) && !int_value(rd, s, &iv, &text)) {
        PROBLEM(rd, s, "%s must be between %g and %g, found %s", what, min, max, text);
        return false;
    }
    if (is_int(s))
        v = (double)iv;
    else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else {
        PROBLEM(rd, s, "%s must be a number, found %s", what, type_name(s));
        return false;
    }
    if (!(v >= min && v <= max)) {
        PROBLEM(rd, s, "%s must be between %g and %g, found %g", what, min, max, v);
        return false;
    }
    *out = v;
    return true;
}

/* A duration: an integer of milliseconds or a string such as "30s". */
static bool get_duration(reader_t *rd, const config_setting_t *s, const char *what, uint64_t *out)
{
    if (is_int(s)) {
        long long v;
        const char *text;
        if (!int_value(rd, s, &v, &text)) {
            PROBLEM(rd, s, "%s must be at most %lld milliseconds, found %s; write a smaller integer or a string "
                           "such as \"30s\" or \"1h30m\"", what, LLONG_MAX, text);
            return false;
        }
        if (v < 0) {
            PROBLEM(rd, s, "%s must not be negative, found %lld; write 0 or more milliseconds, or a string "
                           "such as \"30s\"", what, v);
            return false;
        }
        *out = (uint64_t)v;
        return true;
    }
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        char msg[512];
        uint64_t ms;
        if (dp_duration_parse(config_setting_get_string(s), &ms, msg, sizeof msg) != DP_OK) {
            PROBLEM(rd, s, "%s: %s", what, msg);
            return false;
        }
        *out = ms;
        return true;
    }
    PROBLEM(rd, s, "%s must be a duration: an integer of milliseconds or a string such as \"30s\" or \"1h30m\", "
                   "found %s", what, type_name(s));
    return false;
}

/* An array or list of strings (a single string is one item when
 * single_ok). Returns a malloc'd array of the strings (not copied; owned by
 * libconfig) and their settings; NULL items on failure. */
static bool get_string_list(reader_t *rd, const config_setting_t *s, const char *what, bool single_ok,
                            const config_setting_t ***items, size_t *n)
{
    int t = config_setting_type(s);
    if (single_ok && t == CONFIG_TYPE_STRING) {
        *items = malloc(sizeof **items);
        if (!*items) {
            rd->oom = true;
            return false;
        }
        (*items)[0] = s;
        *n = 1;
        return true;
    }
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
        PROBLEM(rd, s, "%s must be a list of strings such as [ \"a\", \"b\" ], found %s", what, type_name(s));
        return false;
    }
    int len = config_setting_length(s);
    *items = calloc(len ? (size_t)len : 1, sizeof **items);
    if (!*items) {
        rd->oom = true;
        return false;
    }
    bool ok = true;
    for (int i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            PROBLEM(rd, e, "%s must be a list of strings such as [ \"a\", \"b\" ]; item %d is %s", what, i + 1,
                    type_name(e));
            ok = false;
        }
        (*items)[i] = e;
    }
    if (!ok) {
        free(*items);
        *items = NULL;
        return false;
    }
    *n = (size_t)len;
    return true;
}

/* A path from the file, relative to the file's directory unless absolute. */
static char *resolve_path(reader_t *rd, const char *p)
{
    char *out = p[0] == '/' ? dp__strdup(p) : dp__asprintf("%s/%s", rd->wf->dir, p);
    if (!out)
        rd->oom = true;
    return out;
}

/* ------------------------------------------------------------------------ */
/* Params                                                                    */
/* ------------------------------------------------------------------------ */

static void params_from_group(reader_t *rd, const config_setting_t *g, dp_params_t *p, const char *job,
                              const config_setting_t *skip_if_in);

/* Converts one libconfig value into key of p. */
static void param_value(reader_t *rd, const config_setting_t *m, dp_params_t *p, const char *job)
{
    const char *key = config_setting_name(m);
    int rc = DP_OK;
    switch (config_setting_type(m)) {
    case CONFIG_TYPE_STRING: rc = dp_params_set_string(p, key, config_setting_get_string(m)); break;
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: {
        long long v;
        const char *text;
        if (!int_value(rd, m, &v, &text)) {
            PROBLEM(rd, m, "params.%s of job '%s' is out of range: found %s; integers are 64-bit, from %lld to "
                           "%lld", key, job, text, LLONG_MIN, LLONG_MAX);
            return;
        }
        rc = dp_params_set_int(p, key, (int64_t)v);
        break;
    }
    case CONFIG_TYPE_FLOAT: rc = dp_params_set_float(p, key, config_setting_get_float(m)); break;
    case CONFIG_TYPE_BOOL: rc = dp_params_set_bool(p, key, config_setting_get_bool(m)); break;
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        const config_setting_t **items = NULL;
        size_t n = 0;
        char what[256];
        snprintf(what, sizeof what, "params.%s of job '%s'", key, job);
        if (!get_string_list(rd, m, what, false, &items, &n))
            return;
        const char **strs = calloc(n ? n : 1, sizeof *strs);
        if (!strs) {
            free(items);
            rd->oom = true;
            return;
        }
        for (size_t i = 0; i < n; i++)
            strs[i] = config_setting_get_string(items[i]);
        rc = dp_params_set_list(p, key, strs, n);
        free(strs);
        free(items);
        break;
    }
    case CONFIG_TYPE_GROUP: {
        dp_params_t *sub = dp_params_add_group(p, key);
        if (!sub) {
            rc = DP_ENOMEM;
            break;
        }
        dp_params_set_origin(sub, file_of(rd, m), line_of(rd, m));
        params_from_group(rd, m, sub, job, NULL);
        break;
    }
    default: PROBLEM(rd, m, "params.%s of job '%s' has an unsupported type", key, job); return;
    }
    if (rc == DP_ENOMEM)
        rd->oom = true;
    else if (rc != DP_OK)
        PROBLEM(rd, m, "params.%s of job '%s' was refused: %s", key, job, dp_strerror(rc));
}

/* Every member of g into p, except those also present in skip_if_in (the
 * job's own params, which win over the defaults'). */
static void params_from_group(reader_t *rd, const config_setting_t *g, dp_params_t *p, const char *job,
                              const config_setting_t *skip_if_in)
{
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        if (skip_if_in && config_setting_get_member(skip_if_in, config_setting_name(m)))
            continue;
        param_value(rd, m, p, job);
    }
}

/* ------------------------------------------------------------------------ */
/* Sections                                                                  */
/* ------------------------------------------------------------------------ */

static const char *const top_keys[] = {"workflow", "plugins", "defaults", "jobs", NULL};
static const char *const workflow_keys[] = {"name", "max_concurrent_jobs", "timeout", "fail_fast", "plugin_path",
                                            NULL};
static const char *const job_keys[] = {"name",    "type",    "params",    "depends_on", "timeout",
                                       "retries", "backoff", "readiness", "isolation",  "limits", NULL};
static const char *const default_keys[] = {"type",      "params",    "timeout", "retries",
                                           "backoff",   "readiness", "isolation", "limits", NULL};
static const char *const limits_keys[] = {"cpu", "memory", "open_files", NULL};
static const char *const backoff_keys[] = {"initial", "factor", "max", "jitter", NULL};
static const char *const readiness_keys[] = {"period", "probe_timeout", "timeout", NULL};
static const char *const plugin_keys[] = {"path", NULL};

/* Names are the result's JSON keys and words in messages: UTF-8 text, or
 * two of them could become one ("a\xff" and "a\xfe" are both "a\uFFFD"). */
static bool utf8_ok(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    while (*p && *p < 0x80) /* the usual name: ASCII */
        p++;
    return !*p || dp__utf8_valid((const char *)p);
}

/* Refuses name, which is not UTF-8; lead: "workflow.name is". */
static void not_utf8(reader_t *rd, const config_setting_t *s, const char *lead, const char *name)
{
    char *shown = dp__text_escape(name);
    if (!shown)
        rd->oom = true;
    else
        PROBLEM(rd, s, "%s \"%s\", which is not valid UTF-8; names must be UTF-8 text", lead, shown);
    free(shown);
}

static bool require_group(reader_t *rd, const config_setting_t *s, const char *what, const char *example)
{
    if (config_setting_type(s) == CONFIG_TYPE_GROUP)
        return true;
    PROBLEM(rd, s, "%s must be a group such as %s, found %s", what, example, type_name(s));
    return false;
}

static void read_workflow(reader_t *rd, const config_setting_t *w)
{
    dp_workflow_t *wf = rd->wf;
    if (!require_group(rd, w, "'workflow'", "workflow: { name = \"deploy\"; }"))
        return;
    check_keys(rd, w, workflow_keys, "in 'workflow'");
    const config_setting_t *s;
    const char *str;
    if ((s = config_setting_get_member(w, "name")) && get_string(rd, s, "workflow.name", &str)) {
        if (!*str)
            PROBLEM(rd, s, "workflow.name must not be empty");
        else if (!utf8_ok(str))
            not_utf8(rd, s, "workflow.name is", str);
        else {
            free(wf->name);
            if (!(wf->name = dp__strdup(str)))
                rd->oom = true;
        }
    }
    if ((s = config_setting_get_member(w, "max_concurrent_jobs")))
        get_uint(rd, s, "workflow.max_concurrent_jobs", 1, 100000, &wf->max_concurrent_jobs);
    if ((s = config_setting_get_member(w, "timeout")))
        get_duration(rd, s, "workflow.timeout", &wf->timeout_ms);
    if ((s = config_setting_get_member(w, "fail_fast")))
        get_bool(rd, s, "workflow.fail_fast", &wf->fail_fast);
    if ((s = config_setting_get_member(w, "plugin_path"))) {
        const config_setting_t **items = NULL;
        size_t n = 0;
        if (get_string_list(rd, s, "workflow.plugin_path", true, &items, &n)) {
            wf->plugin_path = calloc(n ? n : 1, sizeof *wf->plugin_path);
            if (!wf->plugin_path)
                rd->oom = true;
            for (size_t i = 0; wf->plugin_path && i < n; i++) {
                const char *dir = config_setting_get_string(items[i]);
                if (!*dir) {
                    PROBLEM(rd, items[i], "workflow.plugin_path has an empty directory name");
                    continue;
                }
                char *r = resolve_path(rd, dir);
                if (r)
                    wf->plugin_path[wf->n_plugin_path++] = r;
            }
            free(items);
        }
    }
}

static void read_plugins(reader_t *rd, const config_setting_t *ps)
{
    dp_workflow_t *wf = rd->wf;
    if (!require_group(rd, ps, "'plugins'", "plugins = { custom = { path = \"lib/custom.so\"; }; }"))
        return;
    int n = config_setting_length(ps);
    wf->plugins = calloc(n ? (size_t)n : 1, sizeof *wf->plugins);
    if (!wf->plugins) {
        rd->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *p = config_setting_get_elem(ps, (unsigned)i);
        const char *name = config_setting_name(p);
        char what[256];
        snprintf(what, sizeof what, "plugins.%s", name);
        if (!require_group(rd, p, what, "{ path = \"lib/custom.so\"; }"))
            continue;
        char where[256];
        snprintf(where, sizeof where, "in plugins.%s", name);
        check_keys(rd, p, plugin_keys, where);
        const config_setting_t *ps_path = config_setting_get_member(p, "path");
        const char *path;
        if (!ps_path) {
            PROBLEM(rd, p, "plugins.%s needs a path, e.g. %s = { path = \"lib/%s.so\"; }", name, name, name);
            continue;
        }
        snprintf(what, sizeof what, "plugins.%s.path", name);
        if (!get_string(rd, ps_path, what, &path))
            continue;
        wf_plugin_t *pl = &wf->plugins[wf->nplugins];
        pl->name = dp__strdup(name);
        pl->path = resolve_path(rd, path);
        pl->file = file_of(rd, p);
        pl->line = line_of(rd, p);
        if (!pl->name || !pl->path) {
            free(pl->name);
            free(pl->path);
            rd->oom = true;
            continue;
        }
        wf->nplugins++;
    }
}

/* A sub-group setting (backoff, readiness) field by field: the job's group
 * member, else the default group's. */
static const config_setting_t *field(const config_setting_t *jg, const config_setting_t *dg, const char *key)
{
    const config_setting_t *s = jg ? config_setting_get_member(jg, key) : NULL;
    if (!s && dg)
        s = config_setting_get_member(dg, key);
    return s;
}

static bool usable_group(reader_t *rd, const config_setting_t *g, const char *what, const char *example,
                         const char *const *keys, const char *where)
{
    if (!g)
        return false;
    if (!require_group(rd, g, what, example))
        return false;
    check_keys(rd, g, keys, where);
    return true;
}

/* A job's settings by key, in the order of job_keys: one pass over the
 * group's members instead of a lookup (a linear scan) per key. */
enum { K_NAME, K_TYPE, K_PARAMS, K_DEPENDS_ON, K_TIMEOUT, K_RETRIES, K_BACKOFF, K_READINESS, K_ISOLATION,
       K_LIMITS, K_COUNT };

typedef struct slots {
    const config_setting_t *s[K_COUNT];
} slots_t;

/* Fills sl from group g; false if g has a key not in job_keys. */
static bool fill_slots(const config_setting_t *g, slots_t *sl)
{
    memset(sl, 0, sizeof *sl);
    bool known = true;
    int n = g ? config_setting_length(g) : 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *key = config_setting_name(m);
        int k = 0;
        /* The first letter before strcmp: ten keys, a million members. */
        while (k < K_COUNT && (key[0] != job_keys[k][0] || strcmp(key, job_keys[k]) != 0))
            k++;
        if (k < K_COUNT)
            sl->s[k] = m;
        else
            known = false;
    }
    return known;
}

/* The job named name (the first of that name), or -1; h: dp__hash_fnv1a(name). */
static long index_find_h(const dp_workflow_t *wf, const char *name, uint64_t h)
{
    if (!wf->index)
        return -1;
    for (size_t i = h & wf->index_mask;; i = (i + 1) & wf->index_mask) {
        const struct name_slot *sl = &wf->index[i];
        if (!sl->name)
            return -1;
        if (sl->tag == (uint32_t)(h >> 32) && strcmp(sl->name, name) == 0)
            return (long)sl->id;
    }
}

static long index_find(const dp_workflow_t *wf, const char *name)
{
    return index_find_h(wf, name, dp__hash_fnv1a(name));
}

/* A job group's name setting and name, or why the job cannot be read (and
 * is dropped): one answer for the index and for read_job. */
typedef enum { JN_OK, JN_NOT_GROUP, JN_NO_NAME, JN_NOT_STRING, JN_EMPTY } job_name_t;

static job_name_t job_name(const config_setting_t *js, const config_setting_t **ns, const char **name)
{
    *ns = NULL;
    *name = NULL;
    if (config_setting_type(js) != CONFIG_TYPE_GROUP)
        return JN_NOT_GROUP;
    if (!(*ns = config_setting_get_member(js, "name")))
        return JN_NO_NAME;
    if (config_setting_type(*ns) != CONFIG_TYPE_STRING)
        return JN_NOT_STRING;
    *name = config_setting_get_string(*ns);
    return **name ? JN_OK : JN_EMPTY;
}

/* Before the jobs are read: every readable job gets its index in wf->jobs,
 * its name (copied), file and line, and its place in the name index, so
 * that read_job resolves each dependency as it reads it. Reports nothing:
 * read_job reports, in file order. */
static void index_jobs(reader_t *rd, const config_setting_t *jobs, size_t n)
{
    dp_workflow_t *wf = rd->wf;
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    if (!(wf->index = calloc(cap, sizeof *wf->index))) {
        rd->oom = true;
        return;
    }
    wf->index_mask = cap - 1;
    for (size_t i = 0; i < n && !rd->oom; i++) {
        const config_setting_t *js = config_setting_get_elem(jobs, (unsigned)i), *ns;
        const char *name;
        if (job_name(js, &ns, &name) != JN_OK)
            continue;
        wf_job_t *job = &wf->jobs[wf->njobs];
        job->file = file_of(rd, js);
        job->line = line_of(rd, js);
        if (!(job->name = copy_name(rd, name)))
            return;
        uint32_t k = (uint32_t)wf->njobs++;
        uint64_t hash = dp__hash_fnv1a(name);
        for (size_t h = hash & wf->index_mask;; h = (h + 1) & wf->index_mask) {
            struct name_slot *sl = &wf->index[h];
            if (!sl->name) {
                *sl = (struct name_slot){.name = job->name, .id = k, .tag = (uint32_t)(hash >> 32)};
                break;
            }
            if (sl->tag == (uint32_t)(hash >> 32) && strcmp(sl->name, name) == 0) {
                rd->dups = true; /* the first one stays in the index */
                break;
            }
        }
    }
}

/* Names in a job's depends_on that name no job (yet): checked for repeats
 * among themselves (a hash for a long list rather than a comparison with
 * each) and reported by check_names. */
typedef struct dep_set {
    uint32_t *slot; /* index in rd->unknown + 1 */
    size_t cap;
} dep_set_t;

/* True if the job's unknown names, rd->unknown[from .. at), have name; else
 * false, and name, to be rd->unknown[at], is added to the set. */
static bool unknown_seen(reader_t *rd, dep_set_t *set, size_t from, size_t at, const char *name)
{
    if (!set->slot) {
        for (size_t k = from; k < at; k++)
            if (strcmp(rd->unknown[k].name, name) == 0)
                return true;
        return false;
    }
    size_t mask = set->cap - 1;
    for (size_t i = dp__hash_fnv1a(name) & mask;; i = (i + 1) & mask) {
        if (!set->slot[i]) {
            set->slot[i] = (uint32_t)(at - from) + 1;
            return false;
        }
        if (strcmp(rd->unknown[from + set->slot[i] - 1].name, name) == 0)
            return true;
    }
}

static bool push_dep(reader_t *rd, uint32_t id)
{
    dp_workflow_t *wf = rd->wf;
    if (wf->ndep_ids == wf->dep_cap) {
        size_t ncap = wf->dep_cap ? wf->dep_cap * 2 : 1024;
        uint32_t *nd = realloc(wf->dep_ids, ncap * sizeof *nd);
        if (!nd) {
            rd->oom = true;
            return false;
        }
        wf->dep_ids = nd;
        wf->dep_cap = ncap;
    }
    wf->dep_ids[wf->ndep_ids++] = id;
    return true;
}

/* A job's depends_on: each name resolved to its job's index as it is read
 * (the names are indexed before any job is read), repeats and the job
 * itself refused; a name that is no job's is kept for check_names, which
 * reports it after the duplicates as before. */
static void read_deps(reader_t *rd, wf_job_t *job, uint32_t k, const config_setting_t *s)
{
    dp_workflow_t *wf = rd->wf;
    int t = config_setting_type(s);
    size_t n = t == CONFIG_TYPE_STRING ? 1 : (size_t)(t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST
                                                          ? config_setting_length(s) : 0);
    bool strings = t == CONFIG_TYPE_STRING || t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST;
    /* The names' hashes, and their slots asked for ahead (a usual list has
     * a few names, each in a slot no cache holds): the lookups below then
     * wait for memory once, not once per name. */
    enum { AHEAD = 32 };
    uint64_t hashes[AHEAD];
    for (size_t i = 0; strings && i < n; i++) {
        const config_setting_t *e = t == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, (unsigned)i);
        strings = config_setting_type(e) == CONFIG_TYPE_STRING;
        if (strings && i < AHEAD) {
            hashes[i] = dp__hash_fnv1a(config_setting_get_string(e));
            __builtin_prefetch(&wf->index[hashes[i] & wf->index_mask]);
        }
    }
    if (!strings) { /* get_string_list says what is wrong, as it always did */
        char what[320];
        const config_setting_t **items = NULL;
        size_t m = 0;
        snprintf(what, sizeof what, "'depends_on' of job '%s'", job->name);
        if (get_string_list(rd, s, what, true, &items, &m))
            free(items); /* cannot happen: it refuses what the scan above refused */
        return;
    }
    long self = index_find(wf, job->name); /* the first job of this name */
    size_t from = rd->nunknown;
    dep_set_t seen = {0};
    job->dep_off = wf->ndep_ids;
    for (size_t i = 0; i < n && !rd->oom; i++) {
        const config_setting_t *e = t == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, (unsigned)i);
        const char *dep = config_setting_get_string(e);
        if (!utf8_ok(dep)) {
            char lead[320];
            snprintf(lead, sizeof lead, "job '%s' depends on", job->name);
            not_utf8(rd, e, lead, dep);
            continue;
        }
        long id = index_find_h(wf, dep, i < AHEAD ? hashes[i] : dp__hash_fnv1a(dep));
        if (id >= 0 && id == self) {
            PROBLEM(rd, e, "job '%s' depends on itself; remove \"%s\" from its depends_on", job->name,
                    job->name);
            continue;
        }
        if (id >= 0) {
            /* rd->mark[id] is the last job + 1 that listed id. */
            if (rd->mark[id] == k + 1) {
                PROBLEM(rd, e, "job '%s' lists '%s' twice in depends_on; remove one", job->name, dep);
                continue;
            }
            rd->mark[id] = k + 1;
            if (push_dep(rd, (uint32_t)id))
                job->ndeps++;
            continue;
        }
        if (!seen.slot && n > 16 && rd->nunknown - from >= 16) {
            for (seen.cap = 64; seen.cap < 2 * n; seen.cap *= 2)
                ;
            if (!(seen.slot = calloc(seen.cap, sizeof *seen.slot))) {
                rd->oom = true;
                break;
            }
            for (size_t u = from; u < rd->nunknown; u++)
                unknown_seen(rd, &seen, from, u, rd->unknown[u].name); /* fills the set */
        }
        if (unknown_seen(rd, &seen, from, rd->nunknown, dep)) {
            PROBLEM(rd, e, "job '%s' lists '%s' twice in depends_on; remove one", job->name, dep);
            continue;
        }
        if (rd->nunknown == rd->unknown_cap) {
            size_t ncap = rd->unknown_cap ? rd->unknown_cap * 2 : 16;
            wf_unknown_t *nu = realloc(rd->unknown, ncap * sizeof *nu);
            if (!nu) {
                rd->oom = true;
                break;
            }
            rd->unknown = nu;
            rd->unknown_cap = ncap;
        }
        const config_setting_t *at = line_of(rd, e) ? e : s;
        rd->unknown[rd->nunknown++] =
            (wf_unknown_t){.job = k, .name = dep, .file = file_of(rd, at), .line = line_of(rd, at)};
    }
    free(seen.slot);
}

/* Whether two settings are the same bytes (a job with the previous job's
 * settings shares them). Only ever a missed sharing if not: padding. */
static bool same_spec(const dp_job_spec_t *a, const dp_job_spec_t *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static void read_isolation(reader_t *rd, const slots_t *J, const slots_t *D, const char *name, dp_job_spec_t *sp);

/* Job k's params lack what was refused: not handed to its type. */
static void mark_unbuildable(reader_t *rd, uint32_t k)
{
    dp_workflow_t *wf = rd->wf;
    if (!wf->unbuildable && !(wf->unbuildable = calloc(wf->njobs, 1))) {
        rd->oom = true;
        return;
    }
    wf->unbuildable[k] = 1;
}

static bool has_settings(const slots_t *sl)
{
    return sl->s[K_TIMEOUT] || sl->s[K_RETRIES] || sl->s[K_BACKOFF] || sl->s[K_READINESS] || sl->s[K_ISOLATION] ||
           sl->s[K_LIMITS];
}

static void read_job(reader_t *rd, const config_setting_t *js, const slots_t *D, size_t index)
{
    dp_workflow_t *wf = rd->wf;
    char what[320], where[320];
    const config_setting_t *s;
    const char *name = NULL;
    switch (job_name(js, &s, &name)) {
    case JN_OK: break;
    case JN_NOT_GROUP:
        PROBLEM(rd, js, "job %zu must be a group such as { name = \"A\"; type = \"core.noop\"; }, found %s",
                index + 1, type_name(js));
        rd->dropped = true;
        return;
    case JN_NO_NAME:
        PROBLEM(rd, js, "job %zu has no name; add name = \"...\"; (names are unique and used by depends_on)",
                index + 1);
        rd->dropped = true;
        return;
    case JN_NOT_STRING:
        get_string(rd, s, "a job's name", &name); /* says so */
        rd->dropped = true;
        return;
    case JN_EMPTY:
        PROBLEM(rd, s, "job %zu has an empty name; names are unique and used by depends_on", index + 1);
        rd->dropped = true;
        return;
    }
    if (!utf8_ok(name))
        not_utf8(rd, s, "a job's name is", name);
    /* index_jobs gave the readable jobs their indices in this order. */
    uint32_t k = (uint32_t)rd->next++;
    if (k >= wf->njobs) { /* index_jobs ran out of memory */
        rd->oom = true;
        return;
    }
    wf_job_t *job = &wf->jobs[k];
    slots_t Js, *J = &Js;
    if (!fill_slots(js, J)) {
        snprintf(where, sizeof where, "in job '%s'", name);
        check_keys(rd, js, job_keys, where);
    }

#define JOB_OR_DEFAULT(k) (J->s[k] ? J->s[k] : D->s[k])
    const char *type = NULL;
    if ((s = JOB_OR_DEFAULT(K_TYPE))) {
        bool is_string = config_setting_type(s) == CONFIG_TYPE_STRING;
        if (is_string)
            type = config_setting_get_string(s);
        else
            snprintf(what, sizeof what, "'type' of job '%s'", name);
        if (is_string || get_string(rd, s, what, &type)) {
            const char *dot = strchr(type, '.');
            if (!dot || dot == type || !dot[1])
                PROBLEM(rd, s, "'type' of job '%s' must be PLUGIN.TYPE such as \"core.sleep\" or "
                               "\"shell.command\", found \"%s\"", name, type);
            else
                job->type = intern_type(rd, type);
        }
    } else {
        PROBLEM(rd, js, "job '%s' has no type; add type = \"PLUGIN.TYPE\"; such as \"shell.command\"", name);
    }

    /* Params: the job's own group, then the defaults' keys it does not set.
     * A job with neither gets its (empty) params after libconfig's tree is
     * freed, in its memory (finish_params). */
    const config_setting_t *jp = J->s[K_PARAMS];
    const config_setting_t *dp = D->s[K_PARAMS];
    if (jp && config_setting_type(jp) != CONFIG_TYPE_GROUP) {
        snprintf(what, sizeof what, "'params' of job '%s'", name);
        require_group(rd, jp, what, "params = { duration = \"2s\"; }");
        jp = NULL;
    }
    if (dp && config_setting_type(dp) != CONFIG_TYPE_GROUP)
        dp = NULL; /* reported once, when the defaults were read */
    if (jp || dp) {
        if (!(job->params = dp_params_new())) {
            rd->oom = true;
            return;
        }
        const config_setting_t *origin = jp ? jp : js;
        dp_params_set_origin(job->params, file_of(rd, origin), line_of(rd, origin));
        unsigned before = rd->pr->count;
        if (jp)
            params_from_group(rd, jp, job->params, name, NULL);
        if (dp)
            params_from_group(rd, dp, job->params, name, jp);
        if (rd->pr->count != before)
            mark_unbuildable(rd, k);
    }

    job->dep_off = wf->ndep_ids;
    if ((s = J->s[K_DEPENDS_ON]))
        read_deps(rd, job, k, s);

    /* Most jobs set nothing and have no defaults: wf->spec0, nothing read. */
    if (!has_settings(J) && !has_settings(D))
        return;
    dp_job_spec_t spec, *sp = &spec;
    dp_job_spec_init(sp);
    if ((s = JOB_OR_DEFAULT(K_TIMEOUT))) {
        snprintf(what, sizeof what, "'timeout' of job '%s'", name);
        get_duration(rd, s, what, &sp->timeout_ms);
    }
    if ((s = JOB_OR_DEFAULT(K_RETRIES))) {
        snprintf(what, sizeof what, "'retries' of job '%s'", name);
        get_uint(rd, s, what, 0, 1000000, &sp->retries);
    }

    const config_setting_t *jg = J->s[K_BACKOFF];
    const config_setting_t *dg = D->s[K_BACKOFF];
    if (jg || dg) {
    snprintf(what, sizeof what, "'backoff' of job '%s'", name);
    snprintf(where, sizeof where, "in the backoff of job '%s'", name);
    if (jg && !usable_group(rd, jg, what, "backoff = { initial = \"1s\"; factor = 2.0; max = \"30s\"; }",
                            backoff_keys, where))
        jg = NULL;
    if (dg && config_setting_type(dg) != CONFIG_TYPE_GROUP)
        dg = NULL;
    if ((s = field(jg, dg, "initial"))) {
        snprintf(what, sizeof what, "backoff.initial of job '%s'", name);
        get_duration(rd, s, what, &sp->backoff.initial_ms);
    }
    if ((s = field(jg, dg, "factor"))) {
        snprintf(what, sizeof what, "backoff.factor of job '%s'", name);
        get_float(rd, s, what, 1.0, 1000.0, &sp->backoff.factor);
    }
    if ((s = field(jg, dg, "max"))) {
        snprintf(what, sizeof what, "backoff.max of job '%s'", name);
        get_duration(rd, s, what, &sp->backoff.max_ms);
    }
    if ((s = field(jg, dg, "jitter"))) {
        snprintf(what, sizeof what, "backoff.jitter of job '%s'", name);
        get_float(rd, s, what, 0.0, 1.0, &sp->backoff.jitter);
    }
    }

    jg = J->s[K_READINESS];
    dg = D->s[K_READINESS];
    if (jg || dg) {
    snprintf(what, sizeof what, "'readiness' of job '%s'", name);
    snprintf(where, sizeof where, "in the readiness of job '%s'", name);
    if (jg && !usable_group(rd, jg, what, "readiness = { period = \"5s\"; timeout = \"5m\"; }", readiness_keys,
                            where))
        jg = NULL;
    if (dg && config_setting_type(dg) != CONFIG_TYPE_GROUP)
        dg = NULL;
    if ((s = field(jg, dg, "period"))) {
        snprintf(what, sizeof what, "readiness.period of job '%s'", name);
        get_duration(rd, s, what, &sp->readiness.period_ms);
    }
    if ((s = field(jg, dg, "probe_timeout"))) {
        snprintf(what, sizeof what, "readiness.probe_timeout of job '%s'", name);
        get_duration(rd, s, what, &sp->readiness.probe_timeout_ms);
    }
    if ((s = field(jg, dg, "timeout"))) {
        snprintf(what, sizeof what, "readiness.timeout of job '%s'", name);
        get_duration(rd, s, what, &sp->readiness.timeout_ms);
    }
    }

    read_isolation(rd, J, D, name, sp);
#undef JOB_OR_DEFAULT
    if (same_spec(sp, &wf->spec0))
        return;
    if (rd->last_spec && same_spec(sp, rd->last_spec)) {
        job->spec = rd->last_spec;
        return;
    }
    if (wf->nspecs == rd->specs_cap) {
        size_t ncap = rd->specs_cap ? rd->specs_cap * 2 : 16;
        dp_job_spec_t **nsp = realloc(wf->specs, ncap * sizeof *nsp);
        if (!nsp) {
            rd->oom = true;
            return;
        }
        wf->specs = nsp;
        rd->specs_cap = ncap;
    }
    dp_job_spec_t *copy = malloc(sizeof *copy);
    if (!copy) {
        rd->oom = true;
        return;
    }
    memcpy(copy, sp, sizeof *copy);
    wf->specs[wf->nspecs++] = copy;
    job->spec = rd->last_spec = copy;
}

/* A size in bytes: an integer, or a string such as "512MiB", "2GiB",
 * "100MB" (KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB of 1000). */
static bool get_size(reader_t *rd, const config_setting_t *s, const char *what, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {{"B", 1},
                 {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
                 {"KB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull}, {"TB", 1000000000000ull}};
    if (is_int(s)) {
        long long v;
        const char *text;
        if (!int_value(rd, s, &v, &text)) {
            PROBLEM(rd, s, "%s must be at most %lld bytes, found %s; write a size such as \"512MiB\"", what,
                    LLONG_MAX, text);
            return false;
        }
        if (v < 0) {
            PROBLEM(rd, s, "%s must not be negative, found %lld", what, v);
            return false;
        }
        *out = (uint64_t)v;
        return true;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        PROBLEM(rd, s, "%s must be a size such as \"512MiB\" or an integer of bytes, found %s", what,
                type_name(s));
        return false;
    }
    const char *text = config_setting_get_string(s), *p = text;
    uint64_t v = 0;
    bool digits = false;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p++ - '0');
        if (v > (UINT64_MAX - d) / 10) {
            PROBLEM(rd, s, "%s \"%s\" is too large", what, text);
            return false;
        }
        v = v * 10 + d;
        digits = true;
    }
    while (*p == ' ')
        p++;
    for (size_t i = 0; digits && i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].name) == 0) {
            if (v > UINT64_MAX / units[i].mult) {
                PROBLEM(rd, s, "%s \"%s\" is too large", what, text);
                return false;
            }
            *out = v * units[i].mult;
            return true;
        }
    }
    PROBLEM(rd, s, "%s: bad size \"%s\"; expected a whole number and a unit (B, KiB, MiB, GiB, TiB, KB, "
                   "MB, GB, TB), e.g. \"512MiB\", or an integer of bytes", what, text);
    return false;
}

/* isolation and limits (docs/isolation.md): the job's, else the defaults'. */
static void read_isolation(reader_t *rd, const slots_t *J, const slots_t *D, const char *name, dp_job_spec_t *sp)
{
    char what[320], where[320];
    const config_setting_t *s, *iso_s = J->s[K_ISOLATION] ? J->s[K_ISOLATION] : D->s[K_ISOLATION];
    if (iso_s) {
        snprintf(what, sizeof what, "'isolation' of job '%s'", name);
        const char *iso;
        if (get_string(rd, iso_s, what, &iso)) {
            if (strcmp(iso, "process") == 0)
                sp->isolation = DP_ISOLATION_PROCESS;
            else if (strcmp(iso, "none") == 0)
                sp->isolation = DP_ISOLATION_NONE;
            else
                PROBLEM(rd, iso_s, "%s must be \"process\" (a child process per attempt) or \"none\" (in the "
                                   "host's process, the default), found \"%s\"", what, iso);
        }
    }
    const config_setting_t *jg = J->s[K_LIMITS];
    const config_setting_t *dg = D->s[K_LIMITS];
    if (!jg && !dg)
        return;
    snprintf(what, sizeof what, "'limits' of job '%s'", name);
    snprintf(where, sizeof where, "in the limits of job '%s'", name);
    if (jg && !usable_group(rd, jg, what, "limits = { cpu = \"10s\"; memory = \"512MiB\"; open_files = 256; }",
                            limits_keys, where))
        jg = NULL;
    if (dg && config_setting_type(dg) != CONFIG_TYPE_GROUP)
        dg = NULL;
    if ((s = field(jg, dg, "cpu"))) {
        snprintf(what, sizeof what, "limits.cpu of job '%s'", name);
        get_duration(rd, s, what, &sp->limits.cpu_ms);
    }
    if ((s = field(jg, dg, "memory"))) {
        snprintf(what, sizeof what, "limits.memory of job '%s'", name);
        get_size(rd, s, what, &sp->limits.memory_bytes);
    }
    if ((s = field(jg, dg, "open_files"))) {
        unsigned n;
        snprintf(what, sizeof what, "limits.open_files of job '%s'", name);
        if (get_uint(rd, s, what, 16, 1048576, &n))
            sp->limits.open_files = n;
    }
    if ((jg || dg) && sp->isolation != DP_ISOLATION_PROCESS) {
        const config_setting_t *at = jg ? jg : dg;
        PROBLEM(rd, at, "job '%s' has limits but runs in the host's process; limits apply only to "
                        "isolation = \"process\": add it to the job (or to defaults), or remove the limits", name);
    }
}

static void read_defaults(reader_t *rd, const config_setting_t *d)
{
    /* name and depends_on belong to each job; say so rather than "unknown". */
    for (int i = 0; i < config_setting_length(d); i++) {
        const config_setting_t *m = config_setting_get_elem(d, (unsigned)i);
        const char *key = config_setting_name(m);
        if (strcmp(key, "name") == 0 || strcmp(key, "depends_on") == 0)
            PROBLEM(rd, m, "'%s' cannot have a default: each job sets its own; move it into the jobs", key);
        else if (!in_list(key, default_keys))
            unknown_key(rd, m, default_keys, "in 'defaults'");
    }
    const config_setting_t *s;
    if ((s = config_setting_get_member(d, "params")))
        require_group(rd, s, "defaults.params", "params = { env = { LANG = \"C\"; }; }");
    if ((s = config_setting_get_member(d, "backoff")))
        usable_group(rd, s, "defaults.backoff", "backoff = { initial = \"1s\"; }", backoff_keys,
                     "in defaults.backoff");
    if ((s = config_setting_get_member(d, "readiness")))
        usable_group(rd, s, "defaults.readiness", "readiness = { period = \"5s\"; }", readiness_keys,
                     "in defaults.readiness");
    if ((s = config_setting_get_member(d, "limits")))
        usable_group(rd, s, "defaults.limits", "limits = { memory = \"512MiB\"; }", limits_keys,
                     "in defaults.limits");
}

/* Stable: equal names keep their order in the file. */
static int cmp_job_name(const void *a, const void *b)
{
    const wf_job_t *const *x = a, *const *y = b;
    int c = strcmp((*x)->name, (*y)->name);
    return c ? c : (*x < *y ? -1 : *x > *y);
}

/* Duplicate names, in name order (the first in the file is the original). */
static void report_duplicates(reader_t *rd)
{
    dp_workflow_t *wf = rd->wf;
    const wf_job_t **sorted = malloc(wf->njobs * sizeof *sorted);
    if (!sorted) {
        rd->oom = true;
        return;
    }
    for (size_t i = 0; i < wf->njobs; i++)
        sorted[i] = &wf->jobs[i];
    qsort(sorted, wf->njobs, sizeof *sorted, cmp_job_name);
    for (size_t i = 1; i < wf->njobs; i++)
        if (strcmp(sorted[i]->name, sorted[i - 1]->name) == 0) {
            size_t first = i - 1;
            while (first > 0 && strcmp(sorted[first - 1]->name, sorted[i]->name) == 0)
                first--;
            problem(rd->pr, sorted[i]->file, sorted[i]->line,
                    "duplicate job name '%s' (first defined at %s:%d); job names must be unique: rename one",
                    sorted[i]->name, sorted[first]->file, sorted[first]->line);
        }
    free(sorted);
}

/* Duplicate names and unknown dependencies, with the nearest known name.
 * The names are in wf->index already and read_job resolved every
 * dependency it could: what is left is reporting. */
static void check_names(reader_t *rd)
{
    dp_workflow_t *wf = rd->wf;
    if (rd->dups)
        report_duplicates(rd);
    const char **names = NULL; /* for suggestions, made on first need */
    for (size_t u = 0; u < rd->nunknown && !rd->oom; u++) {
        const wf_unknown_t *un = &rd->unknown[u];
        const wf_job_t *job = &wf->jobs[un->job];
        /* The nearest name is a pass over all of them: only for a problem
         * that will be listed, not for those counted in "... and N more". */
        const char *near = NULL;
        if (rd->pr->buf && rd->pr->len && rd->pr->count < MAX_PROBLEMS) {
            if (!names) {
                if (!(names = malloc((wf->njobs + 1) * sizeof *names))) {
                    rd->oom = true;
                    break;
                }
                for (size_t k = 0; k < wf->njobs; k++)
                    names[k] = wf->jobs[k].name;
                names[wf->njobs] = NULL;
            }
            near = dp__nearest_word(un->name, names);
        }
        if (near)
            problem(rd->pr, un->file, un->line,
                    "job '%s' depends on '%s', which is not a job of this workflow; did you mean '%s'?", job->name,
                    un->name, near);
        else
            problem(rd->pr, un->file, un->line,
                    "job '%s' depends on '%s', which is not a job of this workflow; add a job named '%s' or fix "
                    "the name",
                    job->name, un->name, un->name);
    }
    free(names);
}

/* Jobs that have no params group (and no defaults' one): their empty params,
 * with the job's place in the file as origin, made after libconfig's tree
 * is freed so that they reuse its memory rather than add to the peak. */
static void finish_params(reader_t *rd)
{
    dp_workflow_t *wf = rd->wf;
    for (size_t i = 0; i < wf->njobs && !rd->oom; i++) {
        wf_job_t *job = &wf->jobs[i];
        if (job->params)
            continue;
        if (!(job->params = dp_params_new()))
            rd->oom = true;
        else
            dp_params_set_origin(job->params, job->file, job->line);
    }
}

/* The shape graph never runs: its jobs exist so that the engine's own
 * validation (and its cycle message) applies to the file. */
static dp_outcome_t shape_run(dp_job_t *job, void *user)
{
    (void)user;
    return dp_job_fail(job, true, "a workflow's shape graph is not meant to run");
}

/* The workflow's jobs and dependencies as a graph with no plugin behind
 * them, validated (DP_OK), or NULL with rc and msg. */
static dp_graph_t *make_shape(const dp_workflow_t *wf, int *rc, char *msg, size_t msglen)
{
    dp_graph_t *g = dp_graph_new();
    *rc = DP_ENOMEM;
    snprintf(msg, msglen, "out of memory");
    if (!g || dp__graph_reserve(g, wf->njobs, wf->ndep_ids) != DP_OK)
        goto fail;
    for (size_t i = 0; i < wf->njobs; i++) {
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = wf->jobs[i].name;
        spec.run = shape_run;
        if ((*rc = dp_graph_add_job(g, &spec, msg, msglen)) != DP_OK)
            goto fail;
    }
    /* Every job is in, at its index in wf->jobs: the dependencies by index. */
    for (size_t i = 0; i < wf->njobs; i++) {
        const wf_job_t *j = &wf->jobs[i];
        for (uint32_t d = 0; d < j->ndeps; d++)
            if ((*rc = dp__graph_add_dep_id(g, (uint32_t)i, wf->dep_ids[j->dep_off + d])) != DP_OK)
                goto fail;
    }
    if ((*rc = dp_graph_validate(g, msg, msglen)) == DP_OK)
        return g;
fail:
    dp_graph_free(g);
    return NULL;
}

/* Cycles, once every name resolves: Kahn's traversal over the dependency
 * indices. Only for a cycle is the shape graph made here, for the engine's
 * message (the cycle's path), so both agree on what a cycle is and say it
 * the same way; otherwise the shape waits for dp__workflow_shape. */
static void check_cycles(reader_t *rd)
{
    dp_workflow_t *wf = rd->wf;
    size_t n = wf->njobs, m = wf->ndep_ids;
    uint32_t *succ_off = calloc(n + 1, sizeof *succ_off);
    uint32_t *succ = malloc((m ? m : 1) * sizeof *succ);
    uint32_t *count = calloc(n ? n : 1, sizeof *count);
    uint32_t *queue = malloc((n ? n : 1) * sizeof *queue);
    if (!succ_off || !succ || !count || !queue) {
        rd->oom = true;
        goto out;
    }
    for (size_t e = 0; e < m; e++)
        succ_off[wf->dep_ids[e] + 1]++;
    for (size_t j = 0; j < n; j++)
        succ_off[j + 1] += succ_off[j];
    for (size_t j = 0; j < n; j++) {
        size_t off = wf->jobs[j].dep_off; /* dep_ids is NULL in a workflow without dependencies */
        for (uint32_t d = 0; d < wf->jobs[j].ndeps; d++) {
            uint32_t dep = wf->dep_ids[off + d];
            succ[succ_off[dep] + count[dep]++] = (uint32_t)j;
        }
    }
    size_t head = 0, tail = 0;
    for (size_t j = 0; j < n; j++)
        if (!(count[j] = wf->jobs[j].ndeps)) /* now: dependencies not done yet */
            queue[tail++] = (uint32_t)j;
    while (head < tail) {
        uint32_t j = queue[head++];
        for (uint32_t k = succ_off[j]; k < succ_off[j + 1]; k++)
            if (--count[succ[k]] == 0)
                queue[tail++] = succ[k];
    }
    if (tail == n)
        goto out;

    char msg[1024];
    int rc;
    dp_graph_t *g = make_shape(wf, &rc, msg, sizeof msg);
    if (g) { /* the engine sees no cycle: it decides (the build will say) */
        wf->shape = g;
        goto out;
    }
    if (rc == DP_ENOMEM) {
        rd->oom = true;
        goto out;
    }
    /* Point at the first job of the cycle ("cycle: a -> b -> a"). */
    const char *file = wf->path;
    int line = 0;
    const char *start = strstr(msg, "cycle: ");
    if (start) {
        start += strlen("cycle: ");
        const char *end = strstr(start, " -> ");
        size_t len = end ? (size_t)(end - start) : strlen(start);
        for (size_t i = 0; i < wf->njobs; i++)
            if (strlen(wf->jobs[i].name) == len && strncmp(wf->jobs[i].name, start, len) == 0) {
                file = wf->jobs[i].file;
                line = wf->jobs[i].line;
                break;
            }
    }
    if (rc == DP_ECYCLE)
        problem(rd->pr, file, line, "dependency %s; a workflow must be acyclic: remove one of these depends_on "
                                    "entries", msg);
    else
        problem(rd->pr, file, line, "%s", msg);
out:
    free(succ_off);
    free(succ);
    free(count);
    free(queue);
}

/* ------------------------------------------------------------------------ */
/* Public                                                                    */
/* ------------------------------------------------------------------------ */

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dp__strdup(".");
    if (slash == path)
        return dp__strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* The default name: the file's base name without its extension. */
static char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    const char *dot = strrchr(b, '.');
    return dot && dot != b ? strndup(b, (size_t)(dot - b)) : dp__strdup(b);
}

void dp_workflow_free(dp_workflow_t *wf)
{
    if (!wf)
        return;
    dp_graph_free(wf->graph);
    dp_graph_free(wf->shape);
    for (size_t i = 0; i < wf->njobs; i++)
        dp_params_free(wf->jobs[i].params);
    free(wf->jobs);
    free(wf->dep_ids);
    free(wf->index);
    for (size_t i = 0; i < wf->nspecs; i++)
        free(wf->specs[i]);
    free(wf->specs);
    dp__strarena_free(&wf->names);
    for (size_t i = 0; i < wf->ntypes; i++)
        free(wf->types[i]);
    free(wf->types);
    for (size_t i = 0; i < wf->nplugins; i++) {
        free(wf->plugins[i].name);
        free(wf->plugins[i].path);
    }
    free(wf->plugins);
    for (size_t i = 0; i < wf->n_plugin_path; i++)
        free(wf->plugin_path[i]);
    free(wf->plugin_path);
    for (size_t i = 0; i < wf->nfiles; i++)
        free(wf->files[i]);
    free(wf->files);
    free(wf->build_err);
    free(wf->load_problems);
    free(wf->unbuildable);
    free(wf->name);
    free(wf->dir);
    free(wf->path);
    pthread_mutex_destroy(&wf->shape_lock);
    free(wf);
}

/* dp_workflow_load; partial: see dp__workflow_load_for_build. */
static dp_workflow_t *load(const char *path, char *err, size_t errlen, bool partial)
{
    if (err && errlen)
        err[0] = '\0';
    if (!path || !*path) {
        dp__seterr(err, errlen, DP_EINVAL, "no workflow file given");
        return NULL;
    }
    dp_workflow_t *wf = calloc(1, sizeof *wf);
    if (wf) {
        pthread_mutex_init(&wf->shape_lock, NULL);
        wf->self = wf;
    }
    if (!wf || !(wf->path = dp__strdup(path)) || !(wf->dir = dir_of(path)) || !(wf->name = base_name(path))) {
        dp_workflow_free(wf);
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory reading %s", path);
        return NULL;
    }
    wf->max_concurrent_jobs = 4;
    wf->fail_fast = true;
    wf->build_rc = 1;
    dp_job_spec_init(&wf->spec0);

    /* libconfig reads the stream of the file and its includes that src
     * makes (see "The text libconfig reads"); src says what went wrong
     * before libconfig does. */
    src_t src;
    if (!src_open(&src, wf, err, errlen)) {
        src_close(&src);
        dp_workflow_free(wf);
        return NULL;
    }
    FILE *stream = fopencookie(&src, "r", (cookie_io_functions_t){.read = src_read});
    if (!stream) {
        src_close(&src);
        dp_workflow_free(wf);
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory reading %s", path);
        return NULL;
    }
    /* libconfig's scanner reads a character at a time (getc): a buffer. */
    setvbuf(stream, NULL, _IOFBF, 65536);
    config_t cfg;
    config_init(&cfg);
    int parsed = config_read(&cfg, stream);
    fclose(stream);
    if (src.err || src.oom || parsed != CONFIG_TRUE) {
        if (src.oom)
            dp__seterr(err, errlen, DP_ENOMEM, "out of memory reading %s", path);
        else if (src.err)
            dp__seterr(err, errlen, DP_ECONFIG, "%s", src.err);
        else {
            /* libconfig's text is mostly just "syntax error": do not say it
             * twice, and say what the file should look like. */
            const char *text = config_error_text(&cfg), *efile;
            bool plain = !text || strcmp(text, "syntax error") == 0;
            int eline;
            src_where(&src, (unsigned)config_error_line(&cfg), &efile, &eline);
            dp__seterr(err, errlen, DP_ECONFIG,
                       "%s:%d: syntax error%s%s; expected libconfig syntax: key = value; with groups in { }, "
                       "lists in ( ) and arrays in [ ] (the mistake may be at the end of the line before, such "
                       "as a missing ';' or ','); see man daggerpool",
                       efile, eline, plain ? "" : ": ", plain ? "" : text);
        }
        config_destroy(&cfg);
        src_close(&src);
        dp_workflow_free(wf);
        return NULL;
    }

    problems_t pr = {.buf = err, .len = err ? errlen : 0};
    reader_t rd = {.wf = wf, .pr = &pr, .src = &src};
    const config_setting_t *root = config_root_setting(&cfg);
    check_keys(&rd, root, top_keys, "at the top level");

    const config_setting_t *s;
    if ((s = config_setting_get_member(root, "workflow")))
        read_workflow(&rd, s);
    if ((s = config_setting_get_member(root, "plugins")))
        read_plugins(&rd, s);
    const config_setting_t *defaults = config_setting_get_member(root, "defaults");
    if (defaults && !require_group(&rd, defaults, "'defaults'", "defaults = { retries = 1; timeout = \"1m\"; }"))
        defaults = NULL;
    if (defaults)
        read_defaults(&rd, defaults);
    slots_t dslots; /* the defaults by key, looked up once for all jobs */
    fill_slots(defaults, &dslots);

    const config_setting_t *jobs = config_setting_get_member(root, "jobs");
    if (!jobs)
        problem(&pr, path, 0, "no jobs; add jobs = ( { name = \"A\"; type = \"core.noop\"; } );");
    else if (config_setting_type(jobs) != CONFIG_TYPE_LIST)
        PROBLEM(&rd, jobs, "'jobs' must be a list in ( ) of groups such as ( { name = \"A\"; type = "
                           "\"core.noop\"; } ), found %s", type_name(jobs));
    else if (config_setting_length(jobs) == 0)
        PROBLEM(&rd, jobs, "'jobs' is empty; a workflow needs at least one job");
    else {
        size_t n = (size_t)config_setting_length(jobs);
        if (!(wf->jobs = calloc(n, sizeof *wf->jobs)))
            rd.oom = true;
        if (!rd.oom)
            index_jobs(&rd, jobs, n);
        if (!rd.oom && !(rd.mark = calloc(wf->njobs ? wf->njobs : 1, sizeof *rd.mark)))
            rd.oom = true;
        for (size_t i = 0; wf->jobs && i < n && !rd.oom; i++)
            read_job(&rd, config_setting_get_elem(jobs, (unsigned)i), &dslots, i);
        free(rd.mark);
    }
    /* Names can be checked despite other problems; only a job dropped for
     * want of a name would make its dependents' references look unknown. */
    if (!rd.oom && !rd.dropped)
        check_names(&rd);
    free(rd.unknown); /* its names were libconfig's */
    if (!rd.oom)
        report_odd_ints(&rd);
    /* Everything is copied out (dependencies are indices now): libconfig's
     * tree, by far the largest thing here, goes before anything else is
     * made, which then reuses its memory. */
    config_destroy(&cfg);
    src_close(&src);
    if ((pr.count == 0 || partial) && !rd.oom)
        finish_params(&rd);
    /* Cycles only make sense once every name resolves. */
    if (pr.count == 0 && !rd.oom)
        check_cycles(&rd);

    if (rd.oom) {
        dp__seterr(err, errlen, DP_ENOMEM, "%s: out of memory while reading the workflow", path);
        dp_workflow_free(wf);
        return NULL;
    }
    if (pr.count && partial) {
        /* dp_workflow_build lists these first, then its own. */
        wf->load_count = pr.count;
        if (!(wf->load_problems = dp__strdup(pr.used ? pr.buf : ""))) {
            dp__seterr(err, errlen, DP_ENOMEM, "%s: out of memory while reading the workflow", path);
            dp_workflow_free(wf);
            return NULL;
        }
        return wf;
    }
    if (pr.count) {
        problems_finish(&pr);
        dp_workflow_free(wf);
        return NULL;
    }
    return wf;
}

/* Contract: see daggerpool.h. Reads path (see "The text libconfig reads"),
 * copies and checks everything, and returns a workflow the caller frees
 * with dp_workflow_free; NULL with all problems (one per line, at most
 * MAX_PROBLEMS) in err. Any thread; no global state besides libconfig's
 * own (reentrant per config_t). */
dp_workflow_t *dp_workflow_load(const char *path, char *err, size_t errlen)
{
    return load(path, err, errlen, false);
}

dp_workflow_t *dp__workflow_load_for_build(const char *path, char *err, size_t errlen)
{
    return load(path, err, errlen, true);
}

const char *dp_workflow_name(const dp_workflow_t *wf)
{
    return wf ? wf->name : NULL;
}

const char *dp_workflow_plugin_path(const dp_workflow_t *wf, size_t i)
{
    return wf && i < wf->n_plugin_path ? wf->plugin_path[i] : NULL;
}

void dp_workflow_run_opts(const dp_workflow_t *wf, dp_run_opts_t *opts)
{
    if (!wf || !opts)
        return;
    opts->max_concurrent_jobs = wf->max_concurrent_jobs;
    opts->timeout_ms = wf->timeout_ms;
    opts->fail_fast = wf->fail_fast;
}

dp_graph_t *dp_workflow_graph(dp_workflow_t *wf)
{
    return wf ? wf->graph : NULL;
}

/* Made on first use: `graph` draws it, run and validate never need it (the
 * load checked for cycles without it). */
const dp_graph_t *dp__workflow_shape(const dp_workflow_t *wf)
{
    if (!wf)
        return NULL;
    dp_workflow_t *w = wf->self; /* a cache: what the workflow is does not change */
    pthread_mutex_lock(&w->shape_lock);
    if (!w->shape) {
        char msg[1024];
        int rc;
        w->shape = make_shape(w, &rc, msg, sizeof msg);
    }
    pthread_mutex_unlock(&w->shape_lock);
    return w->shape;
}


static const wf_job_t *find_job(const dp_workflow_t *wf, const char *job)
{
    long id = wf && job ? index_find(wf, job) : -1;
    return id >= 0 ? &wf->jobs[id] : NULL;
}

const dp_job_spec_t *dp__workflow_job_spec(const dp_workflow_t *wf, const char *job)
{
    const wf_job_t *j = find_job(wf, job);
    return j ? (j->spec ? j->spec : &wf->spec0) : NULL;
}

const dp_params_t *dp__workflow_job_params(const dp_workflow_t *wf, const char *job)
{
    const wf_job_t *j = find_job(wf, job);
    return j ? j->params : NULL;
}

const char *dp__workflow_job_type(const dp_workflow_t *wf, const char *job)
{
    const wf_job_t *j = find_job(wf, job);
    return j ? j->type : NULL;
}

const char *dp__workflow_path(const dp_workflow_t *wf)
{
    return wf ? wf->path : NULL;
}

/* Contract: see daggerpool.h. Loads the explicit plugins into pl, then adds
 * every job through a dp__plugins_batch: dp_plugins_add_job's checks (the
 * plugin loaded from pl's search path on demand, one instance created to
 * check the params) with the bookkeeping done once per run of one type.
 * All refusals are listed, one per line. Runs once; later calls repeat the
 * first answer. Not concurrently with itself on the same wf. */
int dp_workflow_build(dp_workflow_t *wf, dp_plugins_t *pl, char *err, size_t errlen)
{
    if (!wf || !pl)
        return dp__seterr(err, errlen, DP_EINVAL, "dp_workflow_build: no workflow or no plugin registry");
    if (wf->build_rc != 1) {
        if (wf->build_rc != DP_OK)
            dp__seterr(err, errlen, wf->build_rc, "%s", wf->build_err ? wf->build_err : dp_strerror(wf->build_rc));
        return wf->build_rc;
    }
    char *buf = calloc(1, 16384);
    if (!buf)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    problems_t pr = {.buf = buf, .len = 16384};
    if (wf->load_problems) { /* the file's own problems first */
        pr.used = (size_t)snprintf(buf, 16384, "%s", wf->load_problems);
        if (pr.used >= 16384)
            pr.used = 16383;
        pr.count = wf->load_count;
    }
    char msg[4096];
    int rc = DP_OK;

    for (size_t i = 0; i < wf->nplugins; i++) {
        const wf_plugin_t *p = &wf->plugins[i];
        if (dp_plugins_load(pl, p->name, p->path, msg, sizeof msg) != DP_OK)
            problem(&pr, p->file, p->line, "plugin '%s' (%s): %s", p->name, p->path, msg);
    }
    dp_graph_t *g = dp_graph_new();
    if (!g || dp__graph_reserve(g, wf->njobs, wf->ndep_ids) != DP_OK) {
        dp_graph_free(g);
        free(buf);
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    /* The jobs' params are lent to the graph's jobs (wf frees its graphs
     * before the params); plugin and type are resolved once per run of
     * jobs of one type. */
    dp__plugin_batch_t *batch = dp__plugins_batch_new(pl);
    if (!batch)
        rc = DP_ENOMEM;
    for (size_t i = 0; batch && i < wf->njobs; i++) {
        wf_job_t *j = &wf->jobs[i];
        /* A workflow with problems: each job once, those whose type and
         * params were read whole. */
        if (wf->load_problems &&
            (!j->type || (wf->unbuildable && wf->unbuildable[i]) || index_find(wf, j->name) != (long)i))
            continue;
        dp_job_spec_t spec = j->spec ? *j->spec : wf->spec0;
        spec.name = j->name;
        msg[0] = '\0';
        int r = dp__plugins_batch_add(batch, g, &spec, j->type, j->params, msg, sizeof msg);
        if (r == DP_ENOMEM) {
            rc = DP_ENOMEM;
            break;
        }
        if (r == DP_OK)
            continue;
        /* The loader's messages start "job 'NAME' (type 'TYPE'): " already. */
        char prefix[512];
        snprintf(prefix, sizeof prefix, "job '%s' (type '%s'): ", j->name, j->type);
        if (strncmp(msg, prefix, strlen(prefix)) == 0)
            problem(&pr, j->file, j->line, "%s", msg);
        else
            problem(&pr, j->file, j->line, "%s%s", prefix, msg[0] ? msg : dp_strerror(r));
    }
    dp__plugins_batch_free(batch);
    /* Every job is in, in wf->jobs order: the dependencies by index. */
    for (size_t i = 0; rc == DP_OK && pr.count == 0 && i < wf->njobs; i++)
        for (uint32_t d = 0; rc == DP_OK && d < wf->jobs[i].ndeps; d++)
            rc = dp__graph_add_dep_id(g, (uint32_t)i, wf->dep_ids[wf->jobs[i].dep_off + d]);
    if (rc == DP_OK && pr.count == 0 && dp_graph_validate(g, msg, sizeof msg) != DP_OK)
        problem(&pr, wf->path, 0, "%s", msg); /* the shape graph passed: an engine/loader mismatch */
    if (rc == DP_OK && pr.count)
        rc = DP_ECONFIG;
    problems_finish(&pr);

    wf->build_rc = rc;
    if (rc == DP_OK) {
        wf->graph = g;
        free(buf);
        return DP_OK;
    }
    dp_graph_free(g);
    if (rc == DP_ENOMEM)
        snprintf(buf, 16384, "out of memory building %s", wf->path);
    wf->build_err = buf;
    return dp__seterr(err, errlen, rc, "%s", buf);
}

/*
 * config_source.c - the text libconfig reads (config_source.h).
 *
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
 *    that dp__src_int resolves to the text as written.
 * Strings, comments, names and numbers are told apart as libconfig's
 * scanner (scanner.l) does, so that an @include or a number is one here
 * exactly when it is one there, and no '@' reaches libconfig. A mistake
 * ends the stream early (an error from the cookie would make flex call
 * exit(2)) and is reported instead of whatever libconfig then says. The
 * stream's line numbers are libconfig's; segs map them back to files.
 */
#include "config_source.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

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
    const char *path; /* as messages show it: interned in names, or the workflow's path */
    char *written;    /* an included file's name as its @include wrote it */
    dev_t dev;
    ino_t ino;
    int line;  /* the line being read, from 1 */
    char *buf; /* read, not yet handed on: buf[off .. len) */
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

struct dp__src {
    const char *path;        /* the workflow file's, as given (not a copy) */
    dp__file_names_t *names; /* where the included files' names go */
    src_file_t files[MAX_INCLUDE_DEPTH + 1];
    int depth;         /* files[0 .. depth] are open; -1 once the stream ended */
    lex_state_t state; /* libconfig's scanner's, carried from line to line */
    const char *state_file;
    int state_line; /* where the string or comment began */
    bool bol;       /* at the start of a line (libconfig's ^) */
    unsigned nest;
    char open[MAX_NESTING + 1]; /* the brackets open: '{', '(' or '[' */
    unsigned out_line;          /* the stream's line being handed on */
    line_seg_t *segs;
    size_t nsegs, segcap;
    odd_int_t *odd;
    size_t nodd, oddcap;
    char *rewrite; /* a line whose integers are handed over rewritten */
    size_t rwcap;
    const char *out; /* what the next read hands on */
    size_t nout;
    unsigned long long total;
    char *err; /* the mistake that ended the stream, malloc'd */
    bool oom;
};

typedef struct dp__src src_t;

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
    dp__file_names_t *names = src->names;
    if (strcmp(file, src->path) == 0)
        return src->path;
    for (size_t i = 0; i < names->n; i++)
        if (strcmp(names->v[i], file) == 0)
            return names->v[i];
    char **nf = realloc(names->v, (names->n + 1) * sizeof *nf);
    if (nf)
        names->v = nf;
    char *copy = nf ? dp__strdup(file) : NULL;
    if (!copy) {
        src->oom = true;
        return NULL;
    }
    names->v[names->n++] = copy;
    return copy;
}

void dp__file_names_free(dp__file_names_t *names)
{
    for (size_t i = 0; i < names->n; i++)
        free(names->v[i]);
    free(names->v);
    names->v = NULL;
    names->n = 0;
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
    *f = (src_file_t){.fd = fd,
                      .path = shown,
                      .written = w,
                      .dev = st->st_dev,
                      .ino = st->st_ino,
                      .line = 1,
                      .buf = buf,
                      .cap = 65536};
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
        src_fail(src, f->path, f->line,
                 "@include needs a file name in double quotes on its line, such as "
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
        src_fail(src, f->path, f->line,
                 "@include \"%s\": includes are nested more than %d deep; daggerpool "
                 "follows at most %d levels of @include",
                 name, MAX_INCLUDE_DEPTH, MAX_INCLUDE_DEPTH);
        free(path);
        return -1;
    }
    struct stat st;
    const char *why;
    int fd = open_regular(path, &st, &why);
    if (fd < 0) {
        src_fail(src, f->path, f->line,
                 "@include \"%s\": cannot read %s: %s; an @include names a workflow "
                 "file, relative to the including file's directory or absolute",
                 name, path, why);
        free(path);
        return -1;
    }
    for (int i = 0; i <= src->depth; i++)
        if (src->files[i].dev == st.st_dev && src->files[i].ino == st.st_ino) {
            src_fail(src, f->path, f->line,
                     "@include \"%s\": %s is %s, which is being read: a file cannot "
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
            src_fail(src, f->path, f->line,
                     "the workflow is larger than %d MiB (with its includes); daggerpool "
                     "reads at most %d MiB of workflow files",
                     MAX_WORKFLOW_MIB, MAX_WORKFLOW_MIB);
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
static const char *odd_integer(src_t *src, src_file_t *f, const char *tok, size_t len, bool hex, bool l, size_t toklen,
                               char *buf, size_t buflen)
{
    long long v = 0;
    bool fits = int_literal(tok, len, hex, &v);
    bool exact = fits && (l || (v >= INT_MIN && v <= INT_MAX));
    bool standin = fits && v < LLONG_MIN + MAX_ODD_INTS; /* looks like one: handed over as one */
    /* An array's items have one type: a rewritten one would make libconfig
     * refuse the array. No array of integers is read; one beyond 64 bits is
     * refused (dp__cfg_report_unmet_ints), as written. */
    bool in_array = src->nest && src->open[src->nest - 1] == '[';
    if ((exact && !standin) || (in_array && fits))
        return NULL;
    if (fits && !standin) { /* in 64 bits: libconfig reads it so with an L */
        snprintf(buf, buflen, "%lldL", v);
        return buf;
    }
    if (src->nodd == MAX_ODD_INTS) {
        src_fail(src, f->path, f->line,
                 "more than %d integers beyond 64 bits (or near its lowest value); "
                 "write them as strings",
                 MAX_ODD_INTS);
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

/* Inside a string or a comment (src->state, not LX_CODE) at p: past what
 * of [p, end) it covers, the state LX_CODE again where it ends. */
static const char *lex_skip(src_t *src, const char *p, const char *end)
{
    switch (src->state) {
    case LX_STRING:
        while (p < end && *p != '"' && *p != '\\')
            p++;
        if (p == end)
            return p;
        if (*p == '"')
            src->state = LX_CODE;
        else if (p + 1 < end && (p[1] == '"' || p[1] == '\\'))
            p++;
        return p + 1;
    case LX_BLOCK_COMMENT:
        while (p < end && *p != '*')
            p++;
        if (p + 1 < end && p[1] == '/') {
            src->state = LX_CODE;
            p++;
        }
        return p < end ? p + 1 : p;
    case LX_LINE_COMMENT: /* to the end of the line: the end of this piece */
        if (end[-1] == '\n')
            src->state = LX_CODE;
        return end;
    case LX_CODE: break;
    }
    return p;
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
        if (src->state != LX_CODE) {
            p = lex_skip(src, p, end);
            continue;
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
                src_fail(src, f->path, f->line,
                         "groups, lists and arrays are nested more than %d deep here; "
                         "daggerpool reads at most %d levels of { }, ( ) and [ ]",
                         MAX_NESTING, MAX_NESTING);
                return false;
            }
        } else if (c == '}' || c == ')' || c == ']') {
            if (src->nest)
                src->nest--;
        } else if (c == '@') {
            src_fail(src, f->path, f->line,
                     "syntax error at '@': the only use of '@' is @include \"FILE\" at the "
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
static bool src_open(src_t *src, const char *path, dp__file_names_t *names, char *err, size_t errlen)
{
    memset(src, 0, sizeof *src);
    src->path = path;
    src->names = names;
    src->depth = -1;
    src->out_line = 1;
    struct stat st;
    const char *why;
    int fd = open_regular(path, &st, &why);
    if (fd < 0) {
        dp__seterr(err, errlen, DP_ECONFIG, "%s: cannot read the workflow file: %s", path, why);
        return false;
    }
    if (!src_push(src, path, NULL, fd, &st)) {
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory reading %s", path);
        return false;
    }
    return true;
}

void dp__src_free(src_t *src)
{
    if (!src)
        return;
    for (; src->depth >= 0; src->depth--) {
        close(src->files[src->depth].fd);
        free(src->files[src->depth].buf);
        free(src->files[src->depth].written);
    }
    free(src->segs);
    free(src->odd);
    free(src->rewrite);
    free(src->err);
    free(src);
}

/* libconfig reads the stream src makes; src says what went wrong before
 * libconfig does. */
dp__src_t *dp__src_read(const char *path, dp__file_names_t *names, config_t *cfg, char *err, size_t errlen)
{
    src_t *src = calloc(1, sizeof *src);
    if (!src) {
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory reading %s", path);
        return NULL;
    }
    if (!src_open(src, path, names, err, errlen)) {
        dp__src_free(src);
        return NULL;
    }
    FILE *stream = fopencookie(src, "r", (cookie_io_functions_t){.read = src_read});
    if (!stream) {
        dp__src_free(src);
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory reading %s", path);
        return NULL;
    }
    /* libconfig's scanner reads a character at a time (getc): a buffer. */
    setvbuf(stream, NULL, _IOFBF, 65536);
    int parsed = config_read(cfg, stream);
    fclose(stream);
    if (!src->err && !src->oom && parsed == CONFIG_TRUE)
        return src;
    if (src->oom)
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory reading %s", path);
    else if (src->err)
        dp__seterr(err, errlen, DP_ECONFIG, "%s", src->err);
    else {
        /* libconfig's text is mostly just "syntax error": do not say it
         * twice, and say what the file should look like. */
        const char *text = config_error_text(cfg), *efile;
        bool plain = !text || strcmp(text, "syntax error") == 0;
        int eline;
        src_where(src, (unsigned)config_error_line(cfg), &efile, &eline);
        dp__seterr(err, errlen, DP_ECONFIG,
                   "%s:%d: syntax error%s%s; expected libconfig syntax: key = value; with groups in { }, "
                   "lists in ( ) and arrays in [ ] (the mistake may be at the end of the line before, such "
                   "as a missing ';' or ','); see man daggerpool",
                   efile, eline, plain ? "" : ": ", plain ? "" : text);
    }
    dp__src_free(src);
    return NULL;
}

/* A file without includes (one segment) is what libconfig says: its own
 * lines, no search. */
void dp__src_where(const dp__src_t *src, unsigned line, const char **file, int *fline)
{
    if (src->nsegs < 2) {
        *file = src->path;
        *fline = (int)line;
        return;
    }
    src_where(src, line, file, fline);
}

bool dp__src_int(dp__src_t *src, long long x, long long *v, const char **text)
{
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

const char *dp__src_unmet_int(const dp__src_t *src, size_t *i, const char **file, int *line)
{
    for (; *i < src->nodd; ++*i) {
        const odd_int_t *o = &src->odd[*i];
        if (!o->fits && !o->used) {
            ++*i;
            *file = o->file;
            *line = o->line;
            return o->text;
        }
    }
    return NULL;
}

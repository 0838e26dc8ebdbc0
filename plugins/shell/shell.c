/*
 * shell.c - the shell plugin: run a command, judge it by its exit status.
 *
 *   shell.command
 *     command = "make deploy";         run by /bin/sh -c, or
 *     argv = ["make", "deploy"];       run directly (PATH searched), no shell
 *     env = { KEY = "value"; };        added to the host's environment
 *     cwd = "/srv/app";                working directory
 *     not_ready_exit = 75;             this status means "not ready" (EX_TEMPFAIL)
 *     check = "curl -fs localhost";    readiness, same convention (or check_argv)
 *     kill_grace = "5s";               SIGTERM, then SIGKILL after this long
 *     keep_background = false;         true: leave running what the command
 *                                      started in the background
 *
 * Exit 0 is ready, not_ready_exit is not ready, anything else an error
 * "exit status N: <last lines of stderr>" or "killed by signal SIGSEGV".
 *
 * The host is threaded, so children are started with posix_spawn (no fork
 * of a threaded process running arbitrary code before exec), every pipe is
 * O_CLOEXEC (a command started by another job at the same moment must not
 * inherit our pipe and keep it open), and signals are reset to their
 * defaults in the child.
 *
 * Waiting: one poll(2) over both output pipes (non-blocking, read at most
 * DRAIN_BUDGET per wake-up, so a command that writes without pause cannot
 * starve the rest), the child's pidfd and the context's cancel fd (readable
 * on cancellation and at the deadline). Whatever and however much the
 * command writes, a timeout or a cancellation is seen at once.
 *
 * Each command gets its own process group, and the group lives no longer
 * than the command:
 *  - on cancellation or timeout the group gets SIGTERM, then SIGKILL after
 *    kill_grace;
 *  - when the command itself (the shell, or the argv program) exits, the
 *    job ends: what it left running in its group (`sleep 100 &`) gets
 *    SIGTERM, and SIGKILL as soon as the command's stdout and stderr are
 *    closed by everyone (or after kill_grace, or at once if the job is
 *    cancelled meanwhile). Output written until then is still logged. So a
 *    background process never holds the job open beyond kill_grace and
 *    never outlives it.
 *  - with keep_background = true, the job still ends when the command
 *    exits, but the group is left alone then (a service started with `&`
 *    keeps running); its later output is not read, so it must go elsewhere
 *    (`server >log 2>&1 &`), else the next write gets SIGPIPE. Moving the
 *    process out of the group instead (`setsid server &`) races with the
 *    kill: the shell may exit before the child has called setsid().
 * The group is signalled only while its leader is unreaped (a zombie still
 * holds the group id), so a recycled id is never hit. The leader is always
 * reaped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <daggerpool/plugin.h>

extern char **environ;

static const dp_host_api *host;

#define TAIL_LINES 5
#define TAIL_LINE_MAX 200 /* bytes of one line kept for the message */
#define TAIL_TEXT_MAX (TAIL_LINES * (TAIL_LINE_MAX + 2) + 1)
#define LINE_MAX_LOG 4096
/* Bytes read from one pipe per wake-up: a command writing without pause
 * must not keep the loop from looking at the cancel fd and the deadline. */
#define DRAIN_BUDGET (64 * 1024)

struct cmd {
    const char **argv; /* NULL-terminated; strings owned by the params */
    size_t argc;
    bool shell; /* argv is {"/bin/sh", "-c", command} */
};

struct shell_state {
    struct cmd run, check;
    const dp_params *env; /* may be NULL */
    const char *cwd;      /* may be NULL */
    int not_ready_exit;
    uint64_t kill_grace_ms;
    bool keep_background;
};

static void cmd_free(struct cmd *c)
{
    free(c->argv);
    c->argv = NULL;
}

static void state_free(void *p)
{
    struct shell_state *s = p;
    if (!s)
        return;
    cmd_free(&s->run);
    cmd_free(&s->check);
    free(s);
}

/* Reads `str_key` (a shell command) or `argv_key` (a list); exactly one may
 * be set. Returns 0 (c->argv NULL if neither is set) or -1. */
static int parse_cmd(dp_plugin_ctx *ctx, const dp_params *p, const char *str_key, const char *argv_key, struct cmd *c)
{
    const char *str = NULL;
    size_t n = 0;
    int rs = host->param_string(p, str_key, &str);
    int ra = host->param_list_count(p, argv_key, &n);
    if (rs < 0 || ra < 0)
        return -1;
    if (rs == DP_PARAM_OK && ra == DP_PARAM_OK) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "shell.command: give `%s` or `%s`, not both", str_key,
                        argv_key);
        return -1;
    }
    if (rs == DP_PARAM_OK) {
        if (!*str) {
            host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "shell.command: `%s` is empty", str_key);
            return -1;
        }
        if (!(c->argv = calloc(4, sizeof(*c->argv))))
            goto oom;
        c->argv[0] = "/bin/sh";
        c->argv[1] = "-c";
        c->argv[2] = str;
        c->argc = 3;
        c->shell = true;
        return 0;
    }
    if (ra == DP_PARAM_OK) {
        if (n == 0) {
            host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "shell.command: `%s` is empty; give at least the program",
                            argv_key);
            return -1;
        }
        if (!(c->argv = calloc(n + 1, sizeof(*c->argv))))
            goto oom;
        for (size_t i = 0; i < n; i++)
            if (host->param_list_item(p, argv_key, i, &c->argv[i]) < 0)
                return -1;
        c->argc = n;
        return 0;
    }
    return 0;
oom:
    host->set_error(ctx, 0, "out of memory");
    return -1;
}

static int shell_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"command",         "argv",  "env",        "cwd",
                                        "not_ready_exit",  "check", "check_argv", "kill_grace",
                                        "keep_background", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    struct shell_state *s = calloc(1, sizeof(*s));
    if (!s) {
        host->set_error(ctx, 0, "out of memory");
        return -1;
    }
    s->not_ready_exit = 75;
    s->kill_grace_ms = 5000;
    if (parse_cmd(ctx, params, "command", "argv", &s->run) != 0 ||
        parse_cmd(ctx, params, "check", "check_argv", &s->check) != 0)
        goto fail;
    if (!s->run.argv) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT,
                        "shell.command needs `command` (run by /bin/sh -c) or `argv` (a list: "
                        "program and arguments)");
        goto fail;
    }
    int64_t nre = 75;
    if (host->param_int(params, "not_ready_exit", &nre) < 0)
        goto fail;
    if (nre < 1 || nre > 255) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT,
                        "shell.command: not_ready_exit must be 1..255 (0 means ready), not %lld", (long long)nre);
        goto fail;
    }
    s->not_ready_exit = (int)nre;
    int keep = 0;
    if (host->param_string(params, "cwd", &s->cwd) < 0 ||
        host->param_duration_ms(params, "kill_grace", &s->kill_grace_ms) < 0 ||
        host->param_bool(params, "keep_background", &keep) < 0 || host->param_group(params, "env", &s->env) < 0)
        goto fail;
    s->keep_background = keep != 0;
    if (s->env) {
        for (size_t i = 0; i < host->param_count(s->env); i++) {
            const char *k = host->param_key_at(s->env, i), *v;
            if (host->param_string(s->env, k, &v) < 0)
                goto fail;
            if (strchr(k, '=')) {
                host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "shell.command: env name '%s' contains '='", k);
                goto fail;
            }
        }
    }
    *state = s;
    return 0;
fail:
    state_free(s);
    return -1;
}

/* ---- output: lines to the log, and the tail of stderr ------------------- */

struct stream {
    int fd; /* -1 once at EOF */
    int level;
    char line[LINE_MAX_LOG];
    size_t len;
    bool keep_tail;
    char tail[TAIL_LINES][TAIL_LINE_MAX + 1];
    unsigned ntail; /* lines seen (ring index = ntail % TAIL_LINES) */
};

static void emit_line(dp_plugin_ctx *ctx, struct stream *st)
{
    st->line[st->len] = '\0';
    if (st->len && st->line[st->len - 1] == '\r')
        st->line[--st->len] = '\0';
    host->log(ctx, st->level, "%s", st->line);
    if (st->keep_tail && st->len) {
        /* Long lines are cut (marked "..."): the tail is for a one-line
         * error message, and every kept line must fit in it. */
        char *slot = st->tail[st->ntail % TAIL_LINES];
        if (st->len <= TAIL_LINE_MAX) {
            memcpy(slot, st->line, st->len + 1);
        } else {
            memcpy(slot, st->line, TAIL_LINE_MAX - 3);
            memcpy(slot + TAIL_LINE_MAX - 3, "...", 4);
        }
        st->ntail++;
    }
    st->len = 0;
}

static void feed(dp_plugin_ctx *ctx, struct stream *st, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            emit_line(ctx, st);
            continue;
        }
        if (st->len == sizeof(st->line) - 1)
            emit_line(ctx, st); /* a very long line is logged in pieces */
        st->line[st->len++] = buf[i];
    }
}

/* Reads what is there, at most DRAIN_BUDGET bytes; closes the stream at
 * EOF. The fd is non-blocking: this never waits. */
static void drain(dp_plugin_ctx *ctx, struct stream *st)
{
    char buf[4096];
    size_t got = 0;
    while (st->fd >= 0 && got < DRAIN_BUDGET) {
        ssize_t n = read(st->fd, buf, sizeof(buf));
        if (n > 0) {
            feed(ctx, st, buf, (size_t)n);
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close(st->fd); /* EOF or a read error: nothing more will come */
        st->fd = -1;
    }
}

static void stream_finish(dp_plugin_ctx *ctx, struct stream *st)
{
    if (st->fd >= 0) {
        close(st->fd);
        st->fd = -1;
    }
    if (st->len)
        emit_line(ctx, st);
}

/* The last lines of stderr joined by "; ", or "". buf holds
 * TAIL_TEXT_MAX bytes, which fits every kept line whole. */
static void tail_text(const struct stream *st, char buf[static TAIL_TEXT_MAX])
{
    size_t off = 0;
    unsigned n = st->ntail < TAIL_LINES ? st->ntail : TAIL_LINES;
    buf[0] = '\0';
    for (unsigned i = st->ntail - n; i < st->ntail; i++)
        off += (size_t)snprintf(buf + off, TAIL_TEXT_MAX - off, "%s%s", off ? "; " : "", st->tail[i % TAIL_LINES]);
}

/* ---- spawning and waiting ----------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* environ with env's keys replaced or added. The strings of environ are
 * borrowed; the added ones are allocated and listed in *owned. */
static char **build_env(const dp_params *env, char ***owned)
{
    size_t n = 0, extra = env ? host->param_count(env) : 0;
    *owned = NULL;
    while (environ && environ[n])
        n++;
    char **out = calloc(n + extra + 1, sizeof(*out));
    char **own = calloc(extra + 1, sizeof(*own));
    if (!out || !own) {
        free(out);
        free(own);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool overridden = false;
        for (size_t j = 0; j < extra && !overridden; j++) {
            const char *key = host->param_key_at(env, j);
            size_t kl = strlen(key);
            overridden = strncmp(environ[i], key, kl) == 0 && environ[i][kl] == '=';
        }
        if (!overridden)
            out[k++] = environ[i];
    }
    for (size_t j = 0; j < extra; j++) {
        const char *key = host->param_key_at(env, j), *val = "";
        host->param_string(env, key, &val);
        if (asprintf(&own[j], "%s=%s", key, val) < 0) {
            for (size_t i = 0; i < j; i++)
                free(own[i]);
            free(own);
            free(out);
            return NULL;
        }
        out[k++] = own[j];
    }
    *owned = own;
    return out;
}

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

static bool exited_nowait(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

struct outcome {
    int status;     /* from waitpid */
    bool cancelled; /* we terminated it */
};

/* Spawns c and waits for it, logging its output; 0 with *o filled, or -1
 * with the error set. */
static int spawn_wait(dp_plugin_ctx *ctx, const struct shell_state *s, const struct cmd *c, struct stream *out,
                      struct stream *err, struct outcome *o)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    char **envp = NULL, **owned = NULL;
    bool fa_ok = false, at_ok = false;
    int rc = -1, e;
    pid_t pid = -1;

    /* Our read ends never block: the command may write to one pipe while
     * we wait on the other, or keep writing after it was told to stop. (Only
     * the read ends: the command's stdout and stderr stay blocking.) */
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0 || fcntl(po[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(pe[0], F_SETFL, O_NONBLOCK) != 0) {
        host->set_error(ctx, 0, "cannot create pipes: %s", strerror(errno));
        goto out;
    }
    if (!(envp = build_env(s->env, &owned))) {
        host->set_error(ctx, 0, "out of memory");
        goto out;
    }
    if ((e = posix_spawn_file_actions_init(&fa)) != 0)
        goto spawn_fail;
    fa_ok = true;
    if ((e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
        (e = posix_spawn_file_actions_adddup2(&fa, po[1], 1)) != 0 ||
        (e = posix_spawn_file_actions_adddup2(&fa, pe[1], 2)) != 0 ||
        (s->cwd && (e = posix_spawn_file_actions_addchdir_np(&fa, s->cwd)) != 0))
        goto spawn_fail;
    if ((e = posix_spawnattr_init(&at)) != 0)
        goto spawn_fail;
    at_ok = true;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if ((e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) !=
            0 ||
        (e = posix_spawnattr_setpgroup(&at, 0)) != 0 || (e = posix_spawnattr_setsigmask(&at, &none)) != 0 ||
        (e = posix_spawnattr_setsigdefault(&at, &all)) != 0)
        goto spawn_fail;
    /* posix_spawn takes char *const[]; it does not modify the strings. */
    char *const *argv = (char *const *)(uintptr_t)c->argv;
    e = c->shell ? posix_spawn(&pid, c->argv[0], &fa, &at, argv, envp)
                 : posix_spawnp(&pid, c->argv[0], &fa, &at, argv, envp);
    if (e != 0) {
        if (e == ENOENT && s->cwd && access(s->cwd, X_OK) != 0)
            host->set_error(ctx, 0, "cannot run '%s': cwd '%s': %s", c->argv[0], s->cwd, strerror(errno));
        else
            host->set_error(ctx, 0, "cannot run '%s': %s", c->argv[0], strerror(e));
        goto out;
    }
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    out->fd = po[0];
    err->fd = pe[0];
    po[0] = pe[0] = -1;

    int pfd = pidfd_open_(pid);
    int cfd = host->cancel_fd(ctx);
    /* exited: the leader has exited (not reaped: its group id is still
     * ours). seen_cancel: the cancel fd (or is_cancelled) said so.
     * cancelled: the command itself was stopped by us, so its status is
     * ours, not its own. termed/killed: SIGTERM/SIGKILL sent to the group. */
    bool exited = false, seen_cancel = false, cancelled = false, termed = false, killed = false;
    bool kept = false; /* keep_background: the group is left as it is */
    uint64_t kill_at = 0;
    for (;;) {
        /* The command is over and so is its output (or the group has been
         * killed): whatever a leftover still writes is not waited for. */
        if (exited && (killed || (out->fd < 0 && err->fd < 0)))
            break;
        struct pollfd fds[4];
        int nf = 0, i_out = -1, i_err = -1, i_pid = -1, i_cancel = -1;
        if (out->fd >= 0) {
            i_out = nf;
            fds[nf++] = (struct pollfd){.fd = out->fd, .events = POLLIN};
        }
        if (err->fd >= 0) {
            i_err = nf;
            fds[nf++] = (struct pollfd){.fd = err->fd, .events = POLLIN};
        }
        if (pfd >= 0 && !exited) {
            i_pid = nf;
            fds[nf++] = (struct pollfd){.fd = pfd, .events = POLLIN};
        }
        /* Readable for good once cancelled: polled until seen. */
        if (cfd >= 0 && !seen_cancel) {
            i_cancel = nf;
            fds[nf++] = (struct pollfd){.fd = cfd, .events = POLLIN};
        }
        /* Wake up to look when there is no fd to tell us: the child's exit
         * without a pidfd, cancellation without a cancel fd, the SIGKILL
         * deadline. */
        int timeout = -1;
        if ((pfd < 0 && !exited) || (cfd < 0 && !seen_cancel))
            timeout = 50;
        if (termed && !killed) {
            uint64_t now = now_ms();
            int left = kill_at > now ? (int)(kill_at - now) : 0;
            if (timeout < 0 || left < timeout)
                timeout = left;
        }
        int n = poll(fds, (nfds_t)nf, timeout);
        if (n < 0 && errno != EINTR) {
            /* Cannot wait properly: stop the group rather than leak it,
             * and reap the leader below (SIGKILL ends it). */
            host->log(ctx, DP_PLUGIN_LOG_ERROR, "poll: %s; killing '%s'", strerror(errno), c->argv[0]);
            kill(-pid, SIGKILL);
            killed = true;
            cancelled = !exited;
            break;
        }
        if (n > 0) {
            if (i_out >= 0 && fds[i_out].revents)
                drain(ctx, out);
            if (i_err >= 0 && fds[i_err].revents)
                drain(ctx, err);
            if (i_cancel >= 0 && fds[i_cancel].revents)
                seen_cancel = true;
        }
        if (!seen_cancel && cfd < 0 && host->is_cancelled(ctx))
            seen_cancel = true;
        if (seen_cancel && !cancelled && !killed) {
            if (!exited) {
                /* Still running: ask, then force after kill_grace. */
                cancelled = true;
                if (!termed) {
                    termed = true;
                    kill_at = now_ms() + s->kill_grace_ms;
                    kill(-pid, SIGTERM);
                }
            } else {
                /* The command is done; its leftovers get no more time. */
                kill(-pid, SIGKILL);
                killed = true;
            }
        }
        if (!exited)
            exited = (i_pid >= 0 && n > 0 && fds[i_pid].revents) || (pfd < 0 && exited_nowait(pid));
        if (exited && !termed && s->keep_background) {
            /* The command ended by itself and what it started stays: take
             * what is in the pipes and stop reading. */
            kept = true;
            break;
        }
        if (exited && !termed) {
            /* The command ended by itself: the job ends with it. What it left
             * in its group is asked to stop; the wait for the output to
             * close is bounded by kill_grace. If someone still holds the
             * output once what is in the pipes is read, say why the job
             * may take longer than its command. */
            drain(ctx, out);
            drain(ctx, err);
            if (out->fd >= 0 || err->fd >= 0)
                host->log(ctx, DP_PLUGIN_LOG_INFO,
                          "'%s' exited but processes it left in its process group hold its "
                          "output: stopping them (SIGTERM, SIGKILL after kill_grace); "
                          "keep_background = true leaves them running",
                          c->argv[0]);
            termed = true;
            kill_at = now_ms() + s->kill_grace_ms;
            kill(-pid, SIGTERM);
        }
        if (termed && !killed && now_ms() >= kill_at) {
            kill(-pid, SIGKILL);
            killed = true;
        }
    }
    /* Nothing of the group outlives the command (unless kept): the leader
     * is not reaped yet, so the group id is still ours. */
    if (!killed && !kept)
        kill(-pid, SIGKILL);
    /* What is already in the pipes (bounded: the writers are dead or
     * dying); later output of a leftover is not waited for. */
    drain(ctx, out);
    drain(ctx, err);
    while (waitpid(pid, &o->status, 0) < 0 && errno == EINTR) {
    }
    if (pfd >= 0)
        close(pfd);
    o->cancelled = cancelled;
    rc = 0;
    goto out;

spawn_fail:
    host->set_error(ctx, 0, "cannot set up the spawn of '%s': %s", c->argv[0], strerror(e));
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    if (owned)
        for (size_t i = 0; owned[i]; i++)
            free(owned[i]);
    free(owned);
    free(envp);
    return rc;
}

static dp_plugin_result run_cmd(dp_plugin_ctx *ctx, const struct shell_state *s, const struct cmd *c, const char *what)
{
    struct stream *out = calloc(1, sizeof(*out)), *err = calloc(1, sizeof(*err));
    if (!out || !err) {
        free(out);
        free(err);
        host->set_error(ctx, 0, "out of memory");
        return DP_PLUGIN_ERROR;
    }
    out->fd = err->fd = -1;
    out->level = DP_PLUGIN_LOG_INFO;
    err->level = DP_PLUGIN_LOG_WARN;
    err->keep_tail = true;
    struct outcome o = {0, false};
    dp_plugin_result r = DP_PLUGIN_ERROR;
    if (spawn_wait(ctx, s, c, out, err, &o) != 0)
        goto done;
    stream_finish(ctx, out);
    stream_finish(ctx, err);
    char tail[TAIL_TEXT_MAX];
    tail_text(err, tail);
    const char *sep = tail[0] ? ": " : "";
    if (o.cancelled) {
        host->set_error(ctx, 0, "%s cancelled: process group terminated%s%s", what, sep, tail);
    } else if (WIFEXITED(o.status)) {
        int code = WEXITSTATUS(o.status);
        if (code == 0)
            r = DP_PLUGIN_READY;
        else if (code == s->not_ready_exit) {
            host->log(ctx, DP_PLUGIN_LOG_INFO, "%s: exit status %d: not ready", what, code);
            r = DP_PLUGIN_NOT_READY;
        } else
            host->set_error(ctx, 0, "exit status %d%s%s", code, sep, tail);
    } else if (WIFSIGNALED(o.status)) {
        int sig = WTERMSIG(o.status);
        const char *abbrev = sigabbrev_np(sig);
        char name[32];
        if (abbrev)
            snprintf(name, sizeof(name), "SIG%s", abbrev);
        else
            snprintf(name, sizeof(name), "%d", sig);
        host->set_error(ctx, 0, "killed by signal %s%s%s", name, sep, tail);
    } else {
        host->set_error(ctx, 0, "ended with wait status %#x", (unsigned)o.status);
    }
done:
    stream_finish(ctx, out);
    stream_finish(ctx, err);
    free(out);
    free(err);
    return r;
}

static dp_plugin_result shell_run(dp_plugin_ctx *ctx, void *state)
{
    const struct shell_state *s = state;
    return run_cmd(ctx, s, &s->run, "command");
}

static dp_plugin_result shell_check(dp_plugin_ctx *ctx, void *state)
{
    const struct shell_state *s = state;
    if (!s->check.argv)
        return DP_PLUGIN_READY; /* no check configured: run's answer stands */
    return run_cmd(ctx, s, &s->check, "check");
}

static const dp_job_type command_type = {
    .struct_size = sizeof(dp_job_type),
    .name = "command",
    .description = "runs a command (sh -c or argv); exit 0 ready, not_ready_exit not ready",
    .create = shell_create,
    .run = shell_run,
    .check = shell_check,
    .destroy = state_free,
};

static const dp_job_type *const types[] = {&command_type, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "shell",
    .version = "1.0.0",
    .description = "runs commands: command",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}

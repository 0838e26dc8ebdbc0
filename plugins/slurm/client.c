/*
 * client.c - running one Slurm client for the slurm plugin (client.h): its
 * own process group, the default signal mask and dispositions, stdin from
 * /dev/null, stdout and stderr read through pipes with poll(2) together with
 * the host's cancellation fd; the child is reaped before the call returns.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "client.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const dp_host_api *slurm__host;

uint64_t slurm__now_ms(void)
{
    return slurm__now_ns() / 1000000u;
}

uint64_t slurm__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* posix_spawn's argv is `char *const[]` for historical reasons; it never
 * writes through it. */
char *slurm__arg(const char *s)
{
    char *p;
    memcpy(&p, &s, sizeof p);
    return p;
}

/* Drops trailing whitespace in place. */
static void rtrim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* The last `max` bytes of a client's stderr on one line ("; " between lines),
 * for error messages. Writes into buf. */
static const char *one_line(const char *text, char *buf, size_t cap)
{
    size_t n = strlen(text);
    const size_t max = 600;
    if (n > max)
        text += n - max;
    size_t o = 0;
    int sep = 0;
    for (const char *p = text; *p && o + 3 < cap; p++) {
        if (*p == '\n' || *p == '\r') {
            sep = o > 0;
            continue;
        }
        if (sep) {
            buf[o++] = ';';
            buf[o++] = ' ';
            sep = 0;
        }
        if (o + 1 < cap)
            buf[o++] = *p;
    }
    buf[o] = '\0';
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Running a Slurm client                                                    */
/* ------------------------------------------------------------------------ */

/* Reads what fd has into buf (of *cap bytes, kept NUL-terminated). With
 * grow, buf is malloc'd and doubles as needed up to SLURM_OUT_MAX (a batch
 * query's stdout: one line per job); otherwise it is fixed and the rest is
 * dropped. Read failures and a full buffer only lose output. */
static void drain(int fd, char **buf, size_t *len, size_t *cap, int grow, int *open_)
{
    char tmp[16384];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n > 0) {
        if (grow && *len + (size_t)n + 1 > *cap && *cap < SLURM_OUT_MAX) {
            size_t nc = *cap ? *cap : 4096;
            while (nc < *len + (size_t)n + 1 && nc < SLURM_OUT_MAX)
                nc *= 2;
            char *nb = realloc(*buf, nc);
            if (nb) {
                *buf = nb;
                *cap = nc;
            }
        }
        size_t room = *cap - 1 - *len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(*buf + *len, tmp, take);
        *len += take;
        (*buf)[*len] = '\0';
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        *open_ = 0;
    }
}

slurm_client_out *slurm__client_new(void)
{
    slurm_client_out *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->out_cap = 4096;
    r->out = malloc(r->out_cap);
    if (!r->out) {
        free(r);
        return NULL;
    }
    r->out[0] = '\0';
    return r;
}

void slurm__client_free(slurm_client_out *r)
{
    if (r)
        free(r->out);
    free(r);
}

/*
 * Runs argv[0] (found on PATH) with argv and envp (NULL: the host's
 * environment) and collects its output into *r (from slurm__client_new).
 *
 * ctx may be NULL (from destroy: no cancellation). When the ctx ends while
 * the client runs: with finish_on_cancel (sbatch: killing it mid-way could
 * leave a submitted job nobody knows of) the client is left to finish within
 * its cap and r->cancelled is set; otherwise its process group is killed at
 * once. The client is killed at cap_ms in any case. Returns 0 when the
 * process ran (whatever its status), -1 when it could not be started
 * (r->spawn_error says why). The child is always reaped.
 */
int slurm__run_client(dp_plugin_ctx *ctx, char *const argv[], char *const envp[], uint64_t cap_ms, int finish_on_cancel,
                      slurm_client_out *r)
{
    r->spawned = r->exited = r->status = r->cancelled = r->timed_out = 0;
    r->out[0] = r->err[0] = r->spawn_error[0] = '\0';
    r->out_len = r->err_len = 0;

    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        snprintf(r->spawn_error, sizeof r->spawn_error, "pipe: %s", strerror(errno));
        if (outp[0] >= 0) {
            close(outp[0]);
            close(outp[1]);
        }
        return -1;
    }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    /* Own process group (killed as one), and the signal state of a fresh
     * process: the host may block signals in its worker threads. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);

    /* Through env --ignore-signal=PIPE: a Slurm client whose connection the
     * controller drops (a busy slurmctld does, under a thousand submissions)
     * then sees EPIPE and retries as Slurm's clients do, where the default
     * SIGPIPE killed it ("sbatch was killed by signal 13"). posix_spawn can
     * reset a signal to its default but not ignore one. */
    size_t argc = 0;
    while (argv[argc])
        argc++;
    char **wrapped = calloc(argc + 4, sizeof *wrapped);
    if (!wrapped) {
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        close(outp[0]);
        close(outp[1]);
        close(errp[0]);
        close(errp[1]);
        snprintf(r->spawn_error, sizeof r->spawn_error, "out of memory");
        return -1;
    }
    wrapped[0] = "env";
    wrapped[1] = "--ignore-signal=PIPE";
    wrapped[2] = "--";
    memcpy(wrapped + 3, argv, argc * sizeof *argv);
    pid_t pid;
    int rc = posix_spawnp(&pid, "env", &fa, &attr, wrapped, envp ? envp : environ);
    free(wrapped);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(outp[1]);
    close(errp[1]);
    if (rc != 0) {
        snprintf(r->spawn_error, sizeof r->spawn_error, "cannot run %s: %s%s", argv[0], strerror(rc),
                 rc == ENOENT ? " (are the Slurm clients installed and on PATH?)" : "");
        close(outp[0]);
        close(errp[0]);
        return -1;
    }
    r->spawned = 1;

    int cfd = ctx ? slurm__host->cancel_fd(ctx) : -1;
    int out_open = 1, err_open = 1, killed = 0;
    uint64_t deadline = slurm__now_ms() + cap_ms;
    while (out_open || err_open) {
        struct pollfd pf[3];
        int n = 0, io = -1, ie = -1, ic = -1;
        if (out_open) {
            io = n;
            pf[n++] = (struct pollfd){.fd = outp[0], .events = POLLIN};
        }
        if (err_open) {
            ie = n;
            pf[n++] = (struct pollfd){.fd = errp[0], .events = POLLIN};
        }
        /* The cancel fd stays readable once fired: watch it until then. */
        if (ctx && !r->cancelled && cfd >= 0) {
            ic = n;
            pf[n++] = (struct pollfd){.fd = cfd, .events = POLLIN};
        }
        uint64_t t = slurm__now_ms();
        int wait = t >= deadline ? 0 : (int)(deadline - t);
        if (ctx && !r->cancelled && cfd < 0 && wait > 100)
            wait = 100; /* no fd: look at is_cancelled now and then */
        int k = poll(pf, (nfds_t)n, wait);
        if (k < 0 && errno != EINTR)
            break;
        if (io >= 0 && (pf[io].revents & (POLLIN | POLLHUP | POLLERR)))
            drain(outp[0], &r->out, &r->out_len, &r->out_cap, 1, &out_open);
        if (ie >= 0 && (pf[ie].revents & (POLLIN | POLLHUP | POLLERR))) {
            char *eb = r->err;
            size_t ecap = sizeof r->err;
            drain(errp[0], &eb, &r->err_len, &ecap, 0, &err_open);
        }
        if (ctx && !r->cancelled && ((ic >= 0 && (pf[ic].revents & POLLIN)) || slurm__host->is_cancelled(ctx))) {
            r->cancelled = 1;
            if (!finish_on_cancel && !killed) {
                kill(-pid, SIGKILL);
                killed = 1;
            }
        }
        if (!killed && slurm__now_ms() >= deadline) {
            r->timed_out = 1;
            kill(-pid, SIGKILL);
            killed = 1;
        }
    }
    close(outp[0]);
    close(errp[0]);
    int st = 0;
    pid_t w;
    do
        w = waitpid(pid, &st, 0);
    while (w < 0 && errno == EINTR);
    if (killed)
        kill(-pid, SIGKILL); /* anything the client left in its group */
    if (w == pid && WIFEXITED(st) && (WEXITSTATUS(st) == 127 || WEXITSTATUS(st) == 126) &&
        strstr(r->err, "env: ") == r->err) {
        /* env could not run the client: as if it had not been spawned. */
        int code = WEXITSTATUS(st);
        r->spawned = 0;
        snprintf(r->spawn_error, sizeof r->spawn_error, "cannot run %s: %s%s", argv[0],
                 code == 127 ? strerror(ENOENT) : strerror(EACCES),
                 code == 127 ? " (are the Slurm clients installed and on PATH?)" : "");
        return -1;
    }
    if (w == pid && WIFEXITED(st)) {
        r->exited = 1;
        r->status = WEXITSTATUS(st);
    } else if (w == pid && WIFSIGNALED(st)) {
        r->status = WTERMSIG(st);
    } else {
        /* SIGCHLD ignored by the host: the status is lost. */
        r->exited = !killed;
        r->status = 0;
    }
    rtrim(r->out);
    rtrim(r->err);
    return 0;
}

/* Describes a client that did not succeed, into buf: "squeue: exit status 1:
 * <stderr>" or "squeue: killed after 30s". */
const char *slurm__client_failure(const char *name, const slurm_client_out *r, char *buf, size_t cap)
{
    char line[700];
    if (!r->spawned)
        snprintf(buf, cap, "%s", r->spawn_error);
    else if (r->timed_out)
        snprintf(buf, cap, "%s did not finish in time and was killed", name);
    else if (r->cancelled && !r->exited)
        snprintf(buf, cap, "%s was interrupted (cancelled)", name);
    else if (!r->exited)
        snprintf(buf, cap, "%s was killed by signal %d", name, r->status);
    else
        snprintf(buf, cap, "%s: exit status %d%s%s", name, r->status, r->err[0] ? ": " : "",
                 r->err[0] ? one_line(r->err, line, sizeof line) : "");
    return buf;
}

/* ------------------------------------------------------------------------ */
/* The job's state                                                           */

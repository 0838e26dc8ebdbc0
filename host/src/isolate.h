/* isolate.h - plugin job instances in a child process (isolation =
 * "process"). Private to libdaggerpool; the plugin loader (plugin.c) is the
 * only user.
 *
 * One child per attempt: dp__isolate_start spawns daggerpool-job-runner,
 * which loads the same plugin copy the host pinned and calls the type's
 * create; each dp__isolate_call runs run or check there; dp__isolate_end
 * destroys the instance and reaps the child. While a call is out, the host
 * thread waits with poll(2) on the child's socket and the attempt's context
 * fd: log lines are forwarded as they come, store requests answered, and
 * once the context is done (cancellation, job, probe or global timeout) the
 * child is told to cancel, then sent SIGTERM after a grace period, then
 * SIGKILL. The wire protocol and the runner live in isolate.c and
 * runner/runner.c; docs/isolation.md states the guarantees.
 */
#ifndef DP_ISOLATE_H
#define DP_ISOLATE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"

/* Messages longer than this (errors, log lines) are cut in the child, with
 * a note of the full length: a plugin cannot flood the host's memory. */
#define DP_ISOLATE_MAX_MESSAGE (8u * 1024u)

/* How long a child may go on after it was told to cancel before SIGTERM,
 * and after SIGTERM before SIGKILL. */
#define DP_ISOLATE_GRACE_MS 1000u

/* An add-time params check (no job, no context) is bounded by this. */
#define DP_ISOLATE_CREATE_CHECK_MS 60000u

typedef struct dp_isolate dp_isolate_t;

/* Logs one line of the child's as the job (job is NULL at add time). */
typedef void (*dp_isolate_log_fn)(void *user, dp_job_t *job, const char *job_name, int level,
                                  const char *msg);

typedef struct dp_isolate_spec {
    const char *plugin;       /* plugin name, for messages and the child's check */
    const char *path;         /* the plugin's file, for messages only */
    int fd;                   /* the pinned version's private copy (memfd or unlinked
                               * temporary file); required: -1 refuses the attempt */
    const char *type;         /* TYPE of PLUGIN.TYPE */
    const char *job_name;
    const dp_params_t *params;
    dp_limits_t limits;
    dp_isolate_log_fn log;    /* required */
    void *log_user;
    dp_store_t *store;        /* used when the job has no run store; may be NULL */
} dp_isolate_spec_t;

/* Spawns the child for one attempt and runs create there. job is the
 * attempt (its context bounds the create and cancels it), or NULL for the
 * add-time params check (bounded by DP_ISOLATE_CREATE_CHECK_MS).
 *
 * Returns 0 with *out set: create succeeded. Otherwise non-zero, *out NULL,
 * *msg a malloc'd message the caller frees (the plugin's own message if
 * create refused, or why the child failed: "plugin 'x' crashed with SIGSEGV
 * in job 'y'") and *permanent whether a retry is pointless. Called on the
 * worker that runs the attempt. */
int dp__isolate_start(const dp_isolate_spec_t *spec, dp_job_t *job, dp_isolate_t **out,
                      char **msg, bool *permanent);

/* Runs `run` (check = false) or `check` in the child and returns what the
 * plugin returned, as is (an invalid value included: the caller reports
 * it). On DP_PLUGIN_ERROR, *msg is the malloc'd message (or NULL if the
 * plugin gave none) and *flags its DP_PLUGIN_ERROR_* flags. A child that
 * died, or was killed because the context ended, gives DP_PLUGIN_ERROR with
 * the cause; the instance is dead then and later calls fail at once. */
dp_plugin_result dp__isolate_call(dp_isolate_t *iso, dp_job_t *job, bool check, char **msg,
                                  unsigned *flags);

/* Ends the instance: destroy in the child, then the child exits and is
 * reaped (killed if it does not go within the grace period). Frees iso.
 * NULL is a no-op. */
/* how: DP_ISO_END_QUIET (destroy only), DP_ISO_END_DONE or DP_ISO_END_CUT
 * (the type's end hook first, told whether the attempt was cut short). */
enum { DP_ISO_END_QUIET = 0, DP_ISO_END_DONE = 1, DP_ISO_END_CUT = 2 };
void dp__isolate_end(dp_isolate_t *iso, dp_job_t *job, int how);

/* Ends every runner this process has running, at once, with everything
 * their plugins started: each runner's supervisor is sent
 * DP_ISOLATE_SIG_KILL_ALL. For a program that is about to exit while
 * attempts may still be out (the command's second SIGINT, an exit on a
 * fatal error). Async-signal-safe: it reads a fixed table of the live
 * runners' pids with lock-free atomics and calls kill(2). The attempts
 * themselves then see their child die (a later dp__isolate_call or
 * dp__isolate_end reaps it). */
void dp__isolate_kill_all(void);

/* Isolated attempts that can be out at once (the table dp__isolate_kill_all
 * reads); one more is refused with an error that says so. */
#define DP_ISOLATE_MAX_LIVE 8192u

/* The runner executable that will be used, or NULL with the reason in err.
 * $DAGGERPOOL_JOB_RUNNER, else libexec/daggerpool/daggerpool-job-runner
 * beside the bin/ or lib/ directory of the running program or of the
 * library. */
const char *dp__isolate_runner(char *err, size_t errlen);

/* Cuts a malloc'd message longer than DP_ISOLATE_MAX_MESSAGE (at a UTF-8
 * character boundary) and appends "... [truncated: N bytes in all]".
 * Returns the message to use (msg itself, or a replacement after freeing
 * msg); NULL stays NULL. Used for in-process errors too, so both modes
 * report a huge message the same way. */
char *dp__isolate_cap_message(char *msg);

/* ---- the wire protocol (isolate.c and the runner) ------------------------
 * Frames on a SOCK_STREAM socketpair: u32 length (of what follows), u8
 * type, payload. Integers in host byte order (both ends are one machine and
 * one build); strings as u32 length, bytes, NUL. The runner is started with
 * argv[1] = DP_ISOLATE_RUNNER_ARG and gets: fd 3 the control socket, fd 4
 * the cancel socket (EOF, or a byte equal to the low byte of the current
 * call's sequence number, means "cancel"; INIT is call 0), fd 5 the
 * plugin's private copy (a memfd or an unlinked temporary file: always
 * there, the runner never loads the plugin's path). The worker marks all
 * three close-on-exec, so nothing the plugin executes inherits them. */
#define DP_ISOLATE_RUNNER_ARG "--daggerpool-job-runner-v1"
/* The runner is two processes: the one the host starts is a supervisor that
 * runs no plugin code; it forks the worker that speaks the protocol and runs
 * the plugin. The supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER),
 * so whatever the plugin starts stays its descendant whatever process group
 * or session it moves to; once the worker has exited, or on
 * DP_ISOLATE_SIG_KILL_ALL, it SIGKILLs every descendant, reaps them and exits
 * with the worker's status (the same exit code, or the same signal). It
 * takes DP_ISOLATE_SIG_KILL_ALL as its parent-death signal too, so the host's
 * death ends the attempt. The host starts it with the signals of
 * dp__isolate_runner_sigset blocked; the worker unblocks them. */
#define DP_ISOLATE_SIG_KILL_ALL SIGUSR1

static inline void dp__isolate_runner_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, DP_ISOLATE_SIG_KILL_ALL);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
}

#define DP_ISOLATE_FD_CTL 3
#define DP_ISOLATE_FD_CANCEL 4
#define DP_ISOLATE_FD_PLUGIN 5
#define DP_ISOLATE_MAX_FRAME (64u * 1024u * 1024u)

enum {
    /* host -> child */
    DP_ISO_INIT = 1,        /* u32 attempt, i64 remaining_ms, u64 cpu_ms, u64 memory, u64
                             * open_files, u8 has_fd, str plugin, str path, str type, str job,
                             * params */
    DP_ISO_CALL = 2,        /* u8 check, u32 seq, u32 attempt, i64 remaining_ms */
    DP_ISO_END = 3,         /* destroy, exit */
    DP_ISO_STORE_REPLY = 4, /* i32 rc, u64 full length, bytes */
    /* child -> host */
    DP_ISO_LOG = 10,        /* i32 level, str message */
    DP_ISO_RESULT = 11,     /* i32 result, u32 flags, u8 has_message, str message */
    DP_ISO_STORE_SET = 12,  /* str key, bytes */
    DP_ISO_STORE_GET = 13,  /* str key, u64 cap */
    DP_ISO_STORE_DEL = 14   /* str key */
};

typedef struct dp_iso_buf {
    unsigned char *data;
    size_t len, cap;
    bool oom;
} dp_iso_buf_t;

typedef struct dp_iso_reader {
    const unsigned char *p;
    size_t n;
    bool bad; /* a read ran past the end or found a malformed value */
} dp_iso_reader_t;

/* Starts a frame of `type` in b (reset first). */
void dp__iso_begin(dp_iso_buf_t *b, unsigned type);
void dp__iso_put_u8(dp_iso_buf_t *b, uint8_t v);
void dp__iso_put_u32(dp_iso_buf_t *b, uint32_t v);
void dp__iso_put_u64(dp_iso_buf_t *b, uint64_t v);
void dp__iso_put_bytes(dp_iso_buf_t *b, const void *data, size_t len);
void dp__iso_put_str(dp_iso_buf_t *b, const char *s); /* NULL as "" */
/* Params, recursively (origin, then each key with its kind and value). */
void dp__iso_put_params(dp_iso_buf_t *b, const dp_params_t *p);
/* Fills in the frame's length; false if out of memory. */
bool dp__iso_end(dp_iso_buf_t *b);
void dp__iso_buf_free(dp_iso_buf_t *b);

uint8_t dp__iso_get_u8(dp_iso_reader_t *r);
uint32_t dp__iso_get_u32(dp_iso_reader_t *r);
uint64_t dp__iso_get_u64(dp_iso_reader_t *r);
/* Points into the frame; NULL (and r->bad) if malformed. */
const void *dp__iso_get_bytes(dp_iso_reader_t *r, size_t *len);
const char *dp__iso_get_str(dp_iso_reader_t *r);
/* A new params object (the caller frees it), or NULL if malformed. */
dp_params_t *dp__iso_get_params(dp_iso_reader_t *r);

/* Writes all of buf (MSG_NOSIGNAL: a dead peer is EPIPE, not a signal).
 * 0, or -1 with errno. */
int dp__iso_send_all(int fd, const void *buf, size_t len);
/* Reads one whole frame, blocking: 0 with *type and the payload in frame
 * (reused between calls), 1 on EOF, -1 on an error or a malformed frame. */
int dp__iso_recv_frame(int fd, dp_iso_buf_t *frame, unsigned *type);

#endif /* DP_ISOLATE_H */

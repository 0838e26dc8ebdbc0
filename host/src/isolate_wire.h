/* isolate_wire.h - what the two ends of an isolated attempt share: the
 * host (isolate.c) and daggerpool-job-runner (host/runner/runner.c). The
 * runner's process arguments and descriptors, its signals, the frames and
 * their codec, and the cap on messages. isolate_wire.c implements it; it
 * is part of the runner's small library (daggerpool_runner_support), so
 * nothing here may reach the engine.
 */
#ifndef DP_ISOLATE_WIRE_H
#define DP_ISOLATE_WIRE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"

/* Messages longer than this (errors, log lines) are cut in the child, with
 * a note of the full length: a plugin cannot flood the host's memory. */
#define DP_ISOLATE_MAX_MESSAGE (8u * 1024u)

/* Room for the note that a cut message ends with. */
#define DP_ISOLATE_CAP_NOTE_MAX 64

/* Cuts a malloc'd message longer than DP_ISOLATE_MAX_MESSAGE (at a UTF-8
 * character boundary) and appends "... [truncated: N bytes in all]".
 * Returns the message to use (msg itself, or a replacement after freeing
 * msg); NULL stays NULL. Used for in-process errors too, so both modes
 * report a huge message the same way. */
char *dp__isolate_cap_message(char *msg);

/* dp__isolate_cap_message for a message longer than limit (which is at
 * least DP_ISOLATE_MAX_MESSAGE): the host cuts what a misbehaving child
 * sends beyond a message the child cut already, note included. */
char *dp__isolate_cap_message_at(char *msg, size_t limit);

/* How an instance ends (the END frame, dp__isolate_end): DP_ISO_END_QUIET
 * (destroy only), DP_ISO_END_DONE or DP_ISO_END_CUT (the type's end hook
 * first, told whether the attempt was cut short). */
enum { DP_ISO_END_QUIET = 0, DP_ISO_END_DONE = 1, DP_ISO_END_CUT = 2 };

/* ---- the wire protocol ----------------------------------------------------
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

/* The warm runner (isolate_warm.c, host/runner/warm.c): the runner started
 * once with argv[1] = DP_ISOLATE_WARM_ARG, single-threaded, which makes the
 * supervisors of attempts ahead ("spares") from its own warm state instead
 * of the host spawning the runner afresh. It gets fd 3, a SOCK_SEQPACKET
 * socket, on which every message either way is u32 DP_ISOLATE_WARM_MAGIC,
 * u32 a kind below, i32 a value. It first sends HELLO (its pid), then
 * DP_ISOLATE_WARM_SPARES spares, then one more for each TAKEN the host
 * sends, until the socket closes (the host is gone). A spare is a clone
 * with CLONE_PARENT, so it is the host's child as a spawned runner is (the
 * host reaps it, watches it with a pidfd), in its own process group, whose
 * worker is forked and waits; SPARE carries its pid and, as SCM_RIGHTS,
 * the host's end of the worker's socket. The host sends the attempt's
 * request there: u32 DP_ISOLATE_WARM_MAGIC, then the environment the
 * attempt gets (NUL-terminated strings, back to back), with
 * DP_ISOLATE_WARM_NFDS descriptors (SCM_RIGHTS) in DP_ISOLATE_WARM_FD_*
 * order. The worker takes them as fds 1 and 2 (the host's stderr), 3, 4, 5
 * (as for a spawned runner), its working directory and environment, and
 * goes on as a spawned one does. A spare whose socket the host closes
 * unused exits (status 0); the host reaps it. */
#define DP_ISOLATE_WARM_ARG "--daggerpool-job-runner-warm-v3"
#define DP_ISOLATE_WARM_MAGIC 0x52575044u /* "DPWR" */
enum {
    DP_ISOLATE_WARM_HELLO = 1,  /* warm runner -> host: its pid; it is ready */
    DP_ISOLATE_WARM_SPARE = 3,  /* warm runner -> host: a spare's pid, with its socket */
    DP_ISOLATE_WARM_FAILED = 5, /* warm runner -> host: no spare this time, -errno */
    DP_ISOLATE_WARM_TAKEN = 6,  /* host -> warm runner: a spare was taken, make another */
    DP_ISOLATE_WARM_ZYGOTE = 7  /* host -> warm runner: start a zygote (see below) */
};
/* Spares kept ready: two attempts started at once (-j 2) each find one. */
#define DP_ISOLATE_WARM_SPARES 2
enum {
    DP_ISOLATE_WARM_FD_CTL = 0,
    DP_ISOLATE_WARM_FD_CANCEL = 1,
    DP_ISOLATE_WARM_FD_PLUGIN = 2,
    DP_ISOLATE_WARM_FD_STDERR = 3,
    DP_ISOLATE_WARM_FD_CWD = 4, /* an O_PATH descriptor of the directory */
    DP_ISOLATE_WARM_NFDS = 5
};
/* A request larger than this (a huge environment) is not sent: the attempt
 * is spawned afresh instead. */
#define DP_ISOLATE_WARM_MAX_REQUEST (128u * 1024u)
/* The warm runner's name (comm), so that it can be told from the attempts
 * it starts (which carry the runner's own). */
#define DP_ISOLATE_WARM_COMM "dp-warm-runner"

/* Zygotes (isolate_zygote.c, host/runner/zygote.c): a supervisor kept per
 * plugin version that serves that version's attempts one after the other,
 * the plugin loaded once in it, forking one worker per attempt. The host
 * asks the warm runner for one with ZYGOTE, whose SCM_RIGHTS are the
 * zygote's end of a SOCK_SEQPACKET socket and the version's private copy;
 * the warm runner clones it (CLONE_PARENT: the host's child, in its own
 * process group) and keeps nothing of it. On that socket every message is
 * u32 DP_ISOLATE_ZYGOTE_MAGIC, u32 a kind below, i32 a value, except the
 * attempt's request, which is exactly a spare's (DP_ISOLATE_WARM_MAGIC,
 * the environment, DP_ISOLATE_WARM_NFDS descriptors). The zygote first
 * sends STARTED (its pid), then READY once the plugin is loaded (its entry
 * point and init called, no thread or child started by them) or FAILED (it
 * then exits: the host spawns such a version's attempts as before). Per
 * attempt: the request, the worker forked; TERM (SIGTERM to the worker's
 * group) and KILL (every descendant SIGKILLed) as the host escalates; DONE
 * with the worker's wait status once it is reaped and nothing it started is
 * left. The zygote exits when its socket closes, after killing what an
 * attempt under way started, and on DP_ISOLATE_SIG_KILL_ALL (its
 * parent-death signal too). */
#define DP_ISOLATE_ZYGOTE_MAGIC 0x5a595044u /* "DPYZ" */
enum {
    DP_ISOLATE_ZYGOTE_STARTED = 1, /* zygote -> host: its pid */
    DP_ISOLATE_ZYGOTE_READY = 2,   /* zygote -> host: the plugin is loaded */
    DP_ISOLATE_ZYGOTE_FAILED = 3,  /* zygote -> host: it could not load it; it exits */
    DP_ISOLATE_ZYGOTE_TERM = 4,    /* host -> zygote: SIGTERM to the worker's group */
    DP_ISOLATE_ZYGOTE_KILL = 5,    /* host -> zygote: SIGKILL the attempt's processes */
    DP_ISOLATE_ZYGOTE_DONE = 6     /* zygote -> host: the attempt is over, its wait status */
};
#define DP_ISOLATE_ZYGOTE_COMM "dp-zygote"

#define DP_ISOLATE_FD_CTL 3
#define DP_ISOLATE_FD_CANCEL 4
#define DP_ISOLATE_FD_PLUGIN 5
#define DP_ISOLATE_MAX_FRAME (64u * 1024u * 1024u)

enum {
    /* host -> child */
    DP_ISO_INIT = 1,        /* u32 attempt, i64 remaining_ms, u64 cpu_ms, u64 memory, u64
                             * open_files, u8 has_fd, u8 mode, str plugin, str path, str type,
                             * str job, params */
    DP_ISO_CALL = 2,        /* u8 check, u32 seq, u32 attempt, i64 remaining_ms */
    DP_ISO_END = 3,         /* destroy, exit */
    DP_ISO_STORE_REPLY = 4, /* i32 rc, u64 full length, bytes */
    DP_ISO_CHECK = 5,       /* checker only: str type, str job, params */
    /* child -> host */
    DP_ISO_LOG = 10,        /* i32 level, str message */
    DP_ISO_RESULT = 11,     /* i32 result, u32 flags, u8 has_message, str message */
    DP_ISO_STORE_SET = 12,  /* str key, bytes */
    DP_ISO_STORE_GET = 13,  /* str key, u64 cap */
    DP_ISO_STORE_DEL = 14,  /* str key */
    DP_ISO_RETRY_AFTER = 15 /* u64 ms (ABI 1.2 retry_after; no reply) */
};

/* INIT's mode. An attempt: load the plugin, find the type, create (the
 * RESULT), then CALLs until END. A checker (params checks at add time):
 * load the plugin (a RESULT once loaded, or the refusal), then one CHECK
 * per job, each a create and a destroy answered with a RESULT, until END;
 * a create that is refused does not end it. */
enum { DP_ISO_MODE_ATTEMPT = 0, DP_ISO_MODE_CHECKER = 1 };

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

#endif /* DP_ISOLATE_WIRE_H */

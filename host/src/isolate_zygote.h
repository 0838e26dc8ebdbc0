/* isolate_zygote.h - zygotes: per plugin version, a supervisor kept by the
 * host that serves that version's attempts one after the other with the
 * plugin loaded once, forking a fresh worker for each (host/runner/zygote.c;
 * the wire is isolate_wire.h's). Private to libdaggerpool: isolate.c takes
 * one for an attempt and falls back to the warm runner's spares (or a
 * spawn) whenever none can serve. docs/isolation.md says what it changes.
 */
#ifndef DP_ISOLATE_ZYGOTE_H
#define DP_ISOLATE_ZYGOTE_H

#include <stdint.h>
#include <sys/types.h>

typedef struct dp_zygote dp_zygote_t;

/* An idle zygote of the plugin version whose private copy is plugin (the
 * same open file: same device and inode), started through the warm runner
 * if none is idle, taken for one attempt; NULL when none can serve (off,
 * the warm runner cannot serve, this process is a fork of the one that
 * started them, or that version cannot have one): the caller starts the
 * attempt as before. Never fails an attempt by itself. */
dp_zygote_t *dp__isolate_zygote_take(const char *runner, int plugin);

/* Starts the attempt in z: ctl, cancel and plugin become its worker's fds
 * 3, 4 and 5, with this process's stderr, working directory and
 * environment. 0, or -1 (z is then good for nothing but put). */
int dp__isolate_zygote_start(dp_zygote_t *z, int ctl, int cancel, int plugin);

/* The zygote's pid (the host's child; DP_ISOLATE_SIG_KILL_ALL ends the
 * attempt under way, and the zygote), and the descriptor that turns
 * readable when the attempt may be over (poll it, then ask
 * dp__isolate_zygote_wait). */
pid_t dp__isolate_zygote_pid(const dp_zygote_t *z);
int dp__isolate_zygote_fd(const dp_zygote_t *z);

/* Waits up to ms (forever if negative) for the attempt to be over: its
 * worker reaped and nothing it started left (DONE), or the zygote dead
 * (reaped here). 1 with *status the worker's wait status (the zygote's, if
 * it died), 0 if not yet. */
int dp__isolate_zygote_wait(dp_zygote_t *z, int64_t ms, int *status);

/* The host's escalation for the attempt under way: SIGTERM to its worker's
 * process group; SIGKILL to every process of the attempt; and the last
 * resort, SIGKILL to the zygote itself (its worker dies with it). */
void dp__isolate_zygote_term(dp_zygote_t *z);
void dp__isolate_zygote_kill_all(dp_zygote_t *z);
void dp__isolate_zygote_kill(dp_zygote_t *z);

/* Gives z back once its attempt is over: kept idle for the next attempt
 * of its version if it is alive and its attempt ended, else ended (its
 * attempt's processes killed) and reaped. NULL is a no-op. */
void dp__isolate_zygote_put(dp_zygote_t *z);

#endif /* DP_ISOLATE_ZYGOTE_H */

/* isolate.h - plugin job instances in a child process (isolation =
 * "process"). Private to libdaggerpool: the job adapter (plugin_job.c)
 * starts and drives the instances; the command's signal handling calls
 * dp__isolate_kill_all.
 *
 * One child per attempt: dp__isolate_start starts daggerpool-job-runner (a
 * copy of the warm runner, isolate_warm.h, else a spawn of it), which
 * loads the same plugin copy the host pinned and calls the type's
 * create; each dp__isolate_call runs run or check there; dp__isolate_end
 * destroys the instance and reaps the child. While a call is out, the host
 * thread waits with poll(2) on the child's socket and the attempt's context
 * fd: log lines are forwarded as they come, store requests answered, and
 * once the context is done (cancellation, job, probe or global timeout) the
 * child is told to cancel, then sent SIGTERM after a grace period, then
 * SIGKILL. The wire protocol is isolate_wire.h's, the runner
 * host/runner/runner.c; docs/isolation.md states the guarantees.
 */
#ifndef DP_ISOLATE_H
#define DP_ISOLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"
#include "isolate_wire.h" /* the wire protocol, the message cap */

/* How long a child may go on after it was told to cancel before SIGTERM,
 * and after SIGTERM before SIGKILL. */
#define DP_ISOLATE_GRACE_MS 1000u

/* An add-time params check (no job, no context) is bounded by this. */
#define DP_ISOLATE_CREATE_CHECK_MS 60000u

typedef struct dp_isolate dp_isolate_t;

/* Logs one line of the child's as the job (job is NULL at add time). */
typedef void (*dp_isolate_log_fn)(void *user, dp_job_t *job, const char *job_name, int level, const char *msg);

typedef struct dp_isolate_spec {
    const char *plugin; /* plugin name, for messages and the child's check */
    const char *path;   /* the plugin's file, for messages only */
    int fd;             /* the pinned version's private copy (memfd or unlinked
                               * temporary file); required: -1 refuses the attempt */
    const char *type;   /* TYPE of PLUGIN.TYPE */
    const char *job_name;
    const dp_params_t *params;
    dp_limits_t limits;
    dp_isolate_log_fn log; /* required */
    void *log_user;
    dp_store_t *store; /* used when the job has no run store; may be NULL */
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
int dp__isolate_start(const dp_isolate_spec_t *spec, dp_job_t *job, dp_isolate_t **out, char **msg, bool *permanent);

/* The params check at add time for many jobs in one child: a checker
 * loads spec's plugin version (with spec's limits; its type, job and params
 * are not used) and waits. 0 with *out, or non-zero with *msg (malloc'd;
 * the caller frees it): why the child could not load the plugin or died. */
int dp__isolate_checker_start(const dp_isolate_spec_t *spec, dp_isolate_t **out, char **msg);

/* Checks one job's params in checker iso, as dp__isolate_start with no job
 * would: the child creates spec->type's instance with spec->params and
 * destroys it. spec's plugin version and limits must be the checker's. 0:
 * accepted. Otherwise *msg (malloc'd): the plugin's refusal, or why the
 * child died while checking this job ("plugin 'x' crashed with SIGSEGV in
 * job 'y'"): then the checker is dead, and the caller ends it. */
int dp__isolate_check(dp_isolate_t *iso, const dp_isolate_spec_t *spec, char **msg);

/* Whether the child of iso is gone (a checker that died must be ended and
 * started again). */
bool dp__isolate_dead(const dp_isolate_t *iso);

/* Runs `run` (check = false) or `check` in the child and returns what the
 * plugin returned, as is (an invalid value included: the caller reports
 * it). On DP_PLUGIN_ERROR, *msg is the malloc'd message (or NULL if the
 * plugin gave none) and *flags its DP_PLUGIN_ERROR_* flags. A child that
 * died, or was killed because the context ended, gives DP_PLUGIN_ERROR with
 * the cause; the instance is dead then and later calls fail at once. */
dp_plugin_result dp__isolate_call(dp_isolate_t *iso, dp_job_t *job, bool check, char **msg, unsigned *flags);

/* Ends the instance: destroy in the child, then the child exits and is
 * reaped (killed if it does not go within the grace period). Frees iso.
 * NULL is a no-op. how: DP_ISO_END_QUIET, DP_ISO_END_DONE or DP_ISO_END_CUT
 * (isolate_wire.h). */
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

#endif /* DP_ISOLATE_H */

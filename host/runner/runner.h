/* runner.h - the parts of daggerpool-job-runner: the supervisor of one
 * attempt (runner.c, which also holds the worker and main) and the warm
 * runner that starts supervisors (warm.c). Private to host/runner/.
 */
#ifndef DP_RUNNER_H
#define DP_RUNNER_H

#include <sys/types.h>

/* Supervises one attempt: forks the worker that runs the plugin, kills
 * whatever the plugin started once the worker is gone, and exits as the
 * worker did. Needs fds 3, 4, 5 of the protocol in place and the signals of
 * dp__isolate_runner_sigset blocked. host_pid is the parent whose death
 * ends the attempt. */
void dp__runner_supervise(pid_t host_pid) __attribute__((noreturn));

/* The warm runner (argv[1] = DP_ISOLATE_WARM_ARG): serves the host's
 * requests on fd 3 until the host is gone, cloning one supervisor per
 * request. The signals of dp__isolate_runner_sigset are blocked. */
void dp__runner_warm_main(void) __attribute__((noreturn));

#endif /* DP_RUNNER_H */

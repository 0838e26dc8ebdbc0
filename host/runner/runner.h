/* runner.h - the parts of daggerpool-job-runner: the supervisor of one
 * attempt (runner.c, which also holds the worker and main) and the warm
 * runner that starts supervisors (warm.c). Private to host/runner/.
 */
#ifndef DP_RUNNER_H
#define DP_RUNNER_H

#include <sys/types.h>

/* Supervises one attempt: forks the worker that runs the plugin, kills
 * whatever the plugin started once the worker is gone, and exits as the
 * worker did. Needs the signals of dp__isolate_runner_sigset blocked, and
 * fds 3, 4, 5 of the protocol in place, unless spare >= 0: then the worker
 * waits for them on that socket first (dp__runner_spare_activate). host_pid
 * is the parent whose death ends the attempt. */
void dp__runner_supervise(pid_t host_pid, int spare) __attribute__((noreturn));

/* In a spare's worker: waits on sock for the attempt (the request the host
 * sends) and puts its descriptors, working directory and
 * environment in place. Exits if the warm runner goes first. */
void dp__runner_spare_activate(int sock);

/* The warm runner (argv[1] = DP_ISOLATE_WARM_ARG): makes spares (a
 * supervisor cloned ahead, whose worker waits for the host's request) and
 * hands them to the host over fd 3, one more each time the host says it
 * took one, until the host is gone. The signals of
 * dp__isolate_runner_sigset are blocked. */
void dp__runner_warm_main(void) __attribute__((noreturn));

#endif /* DP_RUNNER_H */

/* isolate_warm.h - the warm runner: one daggerpool-job-runner per host
 * process, started once and kept, that starts the supervisor of each
 * isolated attempt as a copy of its own warm, single-threaded state
 * (host/runner/warm.c) instead of the host spawning the runner afresh.
 * Private to libdaggerpool: isolate.c asks it first and spawns afresh
 * whenever it cannot serve. docs/isolation.md says what it changes.
 */
#ifndef DP_ISOLATE_WARM_H
#define DP_ISOLATE_WARM_H

#include <spawn.h>
#include <sys/types.h>

/* Starts one attempt's supervisor from the warm runner (starting the warm
 * runner first if need be): ctl, cancel and plugin become its fds 3, 4 and
 * 5; it gets this process's current stderr (as fds 1 and 2), working
 * directory and environment, and its own process group. The supervisor is
 * a child of this process, as a spawned runner is: the caller reaps it.
 * 0 with *pid; -1 when the warm runner cannot serve (it is off, failed,
 * or this process is a fork of the one that started it): the caller
 * spawns the runner afresh. Never fails an attempt by itself. */
int dp__isolate_warm_spawn(const char *runner, int ctl, int cancel, int plugin, pid_t *pid);

/* Asks the warm runner (starting it first if need be) for a zygote
 * (isolate_zygote.c): zsock (the zygote's end of its socket) and plugin
 * (the version's private copy) go to it; the zygote says the rest on that
 * socket, which closes with nothing said if it could not be started. 0 if
 * asked, -1 when the warm runner cannot serve. */
int dp__isolate_warm_zygote(const char *runner, int zsock, int plugin);

/* Sends an attempt's request on sock, as to a spare's worker: ctl, cancel
 * and plugin, our stderr, working directory and environment. 0, or -1. */
int dp__isolate_warm_send_request(int sock, int ctl, int cancel, int plugin);

/* The signal state every runner starts with, spawned afresh or warm: the
 * signals of dp__isolate_runner_sigset blocked, the usual ones at their
 * defaults, its own process group. 0, or an errno value. */
int dp__isolate_spawnattr(posix_spawnattr_t *attr);

#endif /* DP_ISOLATE_WARM_H */

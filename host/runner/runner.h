/* runner.h - the parts of daggerpool-job-runner: the supervisor of one
 * attempt (runner.c, which also holds the worker and main) and the warm
 * runner that starts supervisors (warm.c). Private to host/runner/.
 */
#ifndef DP_RUNNER_H
#define DP_RUNNER_H

#include <stdbool.h>
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

/* A worker's life (runner.c): reads INIT on fd 3, loads the plugin from fd 5
 * unless preloaded (a zygote's worker: the plugin is loaded, its entry point
 * and init called), runs the attempt; returns or exits with the worker's
 * exit code. */
int dp__runner_worker_main(bool preloaded);

/* In a zygote: loads the plugin from fd 5 and calls its entry point and
 * init, as a worker would. false if any of it failed. */
bool dp__runner_preload(void);

/* The supervisor's bookkeeping (runner.c), which a zygote shares: the
 * worker to watch (its status not yet known), whether it was reaped (and
 * its wait status), reaping what has exited, and SIGKILLing every
 * descendant until none is left. */
void dp__runner_watch(pid_t worker);
bool dp__runner_worker_done(int *status);
void dp__runner_reap_exited(void);
void dp__runner_kill_descendants(void);

/* Receives a message on a runner socket (warm.c): up to cap bytes into buf,
 * up to maxfds descriptors (close-on-exec) into fds, *nfds how many; more
 * are closed. The message's length, 0 when the socket has closed, -1 on an
 * error (errno), EMSGSIZE for a truncated message (its descriptors
 * closed). */
ssize_t dp__runner_recv(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds);

/* Whether a received message is an attempt's request (a spare's, or a
 * zygote's): the magic, a NUL-terminated environment, every descriptor. */
bool dp__runner_is_request(const unsigned char *buf, ssize_t n, int nfds);

/* In an attempt's worker: puts the request's descriptors (fds
 * DP_ISOLATE_WARM_FD_*), working directory and environment (the request's
 * NUL-terminated strings from env to end) in place, and closes every other
 * descriptor above fd 5. Exits (2) if it cannot. */
void dp__runner_take_request(const int *fds, char *env, char *end);

/* A zygote (zygote.c): started by the warm runner with sock (its socket to
 * the host) and the plugin's private copy at fd 5, the signals of
 * dp__isolate_runner_sigset blocked; serves the host's attempts of that
 * version until the socket closes. host_pid as for dp__runner_supervise. */
void dp__runner_zygote_main(pid_t host_pid, int sock) __attribute__((noreturn));

#endif /* DP_RUNNER_H */

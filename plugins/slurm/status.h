/*
 * status.h - the states of the Slurm jobs this plugin copy follows, read
 * for all of them at once (one `squeue -j ID,ID,...` per look, `sacct` for
 * those that left the queue) and shared by every job's check. Private to
 * plugins/slurm/. Thread-safe; owns no thread (a look runs on the thread of
 * the call that needs it; the others wait for it).
 */
#ifndef DP_SLURM_STATUS_H
#define DP_SLURM_STATUS_H

#include <daggerpool/plugin.h>

#include <stddef.h>
#include <stdint.h>

typedef enum { S_LIVE, S_DONE, S_FAILED, S_UNKNOWN } slurm_state_class;

typedef struct slurm_job_info {
    char state[48];     /* e.g. "RUNNING", "FAILED" */
    char reason[128];   /* squeue's %r, e.g. "NonZeroExitCode"; may be "" */
    char exit_code[32]; /* "3:0" (exit:signal); may be "" */
    char start[32];     /* squeue's %S: when it started or is expected to, e.g.
                         * "2026-12-03T15:04:36" (local time), "N/A"; may be "" */
    int found;          /* 0: neither squeue nor sacct knows the job */
} slurm_job_info;

/* PENDING, RUNNING, ... are live; COMPLETED done; FAILED, CANCELLED, ...
 * failed; anything else unknown. */
slurm_state_class slurm__classify(const char *state);

/* Follows Slurm job id from now on (counted: each follow needs its
 * unfollow). known_state: what the caller learnt of it just now ("PENDING"
 * after sbatch), which answers a get whose not_before is at most now; NULL
 * when nothing is known (adopting a job from the store). 0, or -1 when out
 * of memory. */
int slurm__status_follow(const char *id, const char *known_state);
void slurm__status_unfollow(const char *id);

/*
 * The state of followed job id as seen by a look that began at or after
 * not_before_ns (slurm__now_ns; 0: any look, the follow's known state
 * included). Answers from the last look when it is recent enough; otherwise
 * waits for the look under way, or makes one for every followed job that
 * has not ended. Returns 0 with *info, or -1 with msg set: the look failed
 * (the clients' words), ctx ended while waiting (*cancelled set), or the
 * call reached its bound, a little before ctx's deadline (status.c: a look
 * is cut there, a wait given up). ctx is the calling job's (cancels its
 * wait, and a look it makes; its deadline bounds both).
 */
int slurm__status_get(dp_plugin_ctx *ctx, const char *id, uint64_t not_before_ns, slurm_job_info *info, int *cancelled,
                      char *msg, size_t msglen);

/* Frees what this plugin copy kept (its fini: no job uses it any more). */
void slurm__status_fini(void);

#endif /* DP_SLURM_STATUS_H */

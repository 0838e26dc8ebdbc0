/*
 * client.h - running one Slurm client (sbatch, squeue, sacct, scontrol,
 * scancel) for the slurm plugin, and what the plugin's files share: the
 * host table, the clock, the caps. Private to plugins/slurm/.
 */
#ifndef DP_SLURM_CLIENT_H
#define DP_SLURM_CLIENT_H

#include <daggerpool/plugin.h>

#include <stddef.h>
#include <stdint.h>

#define SLURM_OUT_CAP 65536       /* bytes kept of a client's stderr */
#define SLURM_OUT_MAX (64u << 20) /* bytes kept of a client's stdout (grows up to this) */
#define SLURM_QUERY_CAP_MS 30000  /* squeue, sacct, scontrol, scancel */
#define SLURM_ID_MAX 64

/* The host table, set once by the entry point (every file of the plugin
 * reads it; each hot-swapped copy has its own). */
extern const dp_host_api *slurm__host;

typedef struct slurm_client_out {
    int spawned;   /* the process was started */
    int exited;    /* it exited normally: status holds its exit code */
    int status;    /* exit code when exited, else the signal that ended it */
    int cancelled; /* the ctx ended while it ran */
    int timed_out; /* the command's own time cap passed; it was killed */
    char *out;     /* stdout, NUL-terminated (malloc'd, grows; "" if none) */
    size_t out_len, out_cap;
    char err[SLURM_OUT_CAP];
    size_t err_len;
    char spawn_error[160];
} slurm_client_out;

/* A new, empty client_out (NULL when out of memory); free with
 * slurm__client_free. */
slurm_client_out *slurm__client_new(void);
void slurm__client_free(slurm_client_out *r);

/*
 * Runs argv[0] (found on PATH) with argv and envp (NULL: the host's
 * environment) and collects its output into *r.
 *
 * ctx may be NULL (no cancellation). When the ctx ends while the client
 * runs: with finish_on_cancel (sbatch: killing it mid-way could leave a
 * submitted job nobody knows of) the client is left to finish within its
 * cap and r->cancelled is set; otherwise its process group is killed at
 * once. The client is killed at cap_ms in any case. Returns 0 when the
 * process ran (whatever its status), -1 when it could not be started
 * (r->spawn_error says why). The child is always reaped.
 */
int slurm__run_client(dp_plugin_ctx *ctx, char *const argv[], char *const envp[], uint64_t cap_ms, int finish_on_cancel,
                      slurm_client_out *r);

/* Describes a client that did not succeed, into buf: "squeue: exit status 1:
 * <stderr>" or "squeue did not finish in time and was killed". */
const char *slurm__client_failure(const char *name, const slurm_client_out *r, char *buf, size_t cap);

/* CLOCK_MONOTONIC in milliseconds and in nanoseconds. */
uint64_t slurm__now_ms(void);
uint64_t slurm__now_ns(void);

/* posix_spawn's argv is `char *const[]` for historical reasons; it never
 * writes through it. */
char *slurm__arg(const char *s);

#endif /* DP_SLURM_CLIENT_H */

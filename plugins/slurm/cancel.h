/*
 * cancel.h - scancel for the slurm plugin, many jobs per call: the jobs that
 * a fail-fast or a Ctrl-C cuts short all at once are cancelled by a few
 * `scancel ID ID ...` calls, not one each. Private to plugins/slurm/.
 */
#ifndef DP_SLURM_CANCEL_H
#define DP_SLURM_CANCEL_H

#include <daggerpool/plugin.h>

/* Cancels Slurm job id (why: for the log) and returns once a scancel that
 * named it has ended. Calls from several threads at once share scancel
 * calls: the first runs one for every id asked for until then (after
 * gathering for a moment), the others wait for the call that names theirs.
 * ctx may be NULL (destroy): errors then go to stderr. Never fails the
 * call: a failed scancel is logged. */
void slurm__cancel(dp_plugin_ctx *ctx, const char *id, const char *why);

/* Frees what this plugin copy kept (its fini). */
void slurm__cancel_fini(void);

#endif /* DP_SLURM_CANCEL_H */

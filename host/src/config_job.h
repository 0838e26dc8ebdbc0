/* config_job.h - reading a workflow's jobs: each job through one table of
 * its keys, its settings the job's own or else the defaults' (config_job.c).
 * The jobs as read and their names: config_names.h. Private to the
 * config_*.c files. */
#ifndef DP_CONFIG_JOB_H
#define DP_CONFIG_JOB_H

#include <libconfig.h>
#include <stddef.h>

#include "config_names.h"
#include "config_problems.h"

void dp__jobs_init(dp__jobs_t *jobs);
void dp__jobs_free(dp__jobs_t *jobs);

/* The job's scheduling settings (defaults applied). */
static inline const dp_job_spec_t *dp__jobs_spec(const dp__jobs_t *jobs, const dp__wf_job_t *job)
{
    return job->spec ? job->spec : &jobs->spec0;
}

/* Checks the `defaults` group d: the keys a job may take a default for,
 * and the groups among them. Their values are checked for each job that
 * takes them (its name in the message). */
void dp__jobs_read_defaults(dp__cfg_reader_t *rd, const config_setting_t *d);

/* Reads the `jobs` list (n > 0 members) into jobs, each job's keys taken
 * from it or else from defaults (a group, or NULL), then reports duplicate
 * names and unknown dependencies (unless a job was dropped for want of a
 * name, which would make its dependents' references look unknown). */
void dp__jobs_read(dp__cfg_reader_t *rd, dp__jobs_t *jobs, const config_setting_t *list, size_t n,
                   const config_setting_t *defaults);

/* Jobs that have no params group (and no defaults' one) get their empty
 * params, with the job's place in the file as origin: called after
 * libconfig's tree is freed so that they reuse its memory rather than add
 * to the peak. */
void dp__jobs_finish_params(dp__cfg_reader_t *rd, dp__jobs_t *jobs);

#endif /* DP_CONFIG_JOB_H */

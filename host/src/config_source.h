/* config_source.h - the text libconfig reads: the workflow file and its
 * @includes, each checked before it is read, handed to libconfig as one
 * stream, with the stream's lines mapped back to files and the integers
 * libconfig would misread kept as written. See config_source.c. Private to
 * the config_*.c files. */
#ifndef DP_CONFIG_SOURCE_H
#define DP_CONFIG_SOURCE_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

/* The names of the files a workflow's settings came from (its @includes),
 * one copy each, owned by the workflow: jobs, plugins and messages point at
 * them. The workflow file itself is not in it (its path is the workflow's). */
typedef struct dp__file_names {
    char **v;
    size_t n;
} dp__file_names_t;

void dp__file_names_free(dp__file_names_t *names);

/* What was read: alive while the settings are read from libconfig's tree
 * (their lines and integers refer to it), freed with dp__src_free. */
typedef struct dp__src dp__src_t;

/* Reads the workflow file at path, and the files it @includes, into cfg
 * (config_init'ed by the caller, who also config_destroys it, whatever the
 * answer). The source, or NULL with the one problem in err: a file that
 * cannot be read (DP_ECONFIG "PATH: cannot read the workflow file: why"),
 * an @include, limit or syntax error at FILE:LINE, or out of memory. path is
 * not copied (it must outlive the source); the name of every included file
 * is added to names. */
dp__src_t *dp__src_read(const char *path, dp__file_names_t *names, config_t *cfg, char *err, size_t errlen);

void dp__src_free(dp__src_t *src);

/* The file and line of libconfig's line `line` (config_setting_source_line). */
void dp__src_where(const dp__src_t *src, unsigned line, const char **file, int *fline);

/* An integer setting's value x (config_setting_get_int64) as written: true
 * with *v, or false with *text, the value as written, for one beyond 64
 * bits. The stream handed libconfig a stand-in for each integer it would
 * have misread; this resolves it (and remembers it was met). */
bool dp__src_int(dp__src_t *src, long long x, long long *v, const char **text);

/* The integers beyond 64 bits that no dp__src_int met (in a list, under an
 * unknown key), one at a time from *i on: the text as written with *file and
 * *line, or NULL after the last. */
const char *dp__src_unmet_int(const dp__src_t *src, size_t *i, const char **file, int *line);

#endif /* DP_CONFIG_SOURCE_H */

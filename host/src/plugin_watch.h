/* plugin_watch.h - the plugin file watcher (private parts). The public API is the
 * dp_reloader_* section of daggerpool.h. */
#ifndef DP_PLUGIN_WATCH_H
#define DP_PLUGIN_WATCH_H

#include <stdbool.h>

#include "daggerpool/daggerpool.h"

/* Whether the file at path looks whole: at least an ELF header, and, for a
 * 64-bit ELF, its program headers, the file contents of its segments and its
 * section header table all lie within the file. A file that does not start
 * with the ELF magic counts as whole (it is no plugin, and the loader will
 * say so); one too short to tell does not. false also when it cannot be
 * read. */
bool dp__elf_whole(const char *path);

#endif /* DP_PLUGIN_WATCH_H */

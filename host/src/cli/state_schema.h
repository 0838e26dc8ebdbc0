/* state_schema.h - the state file's schema (state_schema.c). */
#ifndef DP_CLI_STATE_SCHEMA_H
#define DP_CLI_STATE_SCHEMA_H

#include <stddef.h>

#include "state.h"

/* Takes db from schema version `from` to CLI_STATE_SCHEMA_VERSION in one
 * transaction; an SQLite code, err set on failure (nothing changed). */
int cli_state_schema_migrate(sqlite3 *db, int from, char *err, size_t errlen);

#endif

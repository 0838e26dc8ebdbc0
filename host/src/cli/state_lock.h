/* state_lock.h - one writer per state file (state_lock.c). */
#ifndef DP_CLI_STATE_LOCK_H
#define DP_CLI_STATE_LOCK_H

#include <stdbool.h>

typedef struct console console_t;

/* Takes the lock of the state at path (the file PATH.lock): 0 with *fd
 * set; 1 when the lock file cannot be made (warned: no state); 2 when
 * another process holds it and wait is false (refused, naming the holder),
 * or a signal ended the wait. */
int state_lock_take(const char *cmd, const char *path, bool wait, console_t *con, int *fd);
/* Releases it (the holder line emptied, the file kept). fd -1: nothing. */
void state_lock_release(int fd, const char *path);

#endif

/* store.h - the thread-safe key/value store (private parts). */
#ifndef DP_STORE_H
#define DP_STORE_H

#include "daggerpool/daggerpool.h"

/* Key prefix of the snapshots the pool keeps of running jobs. */
#define DP_STORE_RUNNING_PREFIX "dp.running/"

#endif

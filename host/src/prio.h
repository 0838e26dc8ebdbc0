/* prio.h - pools and priorities in a run (prio.c): the order among ready
 * jobs and the slots of named pools.
 *
 * Two halves. The graph's (dp_gsched_t, in dag.h and dag.c, since the
 * graph owns it), built by validate: each job's
 * remaining path (its critical path, in jobs, or in expected milliseconds
 * once dp_graph_set_expected_ms gave durations), the roots in the order
 * they should start, each policy's pool, and for a graph with a pool or a
 * priority its jobs' levels (the order of (priority, path), dense).
 *
 * The run's (dp_sched_t, here), only for such a graph ("ordered") and a run
 * where a priority or a pool can bound the run (dp__sched_needed). Without
 * a priority it keeps only the pools (a run of "pool lines", below:
 * dp__sched_lines_only). With one: under one
 * mutex, a bucket queue of the ready jobs by level (highest first, first
 * come first served within a level) and, per pool, its free slots and a
 * bucket queue of the jobs waiting for them (its roots that wait from the
 * start in a list of their own beside it: dp__sched_seed_roots). The run's lock-free queue
 * (queue.c) then carries tokens, not jobs: each token stands for one job
 * put into the ready queue, and whoever takes a token takes the best ready
 * job (pool.c). The plain case (no pool, no priority) never makes one: its
 * scheduling takes no lock, and uses only the paths (pool.c).
 *
 * A pool job's slots are taken when it is made ready and given back when it
 * ends; two ways skip the lock between: a worker's carry (up to 15 jobs of
 * a full pool's line that need the same slots, taken in one step and run
 * one after the other, each on the slots of the one before:
 * dp__sched_step_carry), and a job that hands its slots to its one ready
 * successor when nothing waits (dp__sched_handoff, a chain). Every pool's
 * slots in use never exceed its size: a carried job starts only when the
 * one whose slots it takes over has ended.
 */
#ifndef DP_PRIO_H
#define DP_PRIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag.h"
#include "record.h"

/* Whether a run of validated g with nworkers workers needs the run's half:
 * a priority other than 0, or a pool some nworkers of whose jobs could ask
 * for more slots than it has (nworkers times the most one job asks). A
 * pool that cannot bound the run (jobs in flight never exceed nworkers) is
 * not scheduled: such a run, without priorities, runs as the plain case
 * does (no lock), and its pool jobs never wait (dp__sched_unbound_waits). */
bool dp__sched_needed(const dp_graph_t *g, unsigned nworkers);

/* The pool waits of a run of g that did not need the scheduler: 0 ms (1)
 * for each job of a pool that started (its slot's start tick), none (0)
 * for the others. NULL: no memory, or g has no pools. */
uint32_t *dp__sched_unbound_waits(dp_graph_t *g, const dp_slot_t *slots);

/* The run's half (ordered graphs only). */
typedef struct dp_sched dp_sched_t;

/* Whether a run of g that needs the run's half (dp__sched_needed) needs
 * only its pools' lines: no job has a priority, so the ready jobs go
 * through the run's queue in the plain order and only pool jobs meet the
 * scheduler, to take their slots as they start (dp__sched_pool_take) and
 * give them back (dp__sched_pool_give), with no lock while nobody waits. */
bool dp__sched_lines_only(const dp_graph_t *g);

/* A scheduler for one run of g (validated, ordered, held by the run),
 * stamping pool waits with the run's ticks (tsc: TSC ticks, ticks.h). NULL:
 * no memory. */
dp_sched_t *dp__sched_new(dp_graph_t *g, bool tsc);

/* Frees it; its scratch goes back to the graph, emptied. */
void dp__sched_free(dp_sched_t *s);

/* Whether every pool has all its slots back, nobody waits in a line and
 * no job is ready: true of every run that ended with no job pending
 * (pool.c asserts it; a job left behind would end unknown). */
bool dp__sched_settled(dp_sched_t *s);

/* ---- A run of pool lines only (dp__sched_lines_only) ----
 *
 * A pool's free slots are a counter taken and given back with atomic
 * operations; its line (jobs that were to start and found too few slots,
 * best first) is kept under the lock. A job takes slots only while its
 * pool's line is empty, so that it never passes a waiting job (but in the
 * instant a job joins the line). No wake-up is lost:
 * joining the line and giving slots back each write one counter (seq_cst)
 * and then read the other's, in dp__sched_pool_drain; one of the two sees
 * both, and hands out what fits. */

/* Whether s is such a run's. */
bool dp__sched_is_lines(const dp_sched_t *s);

/* Job id, of a pool, is about to start: true when it has its slots (taken
 * now, or given to it before: dp__sched_pool_pass, dp__sched_pool_drain).
 * False: it waits in its pool's line, from now; the caller then calls
 * dp__sched_pool_drain for its pool (id's pool + 1: dp__sched_pool_of),
 * since slots may have come back meanwhile. */
bool dp__sched_pool_take(dp_sched_t *s, uint32_t id);

/* Job done's slots back to its pool (none: nothing). Returns its pool + 1
 * (0: none): the caller then calls dp__sched_pool_drain for it. */
uint32_t dp__sched_pool_give(dp_sched_t *s, uint32_t done);

/* Whether job done, ended (or held by its worker), may pass its slots on
 * to succ, the job to run next on the same worker, with no atomic
 * operation: both of the same pool and slots, succ without slots of its
 * own yet (not drained to it), and (as far as this thread sees) nobody
 * waits in that pool's line. True: succ has the slots. A stale read passes
 * a job that just joined the line once; it gets the slots when they are
 * next given back. */
bool dp__sched_pool_pass(dp_sched_t *s, uint32_t done, uint32_t succ);

/* Whether job done has a pool and nobody waits in its line (as far as
 * this thread sees): its worker may hold its slots for the next job it
 * runs (pool.c). */
bool dp__sched_pool_unwaited(dp_sched_t *s, uint32_t done);

/* The pool (+ 1, 0: none) of job id. */
uint32_t dp__sched_pool_of(const dp_sched_t *s, uint32_t id);

/* The jobs of pool p1 - 1's line that fit now, best first, taken out with
 * their slots, up to max into ids; returns how many (no lock when the line
 * is empty). The head of the line that does not fit stops the rest (it is
 * not passed). Called again while it returns max. */
size_t dp__sched_pool_drain(dp_sched_t *s, uint32_t p1, uint32_t *ids, size_t max);

/* ---- An ordered run (a priority somewhere) ---- */

/* One step, under the lock: job `done` ended (UINT32_MAX: none), its pool's
 * slots come back; jobs ids[0..n) are ready to start (their dependencies
 * done), each put in the ready queue if its pool (if any) gives it its
 * slots, else in its pool's waiting line; jobs waiting that now fit become
 * ready too. When next is not NULL and the step made a job ready, the best
 * ready job is taken into *next (else *next = UINT32_MAX). Returns how
 * many jobs it made ready and left in the queue: the tokens to publish. */
size_t dp__sched_step(dp_sched_t *s, uint32_t done, const uint32_t *ids, size_t n, uint32_t *next);

/* dp__sched_step, and when it took a job into *next that belongs to a pool,
 * up to max more jobs waiting in that pool's line into carry[0..*ncarry),
 * best first, each of the same pool_slots as *next and none of a lower
 * level than the best job in the ready queue: a "carry" that the worker runs one after the other on the slots
 * of *next, each taking them over when the one before ended (pool.c),
 * so that they hold no slots of their own and the
 * pool's bound holds. carry NULL: none. */
size_t dp__sched_step_carry(dp_sched_t *s, uint32_t done, const uint32_t *ids, size_t n, uint32_t *next,
                            uint32_t *carry, size_t max, size_t *ncarry);

/* dp__sched_step for the roots at the run's start, before any worker runs
 * and before any other step: ids[0..n) are roots, and every call's in the
 * order of the graph's root_order (best first). A root whose pool cannot
 * give it its slots now is not sorted into the pool's bucket queue but put
 * at the end of a list of its pool's roots (the pool's line is both, its
 * head the better of their heads); it waits from the first call's time.
 * Returns how many jobs it made ready: the tokens to publish. */
size_t dp__sched_seed_roots(dp_sched_t *s, const uint32_t *ids, size_t n);
/* Whether job `done`, ended, may hand its pool slots straight to `succ`,
 * the one job it made ready, with no lock: both of the same pool (or of
 * none) and the same pool_slots, and (as far as this thread sees) no job
 * ready and none waiting in that pool: the step under the lock would have
 * given succ the same slots and to this worker. Lock-free reads of counts
 * kept under the lock: a job queued meanwhile misses nothing, since no
 * slot was freed (it gets the next one freed under the lock, and the last
 * holder of these ends under it). True: succ has the slots. */
bool dp__sched_handoff(dp_sched_t *s, uint32_t done, uint32_t succ);

/* The jobs of a carry not run (carry[0..n)) back into their pool's line,
 * without slots, e.g. when the worker that holds them stands by for a
 * parked job. Returns how many jobs it made ready: the tokens to publish. */
size_t dp__sched_carry_return(dp_sched_t *s, const uint32_t *carry, size_t n);

/* Takes the n best ready jobs into ids (one per token taken; there are at
 * least n). */
void dp__sched_take(dp_sched_t *s, uint32_t *ids, size_t n);

/* After the workers are joined: each wait of a job that had to wait for
 * its pool counted until the job's start (its slot's start tick; a job
 * that never started has none). */
void dp__sched_finish(dp_sched_t *s, const dp_slot_t *slots);

/* The pool waits of the run (per job ms + 1, 0: none), handed over to the
 * caller (who frees them); NULL for a graph without pools. */
uint32_t *dp__sched_take_waits(dp_sched_t *s);

#endif /* DP_PRIO_H */

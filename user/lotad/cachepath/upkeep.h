/* upkeep.c: keeping the store (drops, eviction, gauges, the scrubber, the directory
 * watch, the admin evict call). */
#ifndef LOTA_UPKEEP_H
#define LOTA_UPKEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "cachepath/cachepath-t.h"

/* A write through this node changed k: fn is called (on the worker's thread) after the
 * local entry is dropped, so that the node holding k drops it too. */
typedef void (*cachepath_invalidate_fn)(void *arg, struct worker *w, const struct cache_key *k);
void cachepath_on_invalidate(struct cachepath *cp, cachepath_invalidate_fn fn, void *arg);
/* Drops k here (a peer told us, or lotad's own request proved it gone): how many chunks. */
int cachepath_invalidate(struct cachepath *cp, const struct cache_key *k);
void cachepath_wake_evict(struct cachepath *cp);
/* The one place a key's entry is dropped for a write: locally, then through the
 * invalidation hook (the key's owner node). */
int cachepath_drop(struct cachepath *cp, struct worker *w, const struct cache_key *k);
/* The store's on_pressure callback (any thread) and the gauges' refresh. */
void upkeep_pressure(void *arg);
void upkeep_refresh(void *arg);
/* Reads the cache must not store (SSE-C, no-store, HEAD, If-Range): relayed, counted. */
void bypass_route(struct route *rt);
/* The control thread's timers, /admin/evict and the "cache" part of /admin/status. */
int upkeep_start(struct cachepath *cp);

/* The tick: the scrubber reads what scrub-rate allows since the last one, so that the
 * control thread is never held long (50 MB/s: 5 MB a tick, a few ms). */
#define UPKEEP_SCRUB_TICK_MS 100
/* Every this many ms of ticks: the cache directory's health check, eviction above the
 * high watermark, the gauges, the credentials' reload. */
#define UPKEEP_TICK_MS 1000

/* The pacing (struct scrub_pace, in cachepath-t.h) is pure, so that it is unit-tested
 * alone. */
void scrub_pace_init(struct scrub_pace *p, uint64_t rate, uint64_t now_ms);
/* scrub-interval (ms; 0: passes back to back). passes: the store's count of passes
 * ended; true while the next pass must wait (then no budget accrues). */
void scrub_pace_set_interval(struct scrub_pace *p, uint64_t interval_ms);
bool scrub_pace_is_resting(struct scrub_pace *p, uint64_t passes, uint64_t now_ms);
/* Bytes the scrubber may read now (0: none yet, or off). */
uint64_t scrub_pace_budget(struct scrub_pace *p, uint64_t now_ms);
/* The run read n of its budget bytes. Less than the budget means its pass ended or there
 * was nothing to read: what is left is forgotten rather than saved up for a burst. */
void scrub_pace_spent(struct scrub_pace *p, uint64_t budget, uint64_t n);

#endif

/* upkeep.c: keeping the store (drops, eviction, gauges, the admin evict call). */
#ifndef LOTA_UPKEEP_H
#define LOTA_UPKEEP_H

#include <stdbool.h>

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

#endif

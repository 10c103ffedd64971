/* Private to the cache path: its shared state, the read route's per-request state, and
 * what its files call in each other. */
#ifndef LOTA_CACHEPATH_INT_H
#define LOTA_CACHEPATH_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "cachepath/bgfill.h"
#include "cachepath/cachepath.h"
#include "cachepath/herd.h"
#include "exchange/exchange.h"

struct committer;
struct event;

struct cachepath {
	struct lotad *d;
	struct cache *cache;	    /* NULL: relay only */
	struct bgfill_pool *bgfill; /* NULL: no service credentials, no background fills */
	struct herd *herd;
	struct committer *committer;
	struct event *evict_ev, *tick_ev;
	cachepath_invalidate_fn on_inval;
	void *inval_arg;
	struct route read, bypass, prestage, write;
};

/* A read the cache may serve (read route), from its start to its end. */
struct objread {
	struct cachepath *cp;
	bool no_cache; /* Cache-Control: no-cache: serve, but store nothing */
	bool redone;   /* sent again without our conditions (stale headers) */
	char inm[CACHE_ETAG_MAX + 1]; /* the ETag we asked the origin to confirm, or "" */
	struct cache_obj *obj;	 /* committed entry awaiting the origin's 304 */
	struct cache_follower *fl; /* running fill awaiting the origin's 304 */
	struct cache_fill *fill; /* the fill this request tees the origin's body into */
	bool herd_leader, herd_waiting, herd_woken;
	struct herd_waiter herd;
	uint64_t body_offset, end; /* a hit's file: where its body starts, where we stop */
};

/* request.c */
struct cache_key cachepath_key(const struct exchange *x);
/* Is this a plain read the cache may serve and store (no conditions, no SSE-C, no
 * no-store, no partNumber, a GET)? */
bool cachepath_is_cacheable_read(const struct exchange *x);
bool cachepath_is_prestage(const struct exchange *x);
bool cachepath_has_no_cache(const struct exchange *x);

/* upkeep.c */
void cachepath_wake_evict(struct cachepath *cp);
/* The one place a key's entry is dropped for a write: locally, then through the
 * invalidation hook (the key's owner node). */
int cachepath_drop(struct cachepath *cp, struct worker *w, const struct cache_key *k);
/* The store's on_pressure callback (any thread) and the gauges' refresh. */
void upkeep_pressure(void *arg);
void upkeep_refresh(void *arg);
/* Reads the cache must not store (conditions, SSE-C, no-store, HEAD): relayed, counted. */
void bypass_route(struct route *rt);
/* The control thread's timers, /admin/evict and the "cache" part of /admin/status. */
int upkeep_start(struct cachepath *cp);

/* objread.c: the read route */
void objread_route(struct cachepath *cp, struct route *rt);

/* hit.c: the origin confirmed our ETag (304): write the head and serve the body. */
enum route_verdict hit_serve(struct exchange *x, struct objread *o, const struct http_msg *m304);

/* prestage.c: HEAD with Range: bytes=0-0 answers once the object is cached. */
void prestage_route(struct cachepath *cp, struct route *rt);

/* invalidate.c: writes drop what they change. */
#define MULTI_DELETE_BODY_MAX (2 * 1024 * 1024) /* 1000 keys of 1 KiB, with their XML */
void invalidate_route(struct cachepath *cp, struct route *rt);

#endif

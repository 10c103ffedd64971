/* Types private to the cache path: its shared state and the read route's per-request
 * state. Each file's functions are in its own header. */
#ifndef LOTA_CACHEPATH_T_H
#define LOTA_CACHEPATH_T_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "cachepath/herd.h"
#include "cachepath/objmeta.h"
#include "exchange/exchange.h"

struct committer;
struct event;
struct fills;
struct remote_ops;
struct ssec;
struct svccreds;
struct young;

#define CACHEPATH_WORKERS_MAX 256

/* A byte budget per run for a rate in bytes per second: what the rate allows since the
 * last run plus what earlier runs left unread, never more than one second's worth (a
 * control thread that was late catches up by a second at most). */
struct scrub_pace {
	uint64_t rate; /* bytes per second, at most CONFIG_SCRUB_RATE_MAX; 0: off */
	uint64_t last_ms;
	uint64_t credit; /* in bytes * 1000: no fraction of a byte is lost between runs */
	/* scrub-interval: a pass starts at least interval_ms after the one before started */
	uint64_t interval_ms, pass_start_ms, passes, resume_ms;
};

/* The control thread's upkeep of the store (upkeep.c). */
struct upkeep {
	struct scrub_pace pace;
	uint64_t last_slow_ms; /* the last tick that did the once-a-second work */
	bool is_scrub_failing; /* its error was logged */
};

struct cachepath {
	struct lotad *d;
	struct cache *cache;   /* NULL: relay only */
	struct svccreds *svc;  /* NULL: no service credentials: lotad fills no chunk itself */
	struct svcdenied *denied; /* buckets svc was refused on, for a while */
	struct fills *fills[CACHEPATH_WORKERS_MAX]; /* each worker's, made on its first use */
	/* Bodies from the cache each worker is sending now (assemble.c, on that worker's
	 * thread): one alone goes corked (exchange_cork_client). */
	unsigned sending[CACHEPATH_WORKERS_MAX];
	struct herd *herd;
	struct known *known; /* versions learnt for keys with no chunk here */
	struct young *young; /* versions learnt within their Last-Modified second */
	struct committer *committer;
	struct ssec *ssec; /* NULL: SSE-C reads are relayed, never cached */
	struct event *evict_ev, *tick_ev;
	struct upkeep upkeep; /* the control thread's only */
	void (*on_inval)(void *arg, struct worker *w, const struct cache_key *k);
	void *inval_arg;
	const struct remote_ops *remote; /* the cluster's (remote.h), or NULL */
	void *remote_arg;
	struct route read, bypass, prestage, write, ssec_read, ssec_stage;
	struct route location; /* location.c, with region-origins */
};

/* The client's own conditions on a read (pointers into its head), and lotad's. */
struct conds {
	const struct http_header *if_match, *if_none_match, *ims, *ius;
	bool is_ours_inm; /* we added If-None-Match: <held ETag> */
	bool is_ours_ius; /* we added If-Unmodified-Since: <held Last-Modified> */
};

/* A read the cache may serve (read route), from its start to its end. */
struct objread {
	struct cachepath *cp;
	bool no_cache; /* Cache-Control: no-cache: serve, but store nothing */
	bool redone;   /* sent again without our conditions (stale headers) */
	struct conds cond;
	struct cache_object *held; /* the version the store holds for the key, or NULL */
	struct objmeta learned;	   /* a version lotad's own HEAD just told */
	bool has_learned;
	bool herd_leader, herd_waiting, herd_woken;
	struct herd_waiter herd;
	struct fills_head *head; /* lotad's HEAD in progress */
	bool is_head_answered;
	/* the check of a young version's headers (young.h): asked, answered, found stale */
	bool is_young_checked, is_young_answered, is_young_stale, is_young_gone;
};

#endif

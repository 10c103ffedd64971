/* Background whole-object fills with lotad's service credentials: after a client's
 * ranged read (the client signed its Range, so its request cannot fetch the whole
 * object), and for pre-staging. Jobs run on the control thread, one per key. */
#ifndef LOTA_BGFILL_H
#define LOTA_BGFILL_H

#include <stdint.h>

struct lotad;
struct cache;
struct event;
struct cache_key;
struct http_msg;
struct bgfill_pool;
struct bgjob;

/* Someone waiting for a job's end (a pre-staging HEAD): ev is made active, from the
 * control thread, with result set (0: committed, or a negative errno). */
struct bgfill_watch {
	struct event *ev;
	struct bgfill_pool *pool;
	int result;
	struct bgjob *job;
	struct bgfill_watch *next;
};

/* Loads the credentials; -errno with a reason in err if the file is unusable. */
int bgfill_pool_new(struct lotad *d, struct cache *cache, struct bgfill_pool **out, char *err,
		    size_t errlen);
/* Stops every job (control thread, after the workers stopped) and frees the pool. */
void bgfill_pool_free(struct bgfill_pool *p);
/* Control thread: reload the credentials file if it changed. */
void bgfill_reload(struct bgfill_pool *p);
/* Any thread: fill k in the background unless it is cached or filling already. The
 * 206 response m tells the size; w (or NULL) is told when the fill ends. Returns 0 if
 * queued (or joined), 1 if there is nothing to do, negative on error. */
int bgfill_request(struct bgfill_pool *p, const struct cache_key *k, const struct http_msg *m,
		   struct bgfill_watch *w);
/* Any thread: a client's read of the cached key k got 404. Checks with lotad's own HEAD
 * and drops the entry only if the origin says 404 to it too. 0 if queued, 1 if a job for
 * k runs already, negative on error. */
int bgfill_confirm_gone(struct bgfill_pool *p, const struct cache_key *k);
/* Stop watching (the waiter went away); safe if the job already ended. */
void bgfill_unwatch(struct bgfill_watch *w);

#endif

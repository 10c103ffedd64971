/* Bucket locations (region-origins): the route that learns each bucket's home region
 * before its first request goes anywhere, the relearning when lotad's own requests are
 * told the bucket lives elsewhere, and the "origins" section of lotactl status and
 * /metrics (with region-origins or bucket-origins). */
#ifndef LOTA_LOCATION_H
#define LOTA_LOCATION_H

#include <stdbool.h>
#include <stddef.h>

struct cachepath;
struct event_base;
struct http_msg;
struct location_wait;
struct origin;

/* Before every other route (the cluster's too), after cachepath_new(). */
int location_register(struct cachepath *cp);

/* What becomes of lotad's own request whose answer may say the bucket lives elsewhere. */
enum location_verdict {
	LOCATION_STAY,	/* it says nothing of that: the answer stands */
	LOCATION_MORE,	/* a body that may say it is not all here: ask again with more */
	LOCATION_MOVED, /* the bucket's location is learned again: done(arg) is called, from
			 * the event loop of base, once origins_for() names its origin */
};

/* lotad's own request for bucket, sent to from, got the answer m, of which the n body
 * bytes at body are here: a 301, or a 400 naming another region (x-amz-bucket-region or
 * an AuthorizationHeaderMalformed <Region>), makes the bucket's location learned again
 * (named: at once; else GetBucketLocation, as for a request's first time). With
 * LOCATION_MOVED, *out is the wait until done(arg) is called (it ends just before). */
enum location_verdict location_redirected(struct cachepath *cp, struct event_base *base,
					  const char *bucket, const struct origin *from,
					  const struct http_msg *m, const char *body, size_t n,
					  void (*done)(void *arg), void *arg,
					  struct location_wait **out);
/* lotad's own request for bucket is about to go: if the bucket's location is not known
 * here (a chunk another node asked for, of a bucket this node's clients never named), it
 * is learned first. True: done(arg) is called, from the event loop, once it is known (or
 * found unknown); *out is the wait. */
bool location_learn_first(struct cachepath *cp, struct event_base *base, const char *bucket,
			  void (*done)(void *arg), void *arg, struct location_wait **out);
/* The request goes away before done(): done is never called. NULL is fine. */
void location_wait_cancel(struct location_wait *w);

#endif

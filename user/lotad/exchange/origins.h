/* Which origin each bucket's requests go to: the default `origin`, a region's origin
 * (region-origins) once the bucket's home region is learned, or an operator's pin
 * (bucket-origins). The learned locations are a bounded table shared by every thread. */
#ifndef LOTA_ORIGINS_H
#define LOTA_ORIGINS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct origin;
struct event;
struct lotad;
struct origins;

#define ORIGINS_MAX 32		 /* distinct origins: the default, the regions, the pins */
#define ORIGINS_REGION_MAX 64	 /* bytes of a region name, NUL included */
#define ORIGINS_BUCKETS_MAX 4096 /* bucket locations remembered (the oldest go first) */
#define ORIGINS_WAITERS_MAX 16	 /* requests waiting for one bucket's location */
#define ORIGINS_TTL_S 3600	 /* a learned location is asked again after this */
#define ORIGINS_UNKNOWN_TTL_S 30 /* no origin told the bucket's region: the default, for now */

/* What origins_claim() tells a request for a bucket whose location may be unknown. */
enum origins_verdict {
	ORIGINS_KNOWN, /* origins_for() has the answer */
	ORIGINS_LEARN, /* the caller asks (GetBucketLocation) and calls origins_learned() */
	ORIGINS_WAIT,  /* another request asks: the waiter event is made active when it knows */
};

/* def: the default origin (kept by the caller). region-origins and bucket-origins are
 * parsed from their config values ("" for none); their origins are made here. */
int origins_new(struct origin *def, const char *regions, const char *pins, const char *ca_file,
		struct origins **out, char *err, size_t errlen);
void origins_free(struct origins *t);
/* origin-timeouts: "NAME=CONNECT/READ,..." where NAME is default (def) or a region of
 * region-origins and each duration N (seconds), Ns or Nms. Unnamed origins keep def's. */
int origins_set_timeouts(struct origins *t, const char *list, char *err, size_t errlen);
/* Does the table learn locations (region-origins is set)? */
bool origins_is_learning(const struct origins *t);
/* The bucket's origin: its pin, its learned region's (stale or not), or the default.
 * Any thread. */
struct origin *origins_lookup(struct origins *t, const char *bucket);
/* d->origins' origins_lookup(), or d->origin with no table. */
struct origin *origins_for(const struct lotad *d, const char *bucket);
/* Would origins_claim() say anything but ORIGINS_KNOWN? (no change to the table) */
bool origins_needs_learning(struct origins *t, const char *bucket, time_t now);
enum origins_verdict origins_claim(struct origins *t, const char *bucket, time_t now,
				   struct event *waiter);
/* A waiter that goes away before the answer (the request ended). */
void origins_unwait(struct origins *t, const char *bucket, struct event *waiter);
/* The learner went away without an answer: the waiters are woken to claim again. */
void origins_abandon(struct origins *t, const char *bucket);
/* The answer of a learning: region as the bucket's origin said it (NULL: nobody said;
 * "" is us-east-1, as S3 spells it). Wakes the waiters. Returns the origin chosen. */
struct origin *origins_learned(struct origins *t, const char *bucket, const char *region,
			       time_t now);
/* The origin answered a request for bucket with a redirect or a wrong-region error:
 * region (if the answer named one) is the bucket's, else it is learned again. */
void origins_moved(struct origins *t, const char *bucket, const char *region, time_t now);
/* The origin of region name, or NULL. */
struct origin *origins_of_region(struct origins *t, const char *region);
/* Every distinct origin, the default first (status and metrics). */
size_t origins_count(const struct origins *t);
struct origin *origins_at(const struct origins *t, size_t i);
/* Buckets whose location is remembered now. */
size_t origins_known(struct origins *t);

#endif

/* Types of the SSE-C read route (ssec.c) and of its sealed chunks (sseccache.c). */
#ifndef LOTA_SSEC_T_H
#define LOTA_SSEC_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cachepath/cachepath-t.h"
#include "ssecrypt.h"

struct cachepath;
struct cache_object;
struct http_header;
struct ssec_tee;
struct ssecfill;
struct ssecfill_head;
struct ssecfill_worker;

/* The module: the node's secret, the chunk buffers in use, and lotad's own SSE-C fills
 * (ssecfill.c): the table of those running, which every worker's readers look up, and
 * each worker's part of them. */
struct ssec {
	uint8_t secret[SSEC_SECRET_LEN];
	atomic_uint buffers;
	pthread_mutex_t mu;	/* the table, and the shared fields of its fills */
	struct ssecfill *fills; /* those running, one per (verifier, chunk) */
	struct ssecfill_worker *workers[CACHEPATH_WORKERS_MAX]; /* each worker's, on first use */
};

/* What a sealed chunk's header keeps beside the origin's headers (its extra field starts
 * with one line of it): the version's verifier and the chunk's own tag. */
struct ssec_marker {
	uint8_t verifier[SSEC_VERIFIER_LEN];
	uint8_t tag[SSEC_TAG_LEN];
};

/* One SSE-C read. The customer key lives here, for the request only, wiped at its end. */
struct ssecread {
	struct cachepath *cp;
	uint8_t key[SSEC_KEY_LEN];
	bool has_key;		       /* it parsed, and its MD5 matched */
	bool is_ours_inm;	       /* we added If-None-Match: <held ETag> */
	bool redone;		       /* sent again as it came */
	const struct http_header *md5; /* the client's key-MD5 field, replayed on a hit */
	struct cache_object *held;     /* the version the store holds for the key, or NULL */
	struct objmeta learned;	       /* or the one lotad's HEAD with the key told (sealed) */
	bool has_learned;
	struct ssecfill_head *head; /* that HEAD, in progress */
	bool is_head_answered;
	struct ssec_tee *tee; /* the origin's 200 being sealed into chunks */
};

#endif

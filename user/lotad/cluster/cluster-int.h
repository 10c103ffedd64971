/* Private to the cluster module. */
#ifndef LOTA_CLUSTER_INT_H
#define LOTA_CLUSTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cluster/cluster.h"
#include "cluster/peers.h"
#include "exchange/exchange.h"

struct cache_key;
struct cache_meta;
struct chunkwire_span;
struct evbuffer;
struct event_base;
struct remote_ops;

struct cluster {
	struct lotad *d;
	struct peers *peers;
	struct peerauth *peerauth;
	struct cachepath *cp;
	struct route gate;
	time_t last_full_log; /* the last "replay cache full" line (atomic) */
};

/* chunkget.c: the cache path's remote.h, this node asking the others. */
extern const struct remote_ops chunkget_ops;

/* chunkserve.c: the owner's answers on the peer port (after the gate checked the
 * signature): GET and HEAD of CHUNKWIRE_CHUNK. */
enum route_verdict chunkserve_chunk(struct exchange *x, struct cluster *cl);

/* peerinval.c: fire-and-forget: tell every live peer to drop k. */
void peerinval_send(void *cluster, struct worker *w, const struct cache_key *k);
/* The request head chunkwire_request makes for t, signed as this node (its id as the
 * membership knows it, else its peer-listen address); is_keep_alive: the connection may
 * carry more requests after this one's answer. */
int peernote_head(struct cluster *cl, const char *method, const char *path,
		  const struct peer_target *t, const struct cache_key *k,
		  const struct cache_meta *m, const struct chunkwire_span *span,
		  bool is_keep_alive, struct evbuffer *out);
/* A signed notice (peernote_head) to t, whose answer is not awaited: 0 once it is under
 * way, or -errno. */
int peernote_send(struct cluster *cl, struct event_base *base, const struct peer_target *t,
		  const char *method, const char *path, const struct cache_key *k,
		  const struct cache_meta *m, const struct chunkwire_span *span);

#endif

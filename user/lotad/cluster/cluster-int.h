/* Private to the cluster module. */
#ifndef LOTA_CLUSTER_INT_H
#define LOTA_CLUSTER_INT_H

#include <time.h>

#include "cluster/cluster.h"
#include "cluster/peers.h"
#include "exchange/exchange.h"

#define INVALIDATE_PATH "/_lota/invalidate"

struct cache_key;

struct cluster {
	struct lotad *d;
	struct peers *peers;
	struct peerauth *peerauth;
	struct cachepath *cp;
	struct route gate, forward;
	time_t last_full_log; /* the last "replay cache full" line (atomic) */
};

/* peerfwd.c */
void peerfwd_route(struct cluster *cl, struct route *rt);
/* Fire-and-forget: tell k's owner (if another node) to drop it. */
void peerfwd_invalidate(void *cluster, struct worker *w, const struct cache_key *k);

#endif

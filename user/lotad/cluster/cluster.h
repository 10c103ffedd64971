/* The cluster: membership and health (peers.c, peerprobe.c), the peer port's gate (only
 * signed requests from members), chunks asked of their owner node (chunkget.c, the cache
 * path's remote.h) and served to the nodes that ask (chunkserve.c), and telling every
 * node to drop a key written through this one (peerinval.c). */
#ifndef LOTA_CLUSTER_H
#define LOTA_CLUSTER_H

#include <stddef.h>

struct lotad;
struct cachepath;
struct cluster;

/* Nothing to do without `peers` (*out NULL). Loads the cluster secret and the member
 * list; -errno with err set if they are unusable (lotad exits 2). */
int cluster_new(struct lotad *d, struct cluster **out, char *err, size_t errlen);
/* Adds the gate's route (before the cache path's), the invalidation hook and the remote
 * ops on cp, the admin call /admin/peers, the metrics, and starts membership on the
 * control thread. */
int cluster_register(struct cluster *cl, struct cachepath *cp);
void cluster_free(struct cluster *cl);

#endif

/* Rendezvous (highest-random-weight) hashing: every node scores every key, the highest
 * score owns it. Adding or removing a node moves only the keys that node wins or held.
 * Every node of a cluster must compute the same owner, so scores depend only on the key
 * bytes and the node's name, never on the order of a node list. */
#ifndef LOTA_HRW_H
#define LOTA_HRW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hrw_node {
	uint64_t id_hash; /* hrw_hash() of the node's canonical name ("10.0.0.1:8081") */
	bool is_live;
};

/* SipHash-2-4 of data under lota's fixed placement key. */
uint64_t hrw_hash(const void *data, size_t len);
/* SipHash-2-4 under any key (k0, k1: the key's two little-endian halves). */
uint64_t hrw_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);
/* The score of a node for a key, from the two hashes. */
uint64_t hrw_weight(uint64_t key_hash, uint64_t node_hash);
/* Index of the live node with the highest weight for key, or -ENOENT if none is live.
 * Equal weights (practically never) go to the larger id_hash, so that the answer does
 * not depend on the order of nodes[]. */
int hrw_owner(const struct hrw_node *nodes, size_t n, const void *key, size_t klen);
/* The same from a key hash computed once (for callers scoring several node sets). */
int hrw_owner_hash(const struct hrw_node *nodes, size_t n, uint64_t key_hash);

#endif

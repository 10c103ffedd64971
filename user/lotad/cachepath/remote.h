/* What the cache path asks of the other nodes of a cluster: which node owns a chunk, the
 * chunk's bytes from that node, and a fill begun there ahead of a reader. The cluster
 * module implements these (cluster/chunkget.c)
 * and registers them with remote_register(); the cache path only calls them through the
 * functions below, so it never names the cluster. Without a cluster, without a live peer,
 * or without service credentials here (lotad could not fetch what a peer fails to give),
 * every chunk is this node's and these answer REMOTE_HERE. */
#ifndef LOTA_REMOTE_H
#define LOTA_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

struct cachepath;
struct cache_meta;
struct evbuffer;
struct exchange;
struct worker;
struct remote_src;

/* Where a chunk (or a key's version) is to be had. */
enum remote_where {
	REMOTE_HERE,  /* this node's: its store, its own fill */
	REMOTE_THERE, /* another node's: the request to it is under way */
};

/* What a peer source did (remote_pump). */
enum remote_result {
	REMOTE_WAIT,   /* more later: the exchange is woken */
	REMOTE_DONE,   /* every byte asked for went to the client */
	REMOTE_FAILED, /* the owner failed or refused: the bytes not moved must come from elsewhere
			*/
	REMOTE_CUT,    /* writing to the client failed: the answer is cut */
};

struct remote_ops {
	bool (*is_spread)(void *arg);
	bool (*is_remote)(void *arg, const struct cache_meta *m, uint64_t index);
	int (*open)(void *arg, struct exchange *x, const struct cache_meta *m, uint64_t index,
		    uint64_t pos, uint64_t end, struct remote_src **out);
	enum remote_result (*pump)(struct remote_src *s, struct evbuffer *out, uint64_t *moved);
	void (*close)(struct remote_src *s);
	int (*prefetch)(void *arg, struct worker *w, const struct cache_meta *m, uint64_t index);
};

/* Before the workers start. */
void remote_register(struct cachepath *cp, const struct remote_ops *ops, void *arg);
/* Do chunks spread over other nodes now? */
bool remote_is_spread(const struct cachepath *cp);
/* Is chunk index of version m another node's? */
bool remote_is_remote(const struct cachepath *cp, const struct cache_meta *m, uint64_t index);
/* Object bytes [pos, end) of chunk index of m, from its owner: REMOTE_THERE with *out
 * (pump it as the exchange is woken, then close it), REMOTE_HERE if the chunk is this
 * node's, or a negative errno if its owner cannot be asked (take it from the origin). */
int remote_open(const struct cachepath *cp, struct exchange *x, const struct cache_meta *m,
		uint64_t index, uint64_t pos, uint64_t end, struct remote_src **out);
/* Moves bytes of s to the client (into out, or straight to its socket when out is empty);
 * *moved: how many went. */
enum remote_result remote_pump(const struct cachepath *cp, struct remote_src *s,
			       struct evbuffer *out, uint64_t *moved);
/* NULL is fine. */
void remote_close(const struct cachepath *cp, struct remote_src *s);
/* Chunk index of m will be read soon: REMOTE_THERE if its owner was asked to begin its
 * fill, REMOTE_HERE if it is this node's to fill. */
int remote_prefetch(const struct cachepath *cp, struct worker *w, const struct cache_meta *m,
		    uint64_t index);
/* Chunk index of m will be read soon: its owner begins its fill if it is another node and
 * the chunk is not here, else this node's fills do. */
void remote_want(struct cachepath *cp, struct worker *w, const struct cache_meta *m,
		 uint64_t index);

#endif

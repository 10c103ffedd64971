/* The wire form of lota's own requests on the peer port (cluster/chunkget.c and
 * peerinval.c send them, chunkserve.c and cluster.c answer): a chunk's bytes, a prefetch,
 * an invalidation. A request names its object in the target and the
 * version's fields and metadata in header lines, the way an origin's answer carries them;
 * the whole head is signed (peerauth), so no field can be changed or replayed. */
#ifndef LOTA_CHUNKWIRE_H
#define LOTA_CHUNKWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache_key;
struct cache_meta;
struct evbuffer;
struct http_msg;
struct http_str;
struct objmeta;
struct peerauth;

#define CHUNKWIRE_CHUNK "/_lota/chunk"		 /* GET: bytes of a chunk; HEAD: prefetch */
#define CHUNKWIRE_INVALIDATE "/_lota/invalidate" /* POST: drop every chunk of a key */
/* Header lines of a version besides ETag, Last-Modified, Content-Type and its metadata. */
#define CHUNKWIRE_SIZE "x-lota-size"
#define CHUNKWIRE_CHUNK_SIZE "x-lota-chunk-size"

/* Object bytes [first, last] of chunk index. */
struct chunkwire_span {
	uint64_t index, first, last;
};

/* Who signs a request: the cluster's key, and this node's id as its peers know it. */
struct chunkwire_from {
	struct peerauth *auth;
	const char *self;
	bool is_keep_alive; /* the sender may ask more on the connection: no Connection: close */
};

/* Appends the head of `method path?bucket=&key=[&version=][&index=&first=&last=]` for
 * host, with m's fields and metadata when m is not NULL, signed as from, to out. -E2BIG if
 * it does not fit in a head; -errno from signing. */
int chunkwire_request(const struct chunkwire_from *from, const char *method, const char *path,
		      const char *host, const struct cache_key *k, const struct cache_meta *m,
		      const struct chunkwire_span *span, struct evbuffer *out);
/* The header lines of version m: ETag, size, chunk size, Last-Modified, Content-Type, and
 * the metadata replayed on hits. */
void chunkwire_meta_lines(struct evbuffer *out, const struct cache_meta *m);

/* Receiving side. The value of query parameter name of target, decoded into out (cap
 * bytes, NUL-terminated): -ENOENT if absent, -EINVAL if malformed or too long. */
int chunkwire_query(const struct http_str *target, const char *name, char *out, size_t cap);
/* The object a request names (bucket, key, optional version): strings allocated into
 * *buf (free it), pointed to by k. -EINVAL if missing or malformed. */
int chunkwire_key(const struct http_str *target, struct cache_key *k, char **buf);
/* The span of a chunk request: -EINVAL if missing or malformed. */
int chunkwire_span(const struct http_str *target, struct chunkwire_span *s);
/* The version m's header lines name (as chunkwire_meta_lines writes them, in a request or
 * an answer) of object k, into om (owned: free with objmeta_free in every case).
 * -EINVAL if a field is missing or malformed, other errors of objmeta_from_response. */
int chunkwire_meta(const struct http_msg *m, const struct cache_key *k, struct objmeta *om);

#endif

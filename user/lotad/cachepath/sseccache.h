/* sseccache.c: SSE-C objects' chunks, sealed as they are relayed and opened for a hit. */
#ifndef LOTA_SSECCACHE_H
#define LOTA_SSECCACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "cachepath/ssec-t.h"
#include "exchange/exchange-t.h"

struct cache_meta;
struct evbuffer;
struct http_msg;

/* Chunk buffers (one chunk each) SSE-C reads hold at a time (a hit two, a 200 being
 * sealed one): a hit past it is relayed, a 200 past it is not cached. */
#define SSEC_BUFFERS_MAX 32

/* Is m a version cached sealed (SSE-C)? Only a reader proving the key may have it. */
bool ssec_is_sealed(const struct cache_meta *m);
/* The marker at the start of a sealed chunk's extra field. -EINVAL: none, or bad. */
int ssec_marker_parse(const void *extra, size_t len, struct ssec_marker *mk);
/* The verifier key gives for version m under the node's secret. */
int ssec_version_verifier(const struct ssec *s, const uint8_t key[SSEC_KEY_LEN],
			  const struct cache_meta *m, uint8_t v[SSEC_VERIFIER_LEN]);
/* The origin confirmed o->held for a reader who proved the key: its range, opened chunk
 * by chunk in user space (no sendfile: the file holds only sealed bytes). */
enum route_verdict ssec_serve_hit(struct exchange *x, struct ssecread *o,
				  const struct http_msg *m304);
/* A 200 of the whole SSE-C object to o's request: its relayed body is sealed into chunks
 * (ssec_tee_body), if it may be cached. */
void ssec_tee_begin(struct exchange *x, struct ssecread *o, const struct http_msg *m);
void ssec_tee_body(struct exchange *x, struct ssecread *o, struct evbuffer *src, size_t n);
/* Ends the tee (a chunk not complete is not stored) and wipes its keys. */
void ssec_tee_end(struct ssecread *o);

#endif

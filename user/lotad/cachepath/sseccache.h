/* sseccache.c: SSE-C objects' chunks, sealed as they are relayed and opened for a read
 * served from the cache. */
#ifndef LOTA_SSECCACHE_H
#define LOTA_SSECCACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "cachepath/sealed.h"
#include "cachepath/ssec-t.h"
#include "exchange/exchange-t.h"

struct cache_meta;
struct evbuffer;
struct http_msg;

/* The origin confirmed version m (held, or told by lotad's HEAD with the key) for a reader
 * who proved the key: its range, chunk by chunk, opened in user space (no sendfile: the
 * files hold only sealed bytes). With service credentials a chunk not here is filled with
 * the reader's key (ssecfill.c), and the next fill-parallelism - 1 are asked for ahead. */
enum route_verdict ssec_serve_hit(struct exchange *x, struct ssecread *o,
				  const struct cache_meta *m, const struct http_msg *m304);
/* A 200 of the whole SSE-C object to o's request: its relayed body is sealed into chunks
 * (ssec_tee_body), if it may be cached. */
void ssec_tee_begin(struct exchange *x, struct ssecread *o, const struct http_msg *m);
void ssec_tee_body(struct exchange *x, struct ssecread *o, struct evbuffer *src, size_t n);
/* Ends the tee (a chunk not complete is not stored) and wipes its keys. */
void ssec_tee_end(struct ssecread *o);

#endif

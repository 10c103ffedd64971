/* hit.c: answers from the cache once the origin confirmed the version. */
#ifndef LOTA_HIT_H
#define LOTA_HIT_H

#include <stdbool.h>

#include "cachepath/cachepath-t.h"

/* The origin's x-amz-request-id of m (its 304), for the hit's own head: "" if none,
 * cut to cap - 1 bytes. */
void hit_request_id(const struct http_msg *m, char *buf, size_t cap);
/* Our validation of m is on its way to the origin: the first chunk of the client's range
 * is verified now (cache_chunk_verify, once per chunk) so that a 304 finds it ready; the
 * origin's answer is not known yet, so nothing is sent. */
void hit_prepare(struct exchange *x, struct cachepath *cp, const struct cache_meta *m);
/* The origin confirmed version m (304 to our If-None-Match): write the head and serve
 * the client's range of it from chunks. is_held: the store held m before this request. */
enum route_verdict hit_serve(struct exchange *x, struct cachepath *cp, const struct cache_meta *m,
			     const struct http_msg *m304, bool is_held);
/* The client's own If-Modified-Since holds: 304. */
enum route_verdict hit_not_modified(struct exchange *x, const struct cache_meta *m,
				    const struct http_msg *m304);

#endif

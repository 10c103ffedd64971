/* request.c: what a request asks of the cache. */
#ifndef LOTA_REQUEST_H
#define LOTA_REQUEST_H

#include <stdbool.h>

#include "cachepath/cachepath-t.h"

struct cache_key cachepath_key(const struct exchange *x);
/* Does the request carry a body? A read with one is relayed as it came: its body goes to
 * the origin once, so the read could never be sent again (a redo after a 412 to our
 * conditions), and an origin waiting for a body that never came would take the next
 * request's bytes for it. */
bool cachepath_has_body(const struct exchange *x);
/* Is this a plain read the cache may serve and store (a GET, no body, no SSE-C, no
 * no-store, no partNumber, no If-Range)? */
bool cachepath_is_cacheable_read(const struct exchange *x);
bool cachepath_is_prestage(const struct exchange *x);
bool cachepath_has_no_cache(const struct exchange *x);
/* Would the cache serve this read (a read it may store, or a pre-staging HEAD)? The owner
 * of the key should then be the one to answer it. */
bool cachepath_would_serve(const struct cachepath *cp, const struct exchange *x);

#endif

/* Idle kept-alive connections to the origin, for lotad's own requests (chunk fetches):
 * a fetch that finds one skips the TCP (and TLS) handshake, a round trip or more to a
 * remote origin for every chunk; and to other nodes' peer ports (chunk requests), which
 * skip the handshake and TCP's slow start on every chunk. Each idle connection is kept
 * under a key of its destination's. One pool per worker thread; nothing here locks. */
#ifndef LOTA_ORIGINPOOL_H
#define LOTA_ORIGINPOOL_H

#include <stdbool.h>

struct bufferevent;
struct event_base;
struct origin;
struct originpool;

#define ORIGINPOOL_MAX 16    /* idle connections a pool keeps */
#define ORIGINPOOL_KEY_MAX 128 /* bytes of a key: a sockaddr_storage, an origin's pointer */
#define ORIGINPOOL_IDLE_S 10 /* ... each for at most this long */

struct originpool *originpool_new(struct event_base *base);
/* Closes every idle connection. NULL is fine. */
void originpool_free(struct originpool *p);
/* A connection to o: the most recently idle one (*is_reused = true; the origin may have
 * closed it meanwhile: a failure before any answer byte means "try a new one"), or a new
 * one (origin_connect). NULL with errno if none can be had. The caller sets its own
 * callbacks and timeouts. */
struct bufferevent *originpool_get(struct originpool *p, struct origin *o, bool *is_reused);
/* bev (a connection to o) ended an exchange cleanly and may carry another: kept idle
 * (its callbacks and timeouts replaced; SO_RCVLOWAT back to 1), or freed when the pool is
 * full. Bytes or an event on an idle connection close it. */
void originpool_put(struct originpool *p, struct origin *o, struct bufferevent *bev);
/* The same under any key (at most ORIGINPOOL_KEY_MAX bytes, compared byte for byte):
 * the most recently idle connection kept under key (callbacks cleared, timeouts off,
 * reading still enabled: the caller sets its own), or NULL; and bev kept idle under key,
 * as originpool_put does. */
struct bufferevent *originpool_take(struct originpool *p, const void *key, size_t keylen);
void originpool_keep(struct originpool *p, const void *key, size_t keylen,
		     struct bufferevent *bev);
/* Idle connections held now. */
unsigned originpool_idle(const struct originpool *p);

#endif

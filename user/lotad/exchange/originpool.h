/* Idle kept-alive connections to the origin, for lotad's own requests (chunk fetches):
 * a fetch that finds one skips the TCP (and TLS) handshake, a round trip or more to a
 * remote origin for every chunk. One pool per worker thread; nothing here locks. */
#ifndef LOTA_ORIGINPOOL_H
#define LOTA_ORIGINPOOL_H

#include <stdbool.h>

struct bufferevent;
struct event_base;
struct origin;
struct originpool;

#define ORIGINPOOL_MAX 8     /* idle connections a pool keeps */
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
/* Idle connections held now. */
unsigned originpool_idle(const struct originpool *p);

#endif

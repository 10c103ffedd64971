/* The exchange core: client connections, and one state machine per request that routes
 * it, relays it upstream, moves its answer's body and finishes it. Routes (the cache
 * path, peer forwarding, ...) register with the core and call only what this header
 * offers; the core never names them. See exchange-t.h for the types, fsm.h for the
 * states. */
#ifndef LOTA_EXCHANGE_H
#define LOTA_EXCHANGE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exchange/access.h"
#include "exchange/exchange-t.h"

struct event_base;

/* conn.c: a connection accepted by a worker (on the client or the peer port). */
void conn_accept(struct worker *w, int fd, const char *peer, bool is_peer_port);

/* Adds a route; routes are asked in the order they were added, before the core's own
 * relay (which takes everything). Before the workers start. */
int exchange_route_add(struct lotad *d, const struct route *rt);

/* For routes: the accessors of exchange/access.h, and: */
/* The answer lotad gives with RT_FAIL. */
void exchange_fail(struct exchange *x, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Upstream of the next RT_UPSTREAM: the origin (the default), or a peer's port. */
void exchange_upstream_origin(struct exchange *x);
void exchange_upstream_peer(struct exchange *x, const char *id, const struct sockaddr *sa,
			    socklen_t len);
/* Header lines (each ending in CRLF) added to the head sent upstream; NULL or "": none. */
int exchange_set_extra(struct exchange *x, const char *lines);
/* Keep a copy of the request body while it is relayed (up to max bytes; more: none). */
void exchange_keep_request_body(struct exchange *x, size_t max);
struct evbuffer *exchange_request_body(const struct exchange *x);
/* The event that wakes the exchange: make it active from any thread (event_active), or
 * call exchange_wake on the exchange's own. NULL if it cannot be made. */
struct event *exchange_wake_event(struct exchange *x);
void exchange_wake(struct exchange *x);
/* The body of an RT_SERVE answer: ops->pump sends it, ops->free releases state. */
void exchange_serve(struct exchange *x, const struct mover_ops *ops, void *state);
/* sendfile.c: an RT_SERVE body read from [pos, end) of fd (dup'ed: the caller keeps its
 * own). extent, if not NULL, says how far the file is readable now (a file still being
 * written): 0 with *readable set, or a negative errno to cut the answer. */
typedef int (*file_extent_fn)(void *arg, uint64_t *readable);
int exchange_serve_file(struct exchange *x, int fd, uint64_t pos, uint64_t end,
			file_extent_fn extent, void *arg);
/* A whole short answer of the route's own (text, or XML if body starts with '<'). */
enum route_verdict exchange_reply(struct exchange *x, int status, const char *extra,
				  const char *body, bool is_close);
/* The upstream connection, its answer's head (head_len bytes) consumed, becomes the
 * route's (to read the body elsewhere, at the origin's pace): the exchange is done with
 * it. NULL if there is none. From on_head only. */
struct bufferevent *exchange_take_upstream(struct exchange *x, size_t head_len);
/* No keep-alive after this answer. */
void exchange_close_after(struct exchange *x);

#endif

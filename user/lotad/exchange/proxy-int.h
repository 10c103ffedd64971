/* Private to the relay (proxy.c: the client side, upstream.c: the origin or peer side):
 * what one half calls in the other. */
#ifndef LOTA_PROXY_INT_H
#define LOTA_PROXY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "http-t.h"

struct conn;
struct evbuffer;

/* proxy.c */
void origin_drop(struct conn *c);
void reply_and_finish(struct conn *c, int status, const char *code, const char *msg,
		      bool close_conn);
void pump_request(struct conn *c);
/* Moves body bytes from src to dst as the framing allows (teeing into tee's fill, and
 * keeping a copy when asked): 1 when the body is complete, 0 if more is to come,
 * -EBADMSG on bad chunked framing. */
int move_body(struct conn *tee, struct evbuffer *src, struct evbuffer *dst, enum http_body framing,
	      uint64_t *left, struct http_chunked *ch, uint64_t *moved, struct evbuffer *copy);

/* upstream.c */
void set_origin_timeout(struct conn *c, bool active);
void pump_response(struct conn *c);

#endif

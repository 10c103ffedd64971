/* Private to the exchange core: what its files (exchange.c the driver, conn.c the client
 * side, upstream.c the upstream side, relay.c, splice.c and sendfile.c the body movers)
 * call in each other. Routes never include this. */
#ifndef LOTA_EXCHANGE_INT_H
#define LOTA_EXCHANGE_INT_H

#include "exchange/exchange.h"

/* What a libevent callback does: record what happened (XE_*), run the driver. */
static inline void exchange_event(struct exchange *x, unsigned events)
{
	x->events |= events;
	x->run(x);
}

/* conn.c: the client's connection, below the driver. */
struct conn *conn_new(struct worker *w, int fd, const char *peer, bool is_peer_port,
		      const struct conn_ops *ops);
/* Frees the connection (its exchange, if any, was freed first) and its upstream. */
void conn_free(struct conn *c);
void conn_close_after_flush(struct conn *c);
void conn_set_client_timeout(struct conn *c, bool is_reading);
/* The client's output is below its high watermark (or empty). */
bool conn_client_has_room(const struct conn *c);
/* A request head from the client's input: 0 with *buf and *head_len set, -EAGAIN while
 * incomplete, or a negative errno after which the connection answered and is closing
 * (malformed, oversize, or not complete within client-timeout of its first byte). */
int conn_read_head(struct conn *c, const char **buf, size_t *head_len);

/* upstream.c */
/* Sends x's head (with x->extra) to x->up, connecting or reusing c->obev: 0, or a
 * negative errno if the connection cannot be made. */
int upstream_send(struct exchange *x);
/* Has x's request (head, and body if any) left for the upstream socket? */
bool upstream_is_flushed(const struct exchange *x);
/* Parses what arrived: -EAGAIN until a final head; 0 with *m filled (1xx were relayed);
 * a negative errno if malformed. The caller drains m->head_len after use. */
int upstream_read_head(struct exchange *x, struct http_msg *m, const char **raw);
void upstream_drain(struct exchange *x, size_t n);
void upstream_drop(struct conn *c);
/* The client connection ends: an idle upstream goes to the worker's pool, else closed. */
void upstream_release(struct conn *c);
void upstream_set_timeout(struct conn *c, bool is_active);
/* A reused connection closed before any answer: may the request go again? */
bool upstream_may_retry(const struct exchange *x);
/* Text of the last upstream failure, for the error answer and the log. */
void upstream_describe_failure(struct exchange *x, char *buf, size_t len);
/* The response to this request must not leave stray bytes for the next one. */
bool upstream_is_reusable_after(const struct exchange *x);

/* relay.c */
/* Client -> upstream: moves what the framing allows. XI_WAIT, XI_DONE once the body is
 * complete, XI_FAIL on malformed chunked framing. */
enum xinput relay_request_body(struct exchange *x);
/* Did the client ask for 100-continue (its body then waits for the origin's 100)? */
bool relay_is_expecting_continue(const struct exchange *x);
/* Upstream -> client, after the head: XI_WAIT, XI_DONE, XI_SPLICE, XI_CUT. */
enum xinput relay_response_body(struct exchange *x);
/* The head to forward to the client (adding Connection: close when needed). */
void relay_response_head(struct exchange *x, const char *raw, const struct http_msg *m);

/* splice.c */
#define SPLICE_MIN (256 * 1024) /* smaller bodies are not worth the pipes */
bool splice_is_eligible(const struct exchange *x);
int splice_start(struct exchange *x);
enum xinput splice_pump(struct exchange *x);
void splice_free(struct splicer *sp);

#endif

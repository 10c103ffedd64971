/* Bodies through user space: the request body client -> upstream and the response body
 * upstream -> client, each moved as its framing allows (Content-Length, chunked passed
 * through unchanged, or up to the close), with backpressure: reading from the fast side
 * stops while CONN_PIPE_HIGH bytes wait for the slow one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange/exchange-int.h"
#include "exchange/readmore.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "s3region.h"

/* Copies the first n bytes of src to the end of copy (a request body kept for a route). */
static void keep_copy(struct evbuffer *copy, struct evbuffer *src, size_t n)
{
	struct evbuffer_iovec v[32];
	int nv = evbuffer_peek(src, (ssize_t)n, NULL, v, 32);

	for (int i = 0; i < nv && i < 32 && n; i++) {
		size_t len = v[i].iov_len < n ? v[i].iov_len : n;

		evbuffer_add(copy, v[i].iov_base, len);
		n -= len;
	}
}

/* The start of a body looked at for a region (exchange.c): copied, never held back. */
static void tap_copy(struct s3region_tap *t, struct evbuffer *src, size_t n)
{
	size_t room = sizeof(t->buf) - t->n;
	ev_ssize_t got = evbuffer_copyout(src, t->buf + t->n, n < room ? n : room);

	if (got > 0)
		t->n += (size_t)got;
}

/* How many of src's bytes belong to the body, and whether they end it: 1 when complete,
 * 0 if more is to come, -EBADMSG on bad chunked framing. */
static int body_share(struct evbuffer *src, enum http_body framing, uint64_t *left,
		      struct http_chunked *ch, size_t *take)
{
	size_t avail = evbuffer_get_length(src);
	int done = 0;

	*take = 0;
	if (framing == HTTP_BODY_LENGTH) {
		*take = *left < avail ? (size_t)*left : avail;
		*left -= *take;
		return *left == 0;
	}
	if (framing == HTTP_BODY_CLOSE) {
		*take = avail;
		return 0;
	}
	if (framing != HTTP_BODY_CHUNKED)
		return 1;
	{
		struct evbuffer_iovec v[16];
		int n = evbuffer_peek(src, (ssize_t)avail, NULL, v, 16);

		for (int i = 0; i < n && i < 16 && !done; i++) {
			size_t used;

			done = http_chunked_scan(ch, v[i].iov_base, v[i].iov_len, &used);
			*take += used;
		}
	}
	return done;
}

/* How much more of the request body to read now, beyond libevent's 4 KiB a wake: what the
 * buffers on both sides still take, and no more than the body (so that a pipelined
 * request behind it stays in the socket). */
static size_t request_read_room(const struct exchange *x, const struct evbuffer *in,
				const struct evbuffer *out)
{
	size_t have = evbuffer_get_length(in), queued = evbuffer_get_length(out), room;

	if (have >= CONN_READ_MAX || queued >= CONN_PIPE_HIGH)
		return 0;
	room = CONN_READ_MAX - have < CONN_PIPE_HIGH - queued ? CONN_READ_MAX - have
							       : CONN_PIPE_HIGH - queued;
	if (x->req.body == HTTP_BODY_LENGTH)
		room = x->req_left > have ? (x->req_left - have < room ? (size_t)(x->req_left - have)
								       : room)
					  : 0;
	return room;
}

bool relay_is_expecting_continue(const struct exchange *x)
{
	const struct http_header *h = http_find(&x->req, "expect");

	return h && http_has_token(&h->value, "100-continue");
}

enum xinput relay_request_body(struct exchange *x)
{
	struct conn *c = x->c;
	struct evbuffer *in = bufferevent_get_input(c->cbev), *out;
	size_t take;
	int r;

	if (!c->obev)
		return XI_WAIT;
	/* A client that asked for 100-continue: its body goes once the origin has sent its
	 * 100. An origin that answers first leaves such a body unread and parses it as its
	 * next request: one a client could smuggle past lotad. radosgw reads some bodies
	 * without a 100 (PUT ?tagging, POST ?delete): those go after EXPECT_WAIT_MS, as curl
	 * sends them (and their connection is never reused: upstream_is_reusable_after). */
	if (!x->has_upstream_continued && relay_is_expecting_continue(x) &&
	    (!x->is_expect_over || x->status))
		return XI_WAIT; /* exchange.c runs the timer; never once a final answer came */
	out = bufferevent_get_output(c->obev);
	if (c->client_read_paused && evbuffer_get_length(out) < CONN_PIPE_HIGH) {
		c->client_read_paused = false;
		bufferevent_enable(c->cbev, EV_READ);
	}
	if (!c->client_read_paused)
		readmore(c->cbev, request_read_room(x, in, out));
	r = body_share(in, x->req.body, &x->req_left, &x->req_chunked, &take);
	if (r < 0)
		return XI_FAIL;
	if (take && x->req_copy) {
		if (evbuffer_get_length(x->req_copy) + take <= x->req_copy_max) {
			keep_copy(x->req_copy, in, take);
		} else {
			evbuffer_free(x->req_copy); /* more than was announced: keep nothing */
			x->req_copy = NULL;
		}
	}
	evbuffer_remove_buffer(in, out, take);
	metric_add(M_bytes_from_client, take);
	if (r == 1) {
		x->req_body_done = true;
		conn_set_client_timeout(c, false);
		return XI_DONE;
	}
	if (evbuffer_get_length(out) >= CONN_PIPE_HIGH) {
		bufferevent_disable(c->cbev, EV_READ);
		c->client_read_paused = true;
	}
	return XI_WAIT;
}

void relay_response_head(struct exchange *x, const char *raw, const struct http_msg *m)
{
	struct evbuffer *out = exchange_client_out(x);
	const char *eol;

	if (x->req_body_done) {
		evbuffer_add(out, raw, m->head_len);
		return;
	}
	/* We close after this response (its request body was not all read, and what is left
	 * of it is no request): say so, whatever the origin said of its own connection. */
	eol = memchr(raw, '\n', m->head_len);
	evbuffer_add(out, raw, eol ? (size_t)(eol - raw) + 1 : 0);
	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		if (!http_name_eq(&h->name, "connection") && !http_name_eq(&h->name, "keep-alive"))
			evbuffer_add_printf(out, "%.*s: %.*s\r\n", (int)h->name.n, h->name.p,
					    (int)h->value.n, h->value.p);
	}
	evbuffer_add(out, "Connection: close\r\n\r\n", 21);
	x->req.keep_alive = false;
}

/* The upstream closed or failed while the body was being relayed. */
static enum xinput upstream_ended(struct exchange *x)
{
	if ((x->events & XE_UP_EOF) && x->resp_body == HTTP_BODY_CLOSE) {
		x->resp_keep_alive = false;
		return XI_DONE;
	}
	metric_add(x->events & XE_UP_TIMEOUT ? M_origin_timeouts : M_origin_aborts, 1);
	x->cut_why = x->up.id[0] ? "owner node closed mid-response" : "origin closed mid-response";
	return XI_CUT;
}

enum xinput relay_response_body(struct exchange *x)
{
	struct conn *c = x->c;
	struct evbuffer *in = bufferevent_get_input(c->obev), *out = exchange_client_out(x);
	size_t take;
	int r;

	if (c->origin_read_paused && conn_client_has_room(c)) {
		c->origin_read_paused = false;
		bufferevent_enable(c->obev, EV_READ);
	}
	r = body_share(in, x->resp_body, &x->resp_left, &x->resp_chunked, &take);
	if (r < 0) {
		metric_add(M_origin_errors, 1);
		x->cut_why = "malformed chunked response from origin";
		return XI_CUT;
	}
	if (take && x->rt->on_body)
		x->rt->on_body(x, in, take);
	if (take && x->region_tap)
		tap_copy(x->region_tap, in, take);
	evbuffer_remove_buffer(in, out, take);
	x->bytes_out += take;
	metric_add(M_bytes_from_origin, take);
	metric_add(M_bytes_to_client, take);
	if (r == 1)
		return XI_DONE;
	if (x->events & (XE_UP_EOF | XE_UP_ERROR | XE_UP_TIMEOUT))
		return upstream_ended(x);
	if (splice_is_eligible(x) && splice_start(x) == 0)
		return XI_SPLICE;
	if (!conn_client_has_room(c)) {
		bufferevent_disable(c->obev, EV_READ);
		c->origin_read_paused = true;
	}
	return XI_WAIT;
}

/* The upstream side of an exchange (the origin, or a peer's port): connect or reuse the
 * kept-alive connection, send the client's head byte for byte (with the route's extra
 * lines), read the answer's head (1xx passed on), and record failures for the driver.
 * Bytes or events on a connection no exchange is reading from close it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange/exchange-int.h"
#include "exchange/originpool.h"
#include "exchange/writenow.h"
#include "http.h"
#include "log.h"
#include "exchange/origin.h"
#include "exchange/origins.h"
#include "lotad.h"
#include "metrics.h"

static void up_read_cb(struct bufferevent *bev, void *arg);
static void up_write_cb(struct bufferevent *bev, void *arg);
static void up_event_cb(struct bufferevent *bev, short what, void *arg);

/* An origin's own read timeout (origin-timeouts), origin-timeout for a peer's port. */
void upstream_set_timeout(struct conn *c, bool is_active)
{
	struct timeval tv = c->obev_origin
				? origin_tv(c->obev_origin->read_ms)
				: (struct timeval){(time_t)c->w->d->cfg.origin_timeout, 0};

	bufferevent_set_timeouts(c->obev, is_active ? &tv : NULL, is_active ? &tv : NULL);
}

void upstream_drop(struct conn *c)
{
	if (c->obev)
		bufferevent_free(c->obev);
	c->obev = NULL;
	c->obev_id[0] = '\0';
	c->obev_origin = NULL;
	c->origin_reused = false;
	c->is_upstream_idle = false;
	c->origin_read_paused = false;
}

void upstream_release(struct conn *c)
{
	if (c->obev && c->obev_origin && c->is_upstream_idle && c->w->pool) {
		originpool_put(c->w->pool, c->obev_origin, c->obev);
		c->obev = NULL;
	}
	upstream_drop(c);
}

/* may_pool: a pooled connection will do (one the origin closes just then is retried on a
 * new one, which a request with a body cannot be: it gets a new one at once). */
static int upstream_open(struct conn *c, const struct upstream_target *t, struct origin *o,
			 bool may_pool)
{
	bool is_reused = false;

	if (t->id[0]) {
		c->obev = bufferevent_socket_new(c->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (c->obev && bufferevent_socket_connect(c->obev, (const struct sockaddr *)&t->addr,
							  (int)t->addrlen) < 0) {
			int e = errno ? errno : ECONNREFUSED;

			bufferevent_free(c->obev);
			c->obev = NULL;
			errno = e;
		}
	} else if (c->w->pool && may_pool) {
		c->obev = originpool_get(c->w->pool, o, &is_reused);
	} else {
		c->obev = origin_connect(o, c->w->base);
	}
	if (!c->obev)
		return -errno;
	snprintf(c->obev_id, sizeof(c->obev_id), "%s", t->id);
	c->obev_origin = t->id[0] ? NULL : o;
	/* (reused: the origin may have closed it meanwhile, and a failure before any answer
	 * byte sends the request again on a new one) */
	c->origin_reused = is_reused;
	if (is_reused)
		metric_add(M_origin_connections_reused, 1);
	bufferevent_setcb(c->obev, up_read_cb, up_write_cb, up_event_cb, c);
	bufferevent_setwatermark(c->obev, EV_READ, 0, 0);
	bufferevent_setwatermark(c->obev, EV_WRITE, CONN_PIPE_HIGH / 2, 0);
	bufferevent_set_max_single_read(c->obev, CONN_READ_MAX);
	bufferevent_set_max_single_write(c->obev, CONN_READ_MAX);
	bufferevent_enable(c->obev, EV_READ | EV_WRITE);
	return 0;
}

int upstream_send(struct exchange *x)
{
	struct conn *c = x->c;
	struct evbuffer *out;
	size_t extra = strlen(x->extra);
	bool is_new;
	int r;

	/* Each bucket's requests go to its origin (origins.h): looked up for every request,
	 * as a keep-alive connection may carry requests for buckets of several origins. */
	x->origin = x->up.id[0] ? NULL : origins_for(c->w->d, x->s3.bucket);
	if (c->obev && (strcmp(c->obev_id, x->up.id) != 0 || c->obev_origin != x->origin))
		upstream_drop(c); /* a kept-alive connection to somewhere else */
	is_new = !c->obev;
	if (is_new && (r = upstream_open(c, &x->up, x->origin, x->req.body == HTTP_BODY_NONE)) < 0)
		return r;
	c->is_upstream_idle = false;
	if (c->origin_reused)
		is_new = false; /* connected: its read timeout, not its connect timeout */
	if (x->origin) {
		metric_add(M_origin_requests, 1);
		origin_note(x->origin, ORIGIN_SENT);
	}
	/* A new connection to an origin gets its connect timeout until it is connected. */
	if (is_new && x->origin)
		origin_set_timeouts(x->origin, c->obev);
	else
		upstream_set_timeout(c, true);
	out = bufferevent_get_output(c->obev);
	/* Exactly the client's bytes, so that its signature holds; ours before the end. */
	evbuffer_add(out, x->head, x->head_len - (extra ? 2 : 0));
	if (extra) {
		evbuffer_add(out, x->extra, extra);
		evbuffer_add(out, "\r\n", 2);
	}
	x->upstream_sent = true;
	x->is_sent_noted = false;
	/* A connected upstream takes the head now, not at the next turn, so that the
	 * route's on_sent work overlaps the origin's answer at once. (Not a TLS one: its
	 * bytes go through OpenSSL, at libevent's turn.) */
	if (!is_new && !(x->origin && x->origin->is_tls))
		writenow(c->obev);
	return 0;
}

int upstream_read_head(struct exchange *x, struct http_msg *m, const char **raw)
{
	struct conn *c = x->c;
	struct evbuffer *in = bufferevent_get_input(c->obev);

	for (;;) {
		size_t len = evbuffer_get_length(in);
		size_t want = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
		const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)want);
		int r = len ? http_parse_response(buf, want, &x->req.method, m) : -EAGAIN;

		if (r == -EAGAIN && len >= HTTP_HEAD_MAX)
			r = -EMSGSIZE;
		if (r < 0)
			return r;
		if (m->status >= 200) {
			*raw = buf;
			return 0;
		}
		/* A 100: the body held for it may go (relay.c). */
		if (m->status == 100)
			x->has_upstream_continued = true;
		/* An interim 1xx goes to the client as it is (101 never: no upgrades). */
		if (m->status != 101)
			evbuffer_add(exchange_client_out(x), buf, m->head_len);
		evbuffer_drain(in, m->head_len);
	}
}

void upstream_drain(struct exchange *x, size_t n)
{
	evbuffer_drain(bufferevent_get_input(x->c->obev), n);
}

bool upstream_may_retry(const struct exchange *x)
{
	const struct conn *c = x->c;

	return c->origin_reused && !x->is_retried && x->req.body == HTTP_BODY_NONE && c->obev &&
	       evbuffer_get_length(bufferevent_get_input(c->obev)) == 0;
}

void upstream_describe_failure(struct exchange *x, char *buf, size_t len)
{
	const char *why = (x->events & XE_UP_TIMEOUT) ? "timed out"
			  : (x->events & XE_UP_EOF)   ? "closed the connection before responding"
			  : x->up_err[0]	      ? x->up_err
						      : "connection failed";

	if (x->up.id[0])
		snprintf(buf, len, "peer %s: %s", x->up.id, why);
	else
		snprintf(buf, len, "origin %s: %s", x->origin->label, why);
}

/* Some origins send bytes after a response that has none by its framing (radosgw: a
 * chunked "0" after HEAD /, an ACL document after HEAD /bkt?acl). Read as the start of
 * the next response, they would answer the next request. Only object HEADs are known to
 * end cleanly; after any other HEAD the connection is closed, never reused. */
bool upstream_is_reusable_after(const struct exchange *x)
{
	/* A request with Expect and a body: an origin that answered without its 100 may
	 * have left that body unread (radosgw does: it expects a client that waits for the
	 * 100 never to send it) and parse it as its next request, whose answer would be
	 * taken for the next request lotad sends there. Never reused, 100 or not (one
	 * handshake per upload is cheap insurance against an origin that skips the drain). */
	if (http_find(&x->req, "expect") && x->req.body != HTTP_BODY_NONE)
		return false;
	return !http_str_eq(&x->req.method, "HEAD") || x->s3.op == S3_OBJECT_READ;
}

/* Is an exchange reading this connection's answer now? */
static struct exchange *reader(struct conn *c)
{
	struct exchange *x = c->x;

	if (!x || !x->upstream_sent || x->c->obev == NULL)
		return NULL;
	return (x->state == XS_UPSTREAM || x->state == XS_BODY_RELAY) ? x : NULL;
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct exchange *x = reader(c);

	if (!x) {
		/* Bytes nobody asked for (an idle kept-alive connection, or after an answer
		 * that was complete): the connection is not in a state to reuse. */
		upstream_drop(c);
		return;
	}
	x->run(x);
}

bool upstream_is_flushed(const struct exchange *x)
{
	return x->c->obev && !evbuffer_get_length(bufferevent_get_output(x->c->obev)) &&
	       (x->req.body == HTTP_BODY_NONE || x->req_body_done);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct exchange *x = reader(c);

	if (c->x && c->client_read_paused && !c->closing)
		c->x->run(c->x);
	else if (x && x->state == XS_UPSTREAM && !x->is_sent_noted && x->rt->on_sent)
		x->run(x); /* the request left: the route's on_sent (exchange.c) */
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct exchange *x = reader(c);
	char tls[128];

	if (what & BEV_EVENT_CONNECTED) {
		if (x && c->obev_origin)
			upstream_set_timeout(c, true); /* the connect's timeout is over */
		return;
	}
	if (!x) {
		upstream_drop(c);
		return;
	}
	if (*origin_tls_error(bev, tls, sizeof(tls)))
		snprintf(x->up_err, sizeof(x->up_err), "%s", tls);
	else if (what & BEV_EVENT_ERROR)
		snprintf(x->up_err, sizeof(x->up_err), "%s", strerror(EVUTIL_SOCKET_ERROR()));
	exchange_event(x, (what & BEV_EVENT_TIMEOUT) ? XE_UP_TIMEOUT
			  : (what & BEV_EVENT_EOF)   ? XE_UP_EOF
						     : XE_UP_ERROR);
}

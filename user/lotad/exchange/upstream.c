/* The upstream side of an exchange (the origin, or the key's owner node): connect, send
 * the client's head byte-for-byte (with our If-None-Match or x-lota-peer line), parse
 * the response head (1xx passed on), hand object reads to the cache path, stream the
 * body back with backpressure or splice, and turn upstream failures into 502/504 or a
 * cut connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange/conn.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "exchange/proxy-int.h"

static void origin_read_cb(struct bufferevent *bev, void *arg);
static void origin_write_cb(struct bufferevent *bev, void *arg);
static void origin_event_cb(struct bufferevent *bev, short what, void *arg);
static bool is_reusable_after(const struct exchange *x);

void set_origin_timeout(struct conn *c, bool active)
{
	struct timeval tv = {.tv_sec = (time_t)c->w->d->cfg.origin_timeout};

	bufferevent_set_timeouts(c->obev, active ? &tv : NULL, active ? &tv : NULL);
}

/* Connects obev to the origin (t NULL) or to a peer's peer port. */
static int upstream_open(struct conn *c, const struct peer_target *t)
{
	struct lotad *d = c->w->d;

	if (t) {
		c->obev = bufferevent_socket_new(c->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (c->obev && bufferevent_socket_connect(c->obev, (struct sockaddr *)&t->addr,
							  (int)t->addrlen) < 0) {
			int e = errno ? errno : ECONNREFUSED;

			bufferevent_free(c->obev);
			c->obev = NULL;
			errno = e;
		}
	} else {
		c->obev = origin_connect(&d->origin, c->w->base);
	}
	if (!c->obev)
		return -errno;
	snprintf(c->obev_peer, sizeof(c->obev_peer), "%s", t ? t->id : "");
	c->origin_reused = false;
	bufferevent_setcb(c->obev, origin_read_cb, origin_write_cb, origin_event_cb, c);
	bufferevent_setwatermark(c->obev, EV_WRITE, CONN_PIPE_HIGH / 2, 0);
	bufferevent_set_max_single_read(c->obev, CONN_READ_MAX);
	bufferevent_set_max_single_write(c->obev, CONN_READ_MAX);
	bufferevent_enable(c->obev, EV_READ | EV_WRITE);
	return 0;
}

/* Sends the request head upstream: exactly the client's bytes, so signatures hold, with
 * extra header lines (ours: If-None-Match, x-lota-peer) before the empty line. */
static int upstream_send(struct conn *c, const struct peer_target *t, const char *extra)
{
	struct exchange *x = c->x;
	const char *want = t ? t->id : "";
	struct evbuffer *out;
	char msg[256];
	int r;

	if (c->obev && strcmp(c->obev_peer, want) != 0)
		origin_drop(c); /* a kept-alive connection to somewhere else */
	if (!c->obev && (r = upstream_open(c, t)) < 0) {
		if (t)
			return r; /* the caller falls back to handling the read here */
		metric_add(M_origin_errors, 1);
		snprintf(msg, sizeof(msg), "origin %s: connect: %s", c->w->d->origin.label, strerror(-r));
		log_warn("%s", msg);
		reply_and_finish(c, 502, "BadGateway", msg, true);
		return r;
	}
	if (!t)
		metric_add(M_origin_requests, 1);
	set_origin_timeout(c, true);
	x->upstream_sent = true;
	out = bufferevent_get_output(c->obev);
	if (extra) {
		evbuffer_add(out, x->head, x->head_len - 2);
		evbuffer_add(out, extra, strlen(extra));
		evbuffer_add(out, "\r\n", 2);
	} else {
		evbuffer_add(out, x->head, x->head_len);
	}
	return 0;
}

int exchange_send_origin(struct conn *c, const char *extra)
{
	return upstream_send(c, NULL, extra);
}

int exchange_send_peer(struct conn *c, const struct peer_target *t, const char *extra)
{
	return upstream_send(c, t, extra);
}

/* Forwards the origin's head; when we must close after this response (the request body
 * was not read), tell the client so in the head. */
static void send_response_head(struct conn *c, const char *buf, struct http_msg *m)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	struct exchange *x = c->x;

	if (x->req_body_done || !x->req.keep_alive || http_find(m, "connection")) {
		evbuffer_add(out, buf, m->head_len);
		return;
	}
	evbuffer_add(out, buf, m->head_len - 2);
	evbuffer_add(out, "Connection: close\r\n\r\n", 21);
	x->req.keep_alive = false;
}

/* What on_response_head found, besides errors (negative errno) and -EAGAIN. */
enum head_verdict {
	HEAD_RELAY,	    /* the head went to the client: relay the body */
	HEAD_TAKEN,	    /* the cache path answers */
	HEAD_REDO,	    /* send the client's request again (objread_redo) */
	HEAD_UNSERVABLE,    /* a 304 for a copy that cannot be read now */
	HEAD_PEER_REFUSED,  /* the owner node refused our peer signature */
};

/* Parses response heads from the origin; interim 1xx heads go to the client as they are.
 * Returns an enum head_verdict, -EAGAIN until a final head is complete, or an error. */
static int on_response_head(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->obev);
	struct exchange *x = c->x;
	struct http_msg *m = malloc(sizeof(*m));
	int r = -EAGAIN;

	if (!m)
		return -ENOMEM;
	while (!x->resp_head_sent) {
		size_t len = evbuffer_get_length(in);
		size_t want = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
		const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)want);
		enum objread_verdict v = OBJREAD_RELAY;

		r = len ? http_parse_response(buf, want, &x->req.method, m) : -EAGAIN;
		if (r == -EAGAIN && len >= HTTP_HEAD_MAX)
			r = -EMSGSIZE;
		if (r < 0)
			break;
		if (m->status >= 100 && m->status < 200) {
			if (m->status != 101)
				evbuffer_add(bufferevent_get_output(c->cbev), buf, m->head_len);
			evbuffer_drain(in, m->head_len);
			continue;
		}
		if (x->fwd_active && m->status == 403 && http_find(m, "x-lota-peer-refused")) {
			r = HEAD_PEER_REFUSED;
			break;
		}
		x->status = m->status;
		x->resp_body = m->body;
		x->resp_left = m->content_length;
		x->resp_keep_alive = m->keep_alive;
		x->upstream_spent = !is_reusable_after(x);
		http_chunked_init(&x->resp_chunked);
		if (x->is_cacheable)
			v = objread_response(c, buf, m);
		if (v == OBJREAD_REDO || v == OBJREAD_UNSERVABLE) {
			r = v == OBJREAD_REDO ? HEAD_REDO : HEAD_UNSERVABLE;
			break;
		}
		if (x->s3.op == S3_OBJECT_WRITE)
			invalidate_on_write(c);
		if (x->capture)
			invalidate_multi_delete(c);
		if (v == OBJREAD_RELAY)
			send_response_head(c, buf, m);
		x->taken_over = v == OBJREAD_TAKEN;
		r = x->taken_over ? HEAD_TAKEN : HEAD_RELAY;
		evbuffer_drain(in, m->head_len);
		x->resp_head_sent = true;
		break;
	}
	free(m);
	return r;
}

/* Some origins send bytes after a response that has none by its framing (radosgw: a
 * chunked "0" after HEAD /, an ACL document after HEAD /bkt?acl). Read as the start of
 * the next response, they would answer the next request. Only object HEADs are known to
 * end cleanly; after any other HEAD the connection is closed, never reused. */
static bool is_reusable_after(const struct exchange *x)
{
	return !http_str_eq(&x->req.method, "HEAD") || x->s3.op == S3_OBJECT_READ;
}

void pump_response(struct conn *c)
{
	struct exchange *x = c->x;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	uint64_t moved = 0;
	int r;

	r = move_body(x->fill ? c : NULL, bufferevent_get_input(c->obev), out, x->resp_body, &x->resp_left,
		      &x->resp_chunked, &moved, NULL);
	x->bytes_out += moved;
	metric_add(M_bytes_from_origin, moved);
	metric_add(M_bytes_to_client, moved);
	if (r < 0) {
		metric_add(M_origin_errors, 1);
		exchange_abort(c, "malformed chunked response from origin");
		return;
	}
	if (r == 1) {
		x->resp_done = true;
		if (x->fill)
			objread_body_done(c, true);
		exchange_finish(c);
		return;
	}
	if (c->w->d->is_splice && splice_start(c) == 0)
		return;
	if (evbuffer_get_length(out) >= CONN_PIPE_HIGH) {
		bufferevent_disable(c->obev, EV_READ);
		c->origin_read_paused = true;
	}
}

/* The origin's answer was to our conditions only: the client's request goes again, as it
 * came, on a fresh connection (the unread error body stays behind with the old one). */
static void redo_request(struct conn *c)
{
	objread_redo(c);
	origin_drop(c);
	c->x->upstream_sent = false;
	exchange_send_origin(c, NULL);
}

static void origin_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	int r;

	if (!c->x || !c->x->upstream_sent) {
		/* Bytes on an idle kept-alive connection (perhaps while this exchange waits in
		 * a herd, not having sent anything yet): it is not in a state we can reuse. */
		origin_drop(c);
		return;
	}
	if (c->x->taken_over) {
		/* The origin has answered; anything more on this connection is unexpected. */
		origin_drop(c);
		return;
	}
	if (!c->x->resp_head_sent) {
		r = on_response_head(c);
		if (r == -EAGAIN)
			return;
		if (r == HEAD_TAKEN) {
			hit_pump(c);
			return;
		}
		if (r == HEAD_REDO) {
			redo_request(c);
			return;
		}
		if (r == HEAD_PEER_REFUSED) {
			log_warn("owner %s refused our peer signature; handling the read here", c->x->fwd.id);
			peerfwd_fallback(c);
			return;
		}
		if (r == HEAD_UNSERVABLE) {
			reply_and_finish(c, 503, "SlowDown", "the cached copy cannot be read now; retry", true);
			return;
		}
		if (r < 0) {
			metric_add(M_origin_errors, 1);
			log_warn("origin %s: bad response head: %s", c->w->d->origin.label, strerror(-r));
			reply_and_finish(c, 502, "BadGateway", "the origin sent a malformed response", true);
			return;
		}
	}
	pump_response(c);
}

/* A reused keep-alive connection may have been closed by the origin just as we sent on
 * it; a request without a body can safely go again on a fresh connection, once. */
static bool retry_on_fresh_connection(struct conn *c)
{
	struct exchange *x = c->x;

	if (!c->origin_reused || x->origin_retried || x->req.body != HTTP_BODY_NONE)
		return false;
	x->origin_retried = true;
	metric_add(M_origin_retries, 1);
	origin_drop(c);
	if (peerfwd_resign(c) < 0)
		return false;
	return upstream_send(c, x->fwd_active ? &x->fwd : NULL,
			     x->extra_hdr[0] ? x->extra_hdr : NULL) == 0;
}

static void origin_failed(struct conn *c, short what)
{
	struct exchange *x = c->x;
	char msg[512], tls[256];
	const char *why;

	if (x->resp_head_sent && x->resp_body == HTTP_BODY_CLOSE && (what & BEV_EVENT_EOF)) {
		pump_response(c);
		if (c->x == x) {
			x->resp_done = true;
			x->resp_keep_alive = false;
			exchange_finish(c);
		}
		return;
	}
	if (x->resp_head_sent) {
		metric_add(M_origin_aborts, 1);
		exchange_abort(c, x->fwd_active ? "owner node closed mid-response" : "origin closed mid-response");
		return;
	}
	if (evbuffer_get_length(bufferevent_get_input(c->obev)) == 0 && retry_on_fresh_connection(c))
		return;
	if (x->fwd_active) {
		peerfwd_fallback(c);
		return;
	}
	why = (what & BEV_EVENT_TIMEOUT) ? "timed out"
	      : (what & BEV_EVENT_EOF)   ? "closed the connection before responding"
	      : *origin_tls_error(c->obev, tls, sizeof(tls)) ? tls
	      : strerror(EVUTIL_SOCKET_ERROR());
	snprintf(msg, sizeof(msg), "origin %s: %s", c->w->d->origin.label, why);
	log_warn("%s", msg);
	if (what & BEV_EVENT_TIMEOUT) {
		metric_add(M_origin_timeouts, 1);
		reply_and_finish(c, 504, "GatewayTimeout", msg, true);
	} else {
		metric_add(M_origin_errors, 1);
		reply_and_finish(c, 502, "BadGateway", msg, true);
	}
}

static void origin_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (!c->x || c->x->taken_over || !c->x->upstream_sent) {
		origin_drop(c);
		return;
	}
	origin_failed(c, what);
}

static void origin_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->client_read_paused && !c->closing) {
		c->client_read_paused = false;
		bufferevent_enable(c->cbev, EV_READ);
		pump_request(c);
	}
}

/* The client side of a connection: parse the request head, route it (relay, cache path,
 * owner node), stream the request body upstream with backpressure, and keep the
 * connection alive between requests. Errors before the response started become S3-style
 * XML errors; after that, the client's connection is cut so that a short body can never
 * pass as complete. The upstream side is in upstream.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange/conn.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "exchange/proxy-int.h"
#include "exchange/reply.h"

static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void exchange_free(struct conn *c, struct exchange *x)
{
	if (!x)
		return;
	metric_sub(M_exchanges_active, 1);
	peerfwd_end(c, x);
	splice_free(x->sp);
	x->sp = NULL;
	if (x->capture)
		evbuffer_free(x->capture);
	objread_cleanup(x);
	free(x->head);
	free(x);
}

void origin_drop(struct conn *c)
{
	if (c->obev)
		bufferevent_free(c->obev);
	c->obev = NULL;
	c->origin_reused = false;
	c->origin_read_paused = false;
}

static void conn_free(struct conn *c)
{
	origin_drop(c);
	exchange_free(c, c->x);
	bufferevent_free(c->cbev);
	metric_sub(M_connections_open, 1);
	free(c);
}

/* Stop reading from the client and free the connection once its output is flushed. */
static void conn_close_after_flush(struct conn *c)
{
	struct timeval tv = {.tv_sec = (time_t)c->w->d->cfg.client_timeout};

	c->closing = true;
	bufferevent_disable(c->cbev, EV_READ);
	/* A client that never reads the rest must not keep the connection forever. */
	bufferevent_set_timeouts(c->cbev, NULL, &tv);
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0)
		conn_free(c);
}

/* The response cannot be completed: cut the client off. */
void exchange_abort(struct conn *c, const char *why)
{
	struct exchange *x = c->x;

	if (x)
		log_warn("%s %.*s: %s after %llu body bytes; connection closed", c->peer,
			 (int)x->req.target.n, x->req.target.p, why, (unsigned long long)x->bytes_out);
	conn_free(c);
}

static void log_exchange(struct conn *c)
{
	struct exchange *x = c->x;

	metric_status(x->status);
	log_info("%.*s bucket=%s key=%s status=%d bytes=%llu ms=%.1f route=%s client=%s",
		 (int)x->req.method.n, x->req.method.p, x->s3.bucket[0] ? x->s3.bucket : "-",
		 x->s3.key[0] ? x->s3.key : "-", x->status, (unsigned long long)x->bytes_out,
		 elapsed_ms(&x->t0), x->route, c->peer);
}

/* A reply of our own (an error) ends the exchange; the connection closes after it when
 * the request body was not read or the framing cannot be trusted. */
void reply_and_finish(struct conn *c, int status, const char *code, const char *msg,
		      bool close_conn)
{
	struct exchange *x = c->x;
	const char *resource = "";
	char rbuf[HTTP_LINE_MAX + 1];

	if (x) {
		size_t n = x->req.target.n < HTTP_LINE_MAX ? x->req.target.n : HTTP_LINE_MAX;

		memcpy(rbuf, x->req.target.p, n);
		rbuf[strcspn(rbuf, "?") < n ? strcspn(rbuf, "?") : n] = '\0';
		resource = rbuf;
		x->status = status;
	}
	reply_error(bufferevent_get_output(c->cbev), status, code, msg, resource, close_conn);
	if (x) {
		log_exchange(c);
		exchange_free(c, x);
		c->x = NULL;
	} else {
		metric_status(status);
	}
	if (close_conn) {
		origin_drop(c);
		conn_close_after_flush(c);
	}
}

void exchange_reply_error(struct conn *c, int status, const char *code, const char *msg)
{
	reply_and_finish(c, status, code, msg, true);
}

void exchange_close_after(struct conn *c)
{
	c->x->req.keep_alive = false;
}

static void set_client_timeout(struct conn *c, bool reading)
{
	struct timeval tv = {.tv_sec = (time_t)c->w->d->cfg.client_timeout};

	bufferevent_set_timeouts(c->cbev, reading ? &tv : NULL, &tv);
}

void exchange_relay(struct conn *c, const char *route)
{
	c->x->route = route;
	if (exchange_send_origin(c, NULL) < 0)
		return;
	pump_request(c);
}

static void route_request(struct conn *c)
{
	struct exchange *x = c->x;
	struct lotad *d = c->w->d;
	const struct http_header *host;

	/* The peer header is ours: a client may not send it, so no request goes two hops. */
	if (!c->is_peer_port && http_find(&x->req, "x-lota-peer")) {
		reply_and_finish(c, 400, "InvalidRequest", "x-lota-peer is reserved for lota nodes", true);
		return;
	}
	if (c->is_peer_port && peerfwd_admit(c) != 0)
		return;
	host = http_find(&x->req, "host");
	if (host && s3_check_host(&host->value, d->cfg.host) < 0) {
		metric_add(M_bad_requests, 1);
		reply_and_finish(c, 400, "InvalidRequest",
				 "the Host header names no endpoint of this proxy (an IP address, the "
				 "intercepted host or BUCKET.host)", true);
		return;
	}
	if (s3_classify(&x->req, d->cfg.host, &x->s3) < 0) {
		reply_and_finish(c, 400, "InvalidURI", "the request target could not be parsed", true);
		return;
	}
	if (c->is_peer_port && x->s3.op != S3_OBJECT_READ) {
		reply_and_finish(c, 403, "AccessDenied", "the peer port serves object reads only", true);
		return;
	}
	if (x->s3.op == S3_OBJECT_READ && d->cache) {
		objread_start(c);
		return;
	}
	/* DeleteObjects names its keys in its body: keep a copy to drop them once done. */
	if (x->s3.is_multi_delete && d->cache && x->req.body == HTTP_BODY_LENGTH &&
	    x->req.content_length <= MULTI_DELETE_BODY_MAX)
		x->capture = evbuffer_new();
	exchange_relay(c, x->s3.op == S3_OBJECT_WRITE ? "write" : "relay");
}

/* A short reply of our own (peer health probes, invalidation, refusals); the connection
 * stays open unless close_conn. */
void exchange_reply(struct conn *c, int status, const char *extra_headers, const char *body,
		    bool close_conn)
{
	struct exchange *x = c->x;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t n = strlen(body);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
			    status, http_reason(status), body[0] == '<' ? "application/xml" : "text/plain",
			    n, extra_headers ? extra_headers : "",
			    close_conn || !x->req.keep_alive ? "Connection: close\r\n" : "");
	evbuffer_add(out, body, n);
	x->status = status;
	x->resp_keep_alive = true;
	x->resp_done = true;
	if (close_conn)
		x->req.keep_alive = false;
	if (!x->route)
		x->route = "local";
	exchange_finish(c);
}

/* A complete request head is in the client's input: take it and start the exchange. */
static int take_head(struct conn *c, const char *buf, size_t head_len)
{
	struct exchange *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->head = malloc(head_len);
	if (!x->head) {
		free(x);
		return -ENOMEM;
	}
	metric_add(M_exchanges_active, 1);
	memcpy(x->head, buf, head_len);
	x->head_len = head_len;
	/* Re-parse the copy so that every pointer refers to memory the exchange owns. */
	http_parse_request(x->head, head_len, &x->req);
	clock_gettime(CLOCK_MONOTONIC, &x->t0);
	x->req_left = x->req.content_length;
	x->req_body_done = x->req.body == HTTP_BODY_NONE;
	http_chunked_init(&x->req_chunked);
	evbuffer_drain(bufferevent_get_input(c->cbev), head_len);
	c->x = x;
	return 0;
}

/* The read timeout restarts with every byte, so a client trickling its head would never
 * hit it: the whole head must arrive within client-timeout of its first byte. */
static bool head_too_slow(struct conn *c)
{
	struct timespec now;
	uint64_t ms;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000 + 1;
	if (!c->head_started) {
		c->head_started = ms;
		return false;
	}
	return ms - c->head_started >= c->w->d->cfg.client_timeout * 1000;
}

static void on_request_head(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	size_t len = evbuffer_get_length(in), want = len < HTTP_HEAD_MAX + 2 ? len : HTTP_HEAD_MAX + 2;
	const char *buf;
	struct http_msg *m;
	int r;

	if (len == 0)
		return;
	buf = (const char *)evbuffer_pullup(in, (ssize_t)want);
	m = malloc(sizeof(*m));
	if (!m) {
		conn_free(c);
		return;
	}
	r = http_parse_request(buf, want, m);
	if (r == -EAGAIN && want > HTTP_HEAD_MAX)
		r = -EMSGSIZE;
	if (r == -EAGAIN && head_too_slow(c)) {
		free(m);
		metric_add(M_client_timeouts, 1);
		log_info("%s: request head not complete after %llus", c->peer,
			 (unsigned long long)c->w->d->cfg.client_timeout);
		reply_and_finish(c, 408, "RequestTimeout", "the request head took too long", true);
		return;
	}
	if (r != -EAGAIN)
		c->head_started = 0;
	if (r == 0)
		r = take_head(c, buf, m->head_len);
	free(m);
	if (r == -EAGAIN)
		return;
	if (r < 0) {
		metric_add(M_bad_requests, 1);
		log_info("%s: bad request: %s (status %d)", c->peer, strerror(-r), http_error_status(r));
		reply_and_finish(c, http_error_status(r), "BadRequest",
				 r == -ENOMEM ? "out of memory" : "malformed or oversize request head", true);
		return;
	}
	metric_add(M_requests_total, 1);
	set_client_timeout(c, !c->x->req_body_done);
	route_request(c);
}

/* Moves body bytes from src to dst as the framing allows; returns 1 when the body is
 * complete, 0 if more is to come, -EBADMSG on bad chunked framing. */
/* Copies the first n bytes of src to the end of copy (a request body we keep). */
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

int move_body(struct conn *tee, struct evbuffer *src, struct evbuffer *dst, enum http_body framing,
	      uint64_t *left, struct http_chunked *ch, uint64_t *moved, struct evbuffer *copy)
{
	size_t avail = evbuffer_get_length(src), take = 0;
	int done = 0;

	if (framing == HTTP_BODY_LENGTH) {
		take = *left < avail ? (size_t)*left : avail;
		*left -= take;
		done = *left == 0;
	} else if (framing == HTTP_BODY_CHUNKED) {
		struct evbuffer_iovec v[16];
		int n = evbuffer_peek(src, (ssize_t)avail, NULL, v, 16);

		for (int i = 0; i < n && i < 16 && !done; i++) {
			size_t used;

			done = http_chunked_scan(ch, v[i].iov_base, v[i].iov_len, &used);
			take += used;
			if (done < 0)
				return done;
		}
	} else if (framing == HTTP_BODY_CLOSE) {
		take = avail;
	} else {
		return 1;
	}
	if (take && tee)
		objread_tee(tee, src, take);
	if (take && copy)
		keep_copy(copy, src, take);
	if (take)
		evbuffer_remove_buffer(src, dst, take);
	*moved += take;
	return done;
}

void pump_request(struct conn *c)
{
	struct exchange *x = c->x;
	struct evbuffer *out;
	uint64_t moved = 0;
	int r;

	if (!x || x->req_body_done || !c->obev)
		return;
	out = bufferevent_get_output(c->obev);
	r = move_body(NULL, bufferevent_get_input(c->cbev), out, x->req.body, &x->req_left,
		      &x->req_chunked, &moved, x->capture);
	metric_add(M_bytes_from_client, moved);
	if (r < 0) {
		metric_add(M_bad_requests, 1);
		if (!x->resp_head_sent)
			reply_and_finish(c, 400, "IncompleteBody", "malformed chunked request body", true);
		else
			exchange_abort(c, "malformed chunked request body");
		return;
	}
	if (r == 1) {
		x->req_body_done = true;
		set_client_timeout(c, false);
	}
	if (evbuffer_get_length(out) >= CONN_PIPE_HIGH) {
		bufferevent_disable(c->cbev, EV_READ);
		c->client_read_paused = true;
	}
}

/* The exchange is over: log it and either wait for the next request or close. */
void exchange_finish(struct conn *c)
{
	struct exchange *x = c->x;
	bool keep = x->req.keep_alive && x->resp_keep_alive && x->req_body_done;

	log_exchange(c);
	/* Bytes already waiting on the upstream connection belong to no request. */
	if (!x->resp_keep_alive || !x->req_body_done || x->upstream_spent ||
	    (c->obev && evbuffer_get_length(bufferevent_get_input(c->obev))))
		origin_drop(c);
	else if (c->obev)
		set_origin_timeout(c, false);
	exchange_free(c, x);
	c->x = NULL;
	if (!keep) {
		conn_close_after_flush(c);
		return;
	}
	c->origin_reused = c->obev != NULL;
	set_client_timeout(c, true);
	if (c->client_read_paused) {
		c->client_read_paused = false;
		bufferevent_enable(c->cbev, EV_READ);
	}
	/* A pipelined request may already be waiting. */
	on_request_head(c);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing) {
		evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	if (!c->x)
		on_request_head(c);
	else if (!c->x->req_body_done)
		pump_request(c);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_free(c);
		return;
	}
	if (c->x && c->x->serving_file) {
		hit_pump(c);
		return;
	}
	if (c->x && c->x->sp) {
		splice_on_client_writable(c);
		return;
	}
	if (c->origin_read_paused && c->obev) {
		c->origin_read_paused = false;
		bufferevent_enable(c->obev, EV_READ);
		if (c->x)
			pump_response(c);
	}
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	bool has_bytes = evbuffer_get_length(bufferevent_get_input(bev)) > 0;

	if ((what & BEV_EVENT_TIMEOUT) && !c->closing &&
	    ((what & BEV_EVENT_WRITING) || (c->x && c->x->resp_head_sent))) {
		/* The client stopped reading a response under way: nothing may be appended
		 * to the bytes already queued; cut it off. */
		metric_add(M_client_timeouts, 1);
		exchange_abort(c, "client stopped reading");
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && !c->closing) {
		metric_add(M_client_timeouts, 1);
		if (c->x || has_bytes) {
			log_info("%s: client timed out mid-request", c->peer);
			reply_and_finish(c, 408, "RequestTimeout", "the client was silent for too long", true);
			return;
		}
	} else if (c->x && !c->closing) {
		metric_add(M_client_aborts, 1);
		log_info("%s: client closed mid-request", c->peer);
	}
	conn_free(c);
}

void conn_accept(struct worker *w, int fd, const char *peer, bool is_peer_port)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return;
	}
	c->w = w;
	c->is_peer_port = is_peer_port;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->cbev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->cbev) {
		close(fd);
		free(c);
		return;
	}
	metric_add(M_connections_open, 1);
	bufferevent_setcb(c->cbev, client_read_cb, client_write_cb, client_event_cb, c);
	/* Bound what a client can make us buffer: reading stops at the high watermark. */
	bufferevent_setwatermark(c->cbev, EV_READ, 0, CONN_READ_MAX + HTTP_HEAD_MAX);
	bufferevent_setwatermark(c->cbev, EV_WRITE, CONN_PIPE_HIGH / 2, 0);
	bufferevent_set_max_single_read(c->cbev, CONN_READ_MAX);
	/* One sendfile of a cached body may move many MiB: let it (file segments cost no
	 * memory; the socket's buffer bounds each call). */
	bufferevent_set_max_single_write(c->cbev, 64 * CONN_PIPE_HIGH);
	set_client_timeout(c, true);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
}

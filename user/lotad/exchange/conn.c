/* The client side of a connection, below the exchange driver: the bufferevent with its
 * bounds and timeouts, reading a request head (strict, bounded, and whole within
 * client-timeout of its first byte), answering errors that come before any exchange, and
 * closing. Its libevent callbacks only record what happened for the exchange in
 * progress, or hand a new head to the driver (conn_ops). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange/exchange-int.h"
#include "exchange/resphead.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"

void conn_set_client_timeout(struct conn *c, bool is_reading)
{
	struct timeval tv = {.tv_sec = (time_t)c->w->d->cfg.client_timeout};

	bufferevent_set_timeouts(c->cbev, is_reading ? &tv : NULL, &tv);
}

bool conn_client_has_room(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->cbev)) < CONN_PIPE_HIGH;
}

void conn_free(struct conn *c)
{
	upstream_release(c);
	bufferevent_free(c->cbev);
	metric_sub(M_connections_open, 1);
	__atomic_sub_fetch(&c->w->nconns, 1, __ATOMIC_RELAXED);
	free(c);
}

/* Stop reading from the client and free the connection once its output is flushed. */
void conn_close_after_flush(struct conn *c)
{
	struct timeval tv = {.tv_sec = (time_t)c->w->d->cfg.client_timeout};

	c->closing = true;
	upstream_release(c);
	bufferevent_disable(c->cbev, EV_READ);
	/* A client that never reads the rest must not keep the connection forever. */
	bufferevent_set_timeouts(c->cbev, NULL, &tv);
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0)
		conn_free(c);
}

/* An error before any exchange exists (a bad or slow head): answer it and close. */
static void refuse(struct conn *c, int status, const char *code, const char *msg)
{
	metric_status(status);
	resphead_error(bufferevent_get_output(c->cbev), status, code, msg, "", NULL, true);
	conn_close_after_flush(c);
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

static int parse_head(struct conn *c, const char **buf, size_t *head_len)
{
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	size_t len = evbuffer_get_length(in), want = len < HTTP_HEAD_MAX + 2 ? len : HTTP_HEAD_MAX + 2;
	struct http_msg *m = malloc(sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	*buf = (const char *)evbuffer_pullup(in, (ssize_t)want);
	r = http_parse_request(*buf, want, m);
	if (r == -EAGAIN && want > HTTP_HEAD_MAX)
		r = -EMSGSIZE;
	*head_len = m->head_len;
	free(m);
	return r;
}

int conn_read_head(struct conn *c, const char **buf, size_t *head_len)
{
	int r;

	if (evbuffer_get_length(bufferevent_get_input(c->cbev)) == 0)
		return -EAGAIN;
	r = parse_head(c, buf, head_len);
	if (r == -EAGAIN && head_too_slow(c)) {
		metric_add(M_client_timeouts, 1);
		log_info("%s: request head not complete after %llus", c->peer,
			 (unsigned long long)c->w->d->cfg.client_timeout);
		refuse(c, 408, "RequestTimeout", "the request head took too long");
		return -ETIMEDOUT;
	}
	if (r == -EAGAIN)
		return r;
	c->head_started = 0;
	if (r < 0) {
		metric_add(M_bad_requests, 1);
		log_info("%s: bad request: %s (status %d)", c->peer, strerror(-r), http_error_status(r));
		refuse(c, http_error_status(r), "BadRequest",
		       r == -ENOMEM ? "out of memory" : "malformed or oversize request head");
	}
	return r;
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing) {
		evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	if (c->x)
		c->x->run(c->x);
	else
		c->ops->on_head(c);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_free(c);
		return;
	}
	if (c->x)
		c->x->run(c->x);
}

/* A timeout: whose, and what it means for the exchange in progress (if any). */
static void client_timed_out(struct conn *c, short what)
{
	bool has_bytes = evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0;

	/* A client that stopped reading a response under way: nothing may be appended to
	 * the bytes already queued; it is cut off. */
	if ((what & BEV_EVENT_WRITING) || (c->x && c->x->resp_head_sent)) {
		if (c->x) {
			exchange_event(c->x, XE_CLIENT_STALLED);
			return;
		}
		metric_add(M_client_timeouts, 1);
		conn_free(c);
		return;
	}
	if (c->x) {
		exchange_event(c->x, XE_CLIENT_SILENT);
		return;
	}
	metric_add(M_client_timeouts, 1);
	if (!has_bytes) {
		conn_free(c); /* an idle keep-alive connection */
		return;
	}
	log_info("%s: client timed out mid-request", c->peer);
	refuse(c, 408, "RequestTimeout", "the client was silent for too long");
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (!c->closing && (what & BEV_EVENT_TIMEOUT)) {
		client_timed_out(c, what);
		return;
	}
	if (c->x && !c->closing) {
		/* A socket never ends on a write: a file segment did (its file shrank). */
		if ((what & BEV_EVENT_WRITING) && (what & BEV_EVENT_EOF))
			log_warn("%s: a cached file ended before its length while being sent: "
				 "response cut",
				 c->peer);
		else
			log_info("%s: client closed mid-request", c->peer);
		exchange_event(c->x, XE_CLIENT_GONE);
		return;
	}
	conn_free(c);
}

struct conn *conn_new(struct worker *w, int fd, const char *peer, bool is_peer_port,
		      const struct conn_ops *ops)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->w = w;
	c->ops = ops;
	c->is_peer_port = is_peer_port;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->cbev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->cbev) {
		free(c);
		return NULL;
	}
	metric_add(M_connections_open, 1);
	__atomic_add_fetch(&w->nconns, 1, __ATOMIC_RELAXED);
	bufferevent_setcb(c->cbev, client_read_cb, client_write_cb, client_event_cb, c);
	/* Bound what a client can make us buffer: reading stops at the high watermark. */
	bufferevent_setwatermark(c->cbev, EV_READ, 0, CONN_READ_MAX + HTTP_HEAD_MAX);
	bufferevent_setwatermark(c->cbev, EV_WRITE, CONN_PIPE_HIGH / 2, 0);
	bufferevent_set_max_single_read(c->cbev, CONN_READ_MAX);
	/* One sendfile of a cached body may move many MiB: let it (file segments cost no
	 * memory; the socket's buffer bounds each call). */
	bufferevent_set_max_single_write(c->cbev, 64 * CONN_PIPE_HIGH);
	conn_set_client_timeout(c, true);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	return c;
}

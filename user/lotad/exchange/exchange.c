/* The exchange driver: one state machine per request (fsm.h). libevent callbacks only
 * record what happened (exchange_event) and call exchange_run(), which runs the step of
 * the current state until a step must wait; the table says where each step's outcome
 * leads. Only this file ends an exchange (finish), so it alone decides keep-alive and
 * the next pipelined request. */
#include <errno.h>
#include <stdarg.h>
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
#include "exchange/origin.h"
#include "exchange/origins.h"
#include "lotad.h"
#include "metrics.h"
#include "s3region.h"

typedef enum xinput (*step_fn)(struct exchange *x);

static void on_head(struct conn *c);

/* The core's own route: relay anything no other route took. */
static enum route_verdict relay_start(struct exchange *x, void *arg)
{
	return RT_UPSTREAM;
}

static bool relay_claims(struct exchange *x, void *arg)
{
	return true;
}

static const struct route relay_route = {
	.name = "relay",
	.claims = relay_claims,
	.start = relay_start,
};

int exchange_route_add(struct lotad *d, const struct route *rt)
{
	if (d->nroutes == LOTAD_ROUTES_MAX)
		return -ENOSPC;
	d->routes[d->nroutes++] = rt;
	return 0;
}

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void log_exchange(struct exchange *x)
{
	metric_status(x->status);
	log_info("%.*s bucket=%s key=%s status=%d bytes=%llu ms=%.1f route=%s client=%s",
		 (int)x->req.method.n, x->req.method.p, x->s3.bucket[0] ? x->s3.bucket : "-",
		 x->s3.key[0] ? x->s3.key : "-", x->status, (unsigned long long)x->bytes_out,
		 elapsed_ms(&x->t0), x->label ? x->label : "-", x->c->peer);
}

/* The route leaves the exchange: its state goes, and so does what it asked upstream. */
static void leave_route(struct exchange *x)
{
	if (x->rt && x->rt->end)
		x->rt->end(x);
	x->rt = NULL;
	x->rt_priv = NULL;
	x->extra[0] = '\0';
	if (x->up.id[0] && x->c->obev)
		upstream_drop(x->c);
	exchange_upstream_origin(x);
}

/* What a route's verdict means to the table (and, for a reroute, to the route). */
static enum xinput route_input(struct exchange *x, enum route_verdict v)
{
	enum xinput in = fsm_input_of(v);

	if (in == XI_REROUTE)
		leave_route(x);
	if (in == XI_FAIL && !x->fail_status)
		exchange_fail(x, 500, "InternalError", "the request could not be handled");
	return in;
}

static const char *resource_of(const struct exchange *x, char *buf, size_t cap)
{
	size_t n = x->req.target.n < cap - 1 ? x->req.target.n : cap - 1;

	memcpy(buf, x->req.target.p, n);
	buf[n] = '\0';
	buf[strcspn(buf, "?")] = '\0';
	return buf;
}

static enum xinput step_route(struct exchange *x)
{
	struct lotad *d = exchange_lotad(x);
	const struct http_header *host = http_find(&x->req, "host");
	const struct route *rt = &relay_route;
	unsigned i;

	/* The peer header is ours: a client may not send it, so no request goes two hops. */
	if (!x->c->is_peer_port && http_find(&x->req, "x-lota-peer")) {
		exchange_fail(x, 400, "InvalidRequest", "x-lota-peer is reserved for lota nodes");
		return XI_FAIL;
	}
	if (host && s3_check_host(&host->value, d->cfg.host) < 0) {
		metric_add(M_bad_requests, 1);
		exchange_fail(x, 400, "InvalidRequest",
			      "the Host header names no endpoint of this proxy (an IP address, the "
			      "intercepted host or BUCKET.host)");
		return XI_FAIL;
	}
	if (s3_classify(&x->req, d->cfg.host, &x->s3) < 0) {
		exchange_fail(x, 400, "InvalidURI", "the request target could not be parsed");
		return XI_FAIL;
	}
	for (i = x->route_next; i < d->nroutes; i++)
		if (d->routes[i]->claims(x, d->routes[i]->arg)) {
			rt = d->routes[i];
			break;
		}
	x->route_next = i + 1;
	x->rt = rt;
	x->label = rt->name;
	return route_input(x, rt->start(x, rt->arg));
}

static enum xinput step_send(struct exchange *x)
{
	int r = upstream_send(x);
	enum route_verdict v;

	if (r == 0)
		return XI_SENT;
	if (!x->up.id[0]) {
		metric_add(M_origin_errors, 1);
		origin_note(x->origin, ORIGIN_FAILED);
		log_warn("origin %s: connect: %s", x->origin->label, strerror(-r));
		exchange_fail(x, 502, "BadGateway", "origin %s: connect: %s", x->origin->label,
			      strerror(-r));
		return XI_FAIL;
	}
	v = x->rt->on_upstream_error ? x->rt->on_upstream_error(x, r) : RT_FAIL;
	if (v == RT_FAIL && !x->fail_status)
		exchange_fail(x, 502, "BadGateway", "peer %s: %s", x->up.id, strerror(-r));
	return route_input(x, v);
}

static enum xinput wake_route(struct exchange *x)
{
	if (!(x->events & XE_WAKE))
		return XI_WAIT;
	x->events &= ~XE_WAKE;
	if (!x->rt->on_wake)
		return XI_WAIT;
	return route_input(x, x->rt->on_wake(x));
}

static enum xinput step_wait(struct exchange *x)
{
	enum xinput in = wake_route(x);

	return in == XI_HOLD ? XI_WAIT : in;
}

/* The upstream closed or failed before its answer's head. */
static enum xinput upstream_failed(struct exchange *x)
{
	char msg[512];
	enum route_verdict v;
	bool is_timeout = x->events & XE_UP_TIMEOUT;

	if (upstream_may_retry(x) && (!x->rt->on_resend || x->rt->on_resend(x) == 0)) {
		/* A reused keep-alive connection the origin closed just as we sent on it. */
		x->is_retried = true;
		metric_add(M_origin_retries, 1);
		upstream_drop(x->c);
		x->events &= ~(XE_UP_EOF | XE_UP_ERROR | XE_UP_TIMEOUT);
		return XI_REDO;
	}
	upstream_describe_failure(x, msg, sizeof(msg));
	x->events &= ~(XE_UP_EOF | XE_UP_ERROR | XE_UP_TIMEOUT);
	if (x->up.id[0] && x->rt->on_upstream_error) {
		v = x->rt->on_upstream_error(x, is_timeout ? -ETIMEDOUT : -ECONNRESET);
		if (v != RT_FAIL)
			return route_input(x, v);
	}
	log_warn("%s", msg);
	metric_add(is_timeout ? M_origin_timeouts : M_origin_errors, 1);
	if (x->origin)
		origin_note(x->origin, is_timeout ? ORIGIN_TIMED_OUT : ORIGIN_FAILED);
	exchange_fail(x, is_timeout ? 504 : 502, is_timeout ? "GatewayTimeout" : "BadGateway", "%s",
		      msg);
	return XI_FAIL;
}

/* The bucket's origin said it lives elsewhere: in region, or (NULL) it did not say
 * where. The answer goes to the client as it is; the bucket's next requests go where it
 * lives. An answer naming the origin's own region says nothing new. */
static void bucket_moved(struct exchange *x, const char *region)
{
	if (region && strcmp(region, x->origin->region) == 0)
		return;
	log_info("origin %s: %d for bucket %s%s%s: its location is learned again", x->origin->label,
		 x->status, x->s3.bucket, region ? " in region " : "", region ? region : "");
	origins_moved(exchange_lotad(x)->origins, x->s3.bucket, region, time(NULL));
}

/* An origin's answer says whether the bucket lives elsewhere: a 301 (PermanentRedirect),
 * or a 400 naming the bucket's region (AuthorizationHeaderMalformed) in a header or, as
 * AWS S3 sends it, only in its body, which is then looked at as it is relayed. */
static void origin_answered(struct exchange *x, const struct http_msg *m)
{
	char region[S3REGION_MAX];

	origin_note(x->origin, ORIGIN_ANSWERED);
	if (!exchange_lotad(x)->origins || !x->s3.bucket[0])
		return;
	switch (s3region_of_head(m, region, sizeof(region))) {
	case S3REGION_NONE:
		break;
	case S3REGION_NAMED:
		bucket_moved(x, region);
		break;
	case S3REGION_MOVED:
		bucket_moved(x, NULL);
		break;
	case S3REGION_BODY:
		x->region_tap = calloc(1, sizeof(*x->region_tap)); /* none: nothing learned */
		break;
	}
}

/* The relayed body is complete: what its start said of the bucket's region counts. */
static void region_tap_end(struct exchange *x)
{
	char region[S3REGION_MAX];

	if (x->region_tap && s3region_of_body(x->region_tap->buf, x->region_tap->n, region,
					      sizeof(region)) == S3REGION_NAMED)
		bucket_moved(x, region);
	free(x->region_tap);
	x->region_tap = NULL;
}

/* The answer's head is here: the route decides what becomes of it. */
static enum xinput answer_head(struct exchange *x, const struct http_msg *m, const char *raw)
{
	enum route_verdict v;

	x->status = m->status;
	x->resp_body = m->body;
	free(x->region_tap); /* a tap of an earlier answer (a redo) */
	x->region_tap = NULL;
	x->resp_left = m->content_length;
	x->resp_keep_alive = m->keep_alive;
	x->upstream_spent = !upstream_is_reusable_after(x);
	http_chunked_init(&x->resp_chunked);
	if (x->origin)
		origin_answered(x, m);
	v = x->rt->on_head ? x->rt->on_head(x, m, raw) : RT_RELAY;
	if ((v == RT_REDO || v == RT_REROUTE) && x->req.body != HTTP_BODY_NONE &&
	    (x->req.body != HTTP_BODY_LENGTH || x->req.content_length > 0)) {
		/* Its body went with the first request: sent again, the head would announce a
		 * body that never comes, and the origin would take the next request's bytes for
		 * it. The answer goes as it came. */
		char res[512];

		log_info("%s %s: not sent again (its body went with the first request): the "
			 "origin's %d as it came",
			 x->c->peer, resource_of(x, res, sizeof(res)), m->status);
		v = RT_RELAY;
	}
	if (v == RT_REDO || v == RT_REROUTE) {
		upstream_drop(x->c);
		x->upstream_sent = false;
		return route_input(x, v);
	}
	if (v == RT_RELAY)
		relay_response_head(x, raw, m);
	if (x->c->obev)
		upstream_drain(x, m->head_len); /* unless the route took the connection */
	if (v == RT_RELAY || v == RT_SERVE)
		x->resp_head_sent = true;
	if (v == RT_RELAY && x->resp_body == HTTP_BODY_NONE)
		return XI_DONE;
	return route_input(x, v);
}

/* The request's head (and body) left lotad and its answer's head is not here yet: the route's
 * on_sent work overlaps the origin's answer. Once per request sent. */
static void note_sent(struct exchange *x)
{
	if (x->is_sent_noted || !x->rt->on_sent || !upstream_is_flushed(x))
		return;
	x->is_sent_noted = true;
	x->rt->on_sent(x);
}

static enum xinput step_upstream(struct exchange *x)
{
	struct http_msg *m;
	const char *raw;
	enum xinput in = wake_route(x);
	bool was_continued = x->has_upstream_continued;
	int r;

	if (in != XI_WAIT && in != XI_HOLD)
		return in;
	m = malloc(sizeof(*m));
	if (!m) {
		x->cut_why = "out of memory";
		return XI_CUT;
	}
	r = upstream_read_head(x, m, &raw);
	if (x->has_upstream_continued && !was_continued)
		exchange_wake(x); /* the body held for the 100 goes on the next run */
	if (r == 0)
		in = answer_head(x, m, raw);
	else if (r == -EAGAIN)
		in = (x->events & (XE_UP_EOF | XE_UP_ERROR | XE_UP_TIMEOUT)) ? upstream_failed(x) : XI_WAIT;
	if (in == XI_WAIT && r == -EAGAIN)
		note_sent(x);
	free(m);
	if (r < 0 && r != -EAGAIN) {
		metric_add(M_origin_errors, 1);
		if (x->origin)
			origin_note(x->origin, ORIGIN_FAILED);
		log_warn("%s %s: bad response head: %s", x->up.id[0] ? "peer" : "origin",
			 x->up.id[0] ? x->up.id : x->origin->label, strerror(-r));
		exchange_fail(x, 502, "BadGateway", "the origin sent a malformed response");
		in = XI_FAIL;
	}
	return in;
}

/* A body is done once the client's socket has taken its last byte, not once it is
 * queued (many MiB of file segments may be): a drain waits for it, and the log's time
 * is the client's. The client write callback runs the exchange as the queue shrinks. */
static enum xinput flushed(struct exchange *x, enum xinput in)
{
	if (in != XI_DONE)
		return in;
	x->is_flushing = evbuffer_get_length(exchange_client_out(x)) > 0;
	return x->is_flushing ? XI_WAIT : XI_DONE;
}

static enum xinput body_ended(struct exchange *x, enum xinput in)
{
	if (in == XI_DONE)
		region_tap_end(x);
	if (in == XI_DONE && x->rt->on_body_end)
		x->rt->on_body_end(x);
	return flushed(x, in);
}

static enum xinput step_body_relay(struct exchange *x)
{
	if (x->is_flushing)
		return flushed(x, XI_DONE);
	return body_ended(x, relay_response_body(x));
}

static enum xinput step_body_splice(struct exchange *x)
{
	if (x->is_flushing)
		return flushed(x, XI_DONE);
	return body_ended(x, splice_pump(x));
}

static enum xinput step_body_serve(struct exchange *x)
{
	x->events &= ~XE_WAKE;
	if (x->is_flushing)
		return flushed(x, XI_DONE);
	switch (x->mover->pump(x, x->mover_state)) {
	case MOVER_DONE: return flushed(x, XI_DONE);
	case MOVER_CUT:
		if (!x->cut_why)
			x->cut_why = "the body could not be read";
		return XI_CUT;
	case MOVER_WAIT: break;
	}
	return XI_WAIT;
}

static enum xinput step_reply(struct exchange *x)
{
	char res[HTTP_LINE_MAX + 1];

	if (x->resp_head_sent) {
		x->cut_why = x->fail_msg;
		return XI_CUT;
	}
	x->status = x->fail_status;
	x->resp_keep_alive = false; /* the framing of what follows cannot be trusted */
	resphead_error(exchange_client_out(x), x->fail_status, x->fail_code, x->fail_msg,
		       resource_of(x, res, sizeof(res)), NULL, true);
	return XI_REPLIED;
}

static void expect_over_cb(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;

	x->is_expect_over = true;
	exchange_wake(x);
}

/* A body held for the origin's 100 (relay.c) goes after EXPECT_WAIT_MS anyway. */
static void arm_expect_timer(struct exchange *x)
{
	struct timeval tv = {0, EXPECT_WAIT_MS * 1000};

	if (x->expect_ev || x->has_upstream_continued || x->is_expect_over ||
	    !relay_is_expecting_continue(x))
		return;
	x->expect_ev = evtimer_new(exchange_base(x), expect_over_cb, x);
	if (!x->expect_ev || evtimer_add(x->expect_ev, &tv) < 0)
		x->is_expect_over = true; /* no timer: the body goes at once, as before */
}

/* What every live state checks first: the client, and the request body. */
static enum xinput step_common(struct exchange *x)
{
	enum xinput in;

	if (x->events & (XE_CLIENT_GONE | XE_CLIENT_STALLED)) {
		bool is_gone = x->events & XE_CLIENT_GONE;

		metric_add(is_gone ? M_client_aborts : M_client_timeouts, 1);
		x->cut_why = is_gone ? "client closed mid-request" : "client stopped reading";
		return XI_CUT;
	}
	if ((x->events & XE_CLIENT_SILENT) && x->state != XS_REPLY) {
		x->events &= ~XE_CLIENT_SILENT;
		metric_add(M_client_timeouts, 1);
		log_info("%s: client timed out mid-request", x->c->peer);
		exchange_fail(x, 408, "RequestTimeout", "the client was silent for too long");
		return XI_FAIL;
	}
	/* The request body flows while the answer is awaited or moves; not once lotad
	 * answers with an error of its own (the rest of the body is never read). */
	if (!x->upstream_sent || x->req_body_done || x->state == XS_REPLY || x->state == XS_WAIT)
		return XI_WAIT;
	arm_expect_timer(x);
	in = relay_request_body(x);
	if (in == XI_FAIL) {
		metric_add(M_bad_requests, 1);
		exchange_fail(x, 400, "IncompleteBody", "malformed chunked request body");
		return XI_FAIL;
	}
	return XI_WAIT;
}

static const step_fn steps[XS__COUNT] = {
	[XS_ROUTE] = step_route,
	[XS_SEND] = step_send,
	[XS_WAIT] = step_wait,
	[XS_UPSTREAM] = step_upstream,
	[XS_BODY_RELAY] = step_body_relay,
	[XS_BODY_SPLICE] = step_body_splice,
	[XS_BODY_SERVE] = step_body_serve,
	[XS_REPLY] = step_reply,
};

void exchange_free(struct exchange *x)
{
	struct conn *c = x->c;

	if (x->rt && x->rt->end)
		x->rt->end(x);
	if (x->mover && x->mover->free)
		x->mover->free(x->mover_state);
	splice_free(x->sp);
	free(x->region_tap);
	if (x->req_copy)
		evbuffer_free(x->req_copy);
	if (x->wake_ev)
		event_free(x->wake_ev);
	if (x->expect_ev)
		event_free(x->expect_ev);
	metric_sub(M_exchanges_active, 1);
	free(x->head);
	free(x);
	c->x = NULL;
}

/* The one place an exchange ends. */
static void finish(struct exchange *x)
{
	struct conn *c = x->c;
	bool is_keep;

	if (x->state == XS_ABORT) {
		char res[512]; /* the path only: a presigned URL's query is a credential */

		log_warn("%s %s: %s after %llu body bytes; connection closed", c->peer,
			 resource_of(x, res, sizeof(res)), x->cut_why ? x->cut_why : "cut",
			 (unsigned long long)x->bytes_out);
		exchange_free(x);
		conn_free(c);
		return;
	}
	log_exchange(x);
	exchange_cork_client(x, false); /* the answer's last partial segment goes now */
	is_keep = x->req.keep_alive && x->resp_keep_alive && x->req_body_done;
	/* Bytes already waiting on the upstream connection belong to no request. */
	if (!x->resp_keep_alive || !x->req_body_done || x->upstream_spent ||
	    (c->obev && evbuffer_get_length(bufferevent_get_input(c->obev))))
		upstream_drop(c);
	else if (c->obev) {
		upstream_set_timeout(c, false);
		/* Another client may have it next (upstream_release): only once every byte of
		 * the answer is known read, not merely none buffered now. */
		if (x->upstream_sent)
			c->is_upstream_idle =
			    !evbuffer_get_length(bufferevent_get_output(c->obev)) &&
			    (x->resp_body == HTTP_BODY_NONE ||
			     (x->resp_body == HTTP_BODY_LENGTH && x->resp_left == 0));
	}
	exchange_free(x);
	if (!is_keep) {
		conn_close_after_flush(c);
		return;
	}
	c->origin_reused = c->obev != NULL;
	conn_set_client_timeout(c, true);
	if (c->client_read_paused) {
		c->client_read_paused = false;
		bufferevent_enable(c->cbev, EV_READ);
	}
	on_head(c); /* a pipelined request may be waiting already */
}

void exchange_run(struct exchange *x)
{
	if (x->is_running) {
		x->is_rerun = true; /* a callback fired inside a step: run again after it */
		return;
	}
	x->is_running = true;
	for (;;) {
		enum xinput in = step_common(x);
		enum xstate next;

		if (in == XI_WAIT)
			in = steps[x->state](x);
		if (in == XI_WAIT) {
			if (!x->is_rerun)
				break;
			x->is_rerun = false;
			continue;
		}
		next = fsm_next(x->state, in);
		log_debug("exchange %p: %s --%s--> %s", (void *)x, fsm_state_name(x->state),
			  fsm_input_name(in), fsm_state_name(next));
		if (next == XS_INVALID) {
			log_error("exchange: no transition from %s on %s; connection closed",
				  fsm_state_name(x->state), fsm_input_name(in));
			x->cut_why = "internal error";
			next = XS_ABORT;
		}
		x->state = next;
		if (fsm_is_terminal(next)) {
			finish(x);
			return;
		}
	}
	x->is_running = false;
}

static int exchange_begin(struct conn *c, const char *buf, size_t head_len)
{
	struct exchange *x = calloc(1, sizeof(*x));

	if (!x || !(x->head = malloc(head_len))) {
		free(x);
		return -ENOMEM;
	}
	metric_add(M_exchanges_active, 1);
	memcpy(x->head, buf, head_len);
	x->head_len = head_len;
	/* Re-parse the copy so that every pointer refers to memory the exchange owns. */
	http_parse_request(x->head, head_len, &x->req);
	clock_gettime(CLOCK_MONOTONIC, &x->t0);
	x->c = c;
	x->run = exchange_run;
	x->state = XS_ROUTE;
	x->req_left = x->req.content_length;
	x->req_body_done = x->req.body == HTTP_BODY_NONE;
	http_chunked_init(&x->req_chunked);
	evbuffer_drain(bufferevent_get_input(c->cbev), head_len);
	c->x = x;
	metric_add(M_requests_total, 1);
	conn_set_client_timeout(c, !x->req_body_done);
	exchange_run(x);
	return 0;
}

/* A request head may be waiting on c (a new or a kept-alive connection). */
static void on_head(struct conn *c)
{
	const char *buf;
	size_t head_len;
	int r = conn_read_head(c, &buf, &head_len);

	if (r == 0 && exchange_begin(c, buf, head_len) < 0) {
		metric_add(M_bad_requests, 1);
		resphead_error(bufferevent_get_output(c->cbev), 503, "SlowDown", "out of memory", "",
			       NULL, true);
		conn_close_after_flush(c);
	}
}

static const struct conn_ops conn_ops = {.on_head = on_head};

void conn_accept(struct worker *w, int fd, const char *peer, bool is_peer_port)
{
	if (!conn_new(w, fd, peer, is_peer_port, &conn_ops))
		close(fd);
}

/* -- what routes may call ------------------------------------------------------------ */

void exchange_fail(struct exchange *x, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	x->fail_status = status;
	x->fail_code = code;
	va_start(ap, fmt);
	vsnprintf(x->fail_msg, sizeof(x->fail_msg), fmt, ap);
	va_end(ap);
}

void exchange_upstream_origin(struct exchange *x)
{
	memset(&x->up, 0, sizeof(x->up));
}

void exchange_upstream_peer(struct exchange *x, const char *id, const struct sockaddr *sa,
			    socklen_t len)
{
	snprintf(x->up.id, sizeof(x->up.id), "%s", id);
	memcpy(&x->up.addr, sa, len);
	x->up.addrlen = len;
}

int exchange_set_extra(struct exchange *x, const char *lines)
{
	size_t n = lines ? strlen(lines) : 0;

	if (n >= sizeof(x->extra))
		return -E2BIG;
	memcpy(x->extra, lines ? lines : "", n + 1);
	return 0;
}

void exchange_keep_request_body(struct exchange *x, size_t max)
{
	if (x->req.body != HTTP_BODY_LENGTH || x->req.content_length > max || x->req_copy)
		return;
	x->req_copy = evbuffer_new();
	x->req_copy_max = max;
}

struct evbuffer *exchange_request_body(const struct exchange *x)
{
	return x->req_body_done ? x->req_copy : NULL;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	exchange_event(arg, XE_WAKE);
}

struct event *exchange_wake_event(struct exchange *x)
{
	if (!x->wake_ev)
		x->wake_ev = event_new(exchange_base(x), -1, 0, wake_cb, x);
	return x->wake_ev;
}

void exchange_wake(struct exchange *x)
{
	struct event *ev = exchange_wake_event(x);

	if (ev)
		event_active(ev, EV_READ, 0);
}

void exchange_serve(struct exchange *x, const struct mover_ops *ops, void *state)
{
	x->mover = ops;
	x->mover_state = state;
}

enum route_verdict exchange_reply(struct exchange *x, int status, const char *extra,
				  const char *body, bool is_close)
{
	if (is_close)
		exchange_close_after(x);
	resphead_text(exchange_client_out(x), status, extra, body, !x->req.keep_alive);
	x->status = status;
	x->resp_keep_alive = true;
	x->resp_head_sent = true;
	return RT_REPLIED;
}

struct bufferevent *exchange_take_upstream(struct exchange *x, size_t head_len)
{
	struct conn *c = x->c;
	struct bufferevent *bev = c->obev;

	if (!bev)
		return NULL;
	upstream_drain(x, head_len);
	upstream_set_timeout(c, false);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	c->obev = NULL;
	c->obev_id[0] = '\0';
	c->obev_origin = NULL;
	c->origin_reused = false;
	c->origin_read_paused = false;
	x->upstream_spent = true;
	return bev;
}

void exchange_close_after(struct exchange *x)
{
	x->req.keep_alive = false;
}


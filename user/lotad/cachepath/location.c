/* Each bucket's home region (region-origins): a route asked before all others learns it
 * once with GetBucketLocation, signed with the service credentials, while the bucket's
 * requests wait; the exchange core then sends them to that region's origin (origins.h).
 * The origins are asked in turn, the default first: one that does not hold the bucket
 * answers 404, one that does names its region. lotad's own requests told that the bucket
 * lives elsewhere learn it the same way and go again. Also the "origins" part of lotactl
 * status and /metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "admin/admin.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/location.h"
#include "cachepath/svccreds.h"
#include "exchange/origin.h"
#include "exchange/origins.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "s3region.h"

#define LOCATION_BODY_MAX 4096 /* a GetBucketLocation answer is ~150 bytes */
#define ASK_MAX (HTTP_HEAD_MAX + LOCATION_BODY_MAX)

/* One wait for a bucket's location: a request's (x->rt_priv), or one of lotad's own
 * requests' (struct location_wait). */
struct ask {
	struct cachepath *cp;
	struct event_base *base;
	struct event *ev; /* made active once the location is known, or to claim again */
	char bucket[S3_BUCKET_MAX];
	bool is_learner;	 /* this one asks; the others wait for it */
	bool is_waiting;	 /* registered as a waiter */
	bool is_done;		 /* the location is known */
	bool is_in_claim;	 /* in ask_claim(): its verdict says it, no wake */
	size_t next;		 /* the next origin to ask (origins_at) */
	size_t asked;		 /* origins asked so far */
	struct bufferevent *bev; /* GetBucketLocation in flight */
	struct origin *o;	 /* ... to this origin */
};

/* lotad's own request (a chunk fill, a HEAD) waiting for its bucket's location. */
struct location_wait {
	struct ask a;
	void (*done)(void *arg);
	void *arg;
};

/* What a claim or a wake leaves an ask with. */
enum ask_state {
	ASK_KNOWN, /* origins_for() names the bucket's origin */
	ASK_WAIT,  /* a->ev is made active when that changes */
};

static struct origins *table_of(const struct ask *a)
{
	return a->cp->d->origins;
}

/* The cluster's own requests on the peer port (/_lota/chunk, /_lota/invalidate:
 * chunkwire.h) name no bucket in their path; the owner learns the location of the one
 * they name when it fills (location_learn_first). */
#define CLUSTER_PATH "/_lota/"

static bool location_claims(struct exchange *x, void *arg)
{
	struct cachepath *cp = arg;
	size_t n = strlen(CLUSTER_PATH);

	if (exchange_is_peer_port(x) && x->req.target.n >= n &&
	    memcmp(x->req.target.p, CLUSTER_PATH, n) == 0)
		return false;
	return cp->svc && origins_is_learning(cp->d->origins) &&
	       origins_needs_learning(cp->d->origins, x->s3.bucket, time(NULL));
}

static void ask_drop_bev(struct ask *a)
{
	if (a->bev)
		bufferevent_free(a->bev);
	a->bev = NULL;
}

/* The learning ends: region as the origin said it, or NULL (none said). */
static void ask_finish(struct ask *a, const char *region)
{
	struct origin *o = origins_learned(table_of(a), a->bucket, region, time(NULL));

	ask_drop_bev(a);
	a->is_learner = false;
	a->is_done = true;
	if (region)
		log_info("location: bucket %s is in region '%s': origin %s (%zu origin(s) asked)",
			 a->bucket, region[0] ? region : "us-east-1", o->label, a->asked);
	else
		log_warn("location: no origin told the region of bucket %s (%zu asked): origin "
			 "%s for %ds",
			 a->bucket, a->asked, o->label, ORIGINS_UNKNOWN_TTL_S);
	if (!a->is_in_claim)
		event_active(a->ev, EV_READ, 0);
}

/* The text of <LocationConstraint>...</LocationConstraint> ("" if empty or self-closed). */
static int parse_region(const char *body, size_t n, char *out, size_t cap)
{
	const char *p = memmem(body, n, "<LocationConstraint", 19), *end = body + n, *q;

	if (!p || !(p = memchr(p, '>', (size_t)(end - p))))
		return -EPROTO;
	if (p[-1] == '/') {
		out[0] = '\0';
		return 0;
	}
	p++;
	q = memmem(p, (size_t)(end - p), "</LocationConstraint>", 21);
	if (!q || (size_t)(q - p) >= cap)
		return -EPROTO;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return 0;
}

static void ask_next(struct ask *a);

/* The whole answer of the origin asked is in: its region, or try the next origin. */
static void ask_answered(struct ask *a, const struct http_msg *m, const char *body)
{
	char region[ORIGINS_REGION_MAX];
	const struct http_header *h = http_find(m, "x-amz-bucket-region");

	origin_note(a->o, ORIGIN_ANSWERED);
	if (m->status == 200 &&
	    parse_region(body, m->content_length, region, sizeof(region)) == 0) {
		ask_finish(a, region);
		return;
	}
	/* An S3 that redirects even this names the region in a header. */
	if (h && h->value.n < sizeof(region)) {
		memcpy(region, h->value.p, h->value.n);
		region[h->value.n] = '\0';
		ask_finish(a, region);
		return;
	}
	log_debug("location: origin %s: GetBucketLocation of %s: %d", a->o->label, a->bucket,
		  m->status);
	ask_drop_bev(a);
	ask_next(a);
}

static void ask_read_cb(struct bufferevent *bev, void *arg)
{
	static const struct http_str get = {"GET", 3};
	struct ask *a = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in), want = len < ASK_MAX ? len : ASK_MAX;
	struct http_msg *m = malloc(sizeof(*m));
	const char *buf;
	int r;

	if (!m) {
		ask_finish(a, NULL);
		return;
	}
	/* All of it at once: m points into these bytes, the body follows the head. */
	buf = (const char *)evbuffer_pullup(in, (ssize_t)want);
	r = http_parse_response(buf, want, &get, m);
	if (r == -EAGAIN && len >= ASK_MAX)
		r = -EMSGSIZE;
	if (r == 0 && m->status >= 200 &&
	    (m->body != HTTP_BODY_LENGTH || m->content_length > LOCATION_BODY_MAX))
		r = -EPROTO; /* radosgw and S3 send a short, sized body */
	if (r == 0 && m->status >= 200 && want >= m->head_len + m->content_length) {
		ask_answered(a, m, buf + m->head_len);
	} else if (r == 0 && m->status < 200) {
		evbuffer_drain(in, m->head_len);
	} else if (r < 0 && r != -EAGAIN) {
		ask_drop_bev(a);
		ask_next(a);
	}
	free(m);
}

static void ask_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ask *a = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	log_info("location: origin %s: GetBucketLocation of %s: %s", a->o->label, a->bucket,
		 (what & BEV_EVENT_TIMEOUT) ? "timed out" : "connection failed");
	origin_note(a->o, (what & BEV_EVENT_TIMEOUT) ? ORIGIN_TIMED_OUT : ORIGIN_FAILED);
	ask_drop_bev(a);
	ask_next(a);
}

static int ask_send(struct ask *a)
{
	a->bev = origin_connect(a->o, a->base);
	if (!a->bev)
		return -errno;
	bufferevent_setcb(a->bev, ask_read_cb, NULL, ask_event_cb, a);
	origin_set_timeouts(a->o, a->bev);
	origin_note(a->o, ORIGIN_SENT);
	a->asked++;
	if (svccreds_bucket_request(a->cp->svc, "GET", a->o, a->bucket, "location",
				    bufferevent_get_output(a->bev)) < 0)
		return -EINVAL;
	return bufferevent_enable(a->bev, EV_READ | EV_WRITE) < 0 ? -ENOMEM : 0;
}

/* Asks the next origin; past the last, the bucket's region is unknown. */
static void ask_next(struct ask *a)
{
	struct origins *t = table_of(a);

	while (a->next < origins_count(t)) {
		a->o = origins_at(t, a->next++);
		if (ask_send(a) == 0)
			return;
		ask_drop_bev(a);
	}
	ask_finish(a, NULL);
}

/* What the table says decides: known, ask, or wait for whoever asks. */
static enum ask_state ask_claim(struct ask *a)
{
	switch (origins_claim(table_of(a), a->bucket, time(NULL), a->ev)) {
	case ORIGINS_KNOWN:
		return ASK_KNOWN;
	case ORIGINS_WAIT:
		a->is_waiting = true;
		return ASK_WAIT;
	case ORIGINS_LEARN:
		break;
	}
	a->is_learner = true;
	a->next = 0;
	a->is_in_claim = true;
	ask_next(a);
	a->is_in_claim = false;
	return a->is_done ? ASK_KNOWN : ASK_WAIT;
}

/* a->ev fired: the location is known, or the learner answered or went away. */
static enum ask_state ask_woken(struct ask *a)
{
	if (a->is_done)
		return ASK_KNOWN;
	if (a->is_learner)
		return ASK_WAIT; /* a wake of our own from before */
	a->is_waiting = false;
	return ask_claim(a);
}

/* The waiter goes away, known or not: nothing of the table points to it after this. */
static void ask_release(struct ask *a)
{
	if (a->is_waiting)
		origins_unwait(table_of(a), a->bucket, a->ev);
	if (a->is_learner)
		origins_abandon(table_of(a), a->bucket);
	a->is_waiting = a->is_learner = false;
	ask_drop_bev(a);
}

static enum route_verdict location_start(struct exchange *x, void *arg)
{
	struct ask *a = calloc(1, sizeof(*a));

	if (!a || !exchange_wake_event(x)) {
		free(a);
		return RT_REROUTE; /* the default origin, as without region-origins */
	}
	a->cp = arg;
	a->base = exchange_base(x);
	a->ev = exchange_wake_event(x);
	snprintf(a->bucket, sizeof(a->bucket), "%s", x->s3.bucket);
	x->rt_priv = a;
	return ask_claim(a) == ASK_KNOWN ? RT_REROUTE : RT_WAIT;
}

static enum route_verdict location_on_wake(struct exchange *x)
{
	return ask_woken(x->rt_priv) == ASK_KNOWN ? RT_REROUTE : RT_WAIT;
}

static void location_end(struct exchange *x)
{
	struct ask *a = x->rt_priv;

	if (!a)
		return;
	ask_release(a);
	free(a);
	x->rt_priv = NULL;
}

/* -- lotad's own requests ---------------------------------------------------------- */

void location_wait_cancel(struct location_wait *w)
{
	if (!w)
		return;
	ask_release(&w->a);
	if (w->a.ev)
		event_free(w->a.ev);
	free(w);
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct location_wait *w = arg;
	void (*done)(void *arg) = w->done;
	void *done_arg = w->arg;

	if (ask_woken(&w->a) == ASK_WAIT)
		return;
	location_wait_cancel(w);
	done(done_arg);
}

static int wait_begin(struct cachepath *cp, struct event_base *base, const char *bucket,
		      void (*done)(void *arg), void *arg, struct location_wait **out)
{
	struct location_wait *w = calloc(1, sizeof(*w));

	if (!w || !(w->a.ev = event_new(base, -1, 0, wait_cb, w))) {
		free(w);
		return -ENOMEM;
	}
	w->a.cp = cp;
	w->a.base = base;
	snprintf(w->a.bucket, sizeof(w->a.bucket), "%s", bucket);
	w->done = done;
	w->arg = arg;
	/* Told from the event loop even when known at once: the caller is in a callback of
	 * the connection it is about to drop. */
	if (ask_claim(&w->a) == ASK_KNOWN) {
		w->a.is_done = true;
		event_active(w->a.ev, EV_READ, 0);
	}
	*out = w;
	return 0;
}

bool location_learn_first(struct cachepath *cp, struct event_base *base, const char *bucket,
			  void (*done)(void *arg), void *arg, struct location_wait **out)
{
	*out = NULL;
	if (!cp->svc || !origins_is_learning(cp->d->origins) ||
	    !origins_needs_learning(cp->d->origins, bucket, time(NULL)))
		return false;
	return wait_begin(cp, base, bucket, done, arg, out) == 0;
}

/* What the answer says: the region named (region set), elsewhere unnamed (MOVED), or
 * nothing; MORE while a body that may name it is not all here. */
static enum location_verdict answer_says(const struct http_msg *m, const char *body, size_t n,
					 char *region, size_t cap, enum s3region_verdict *v)
{
	*v = s3region_of_head(m, region, cap);
	if (*v != S3REGION_BODY)
		return LOCATION_MOVED;
	if (m->body != HTTP_BODY_LENGTH)
		return LOCATION_STAY; /* a chunked error body: not read on this path */
	if (n < m->content_length)
		return LOCATION_MORE;
	*v = s3region_of_body(body, (size_t)m->content_length, region, cap);
	return LOCATION_MOVED;
}

enum location_verdict location_redirected(struct cachepath *cp, struct event_base *base,
					  const char *bucket, const struct origin *from,
					  const struct http_msg *m, const char *body, size_t n,
					  void (*done)(void *arg), void *arg,
					  struct location_wait **out)
{
	char region[S3REGION_MAX];
	enum s3region_verdict v;
	enum location_verdict lv;

	*out = NULL;
	if (!cp->d->origins || !cp->svc || !bucket[0])
		return LOCATION_STAY;
	lv = answer_says(m, body, n, region, sizeof(region), &v);
	if (lv != LOCATION_MOVED)
		return lv;
	if (v == S3REGION_NONE || v == S3REGION_BODY ||
	    (v == S3REGION_NAMED && strcmp(region, from->region) == 0))
		return LOCATION_STAY;
	log_info("location: origin %s: %d to lotad's request for bucket %s%s%s: its location is "
		 "learned again",
		 from->label, m->status, bucket, v == S3REGION_NAMED ? " in region " : "", region);
	origins_moved(cp->d->origins, bucket, v == S3REGION_NAMED ? region : NULL, time(NULL));
	return wait_begin(cp, base, bucket, done, arg, out) == 0 ? LOCATION_MOVED : LOCATION_STAY;
}

/* -- lotactl status and /metrics ------------------------------------------------------ */

static void origins_status(void *arg, struct evbuffer *b)
{
	struct cachepath *cp = arg;
	struct origins *t = cp->d->origins;

	evbuffer_add_printf(b, "{\"buckets_known\":%zu,\"list\":[", origins_known(t));
	for (size_t i = 0; i < origins_count(t); i++) {
		struct origin *o = origins_at(t, i);

		evbuffer_add_printf(b, "%s{\"url\":", i ? "," : "");
		admin_json_str(b, o->url);
		evbuffer_add_printf(b, ",\"region\":");
		admin_json_str(b, o->region);
		evbuffer_add_printf(
		    b,
		    ",\"default\":%s,\"up\":%s,\"requests\":%llu,\"errors\":%llu,"
		    "\"timeouts\":%llu,\"connect_timeout_ms\":%u,\"read_timeout_ms\":%u}",
		    i == 0 ? "true" : "false", origin_is_down(o) ? "false" : "true",
		    (unsigned long long)__atomic_load_n(&o->n_requests, __ATOMIC_RELAXED),
		    (unsigned long long)__atomic_load_n(&o->n_errors, __ATOMIC_RELAXED),
		    (unsigned long long)__atomic_load_n(&o->n_timeouts, __ATOMIC_RELAXED),
		    o->connect_ms, o->read_ms);
	}
	evbuffer_add_printf(b, "]}");
}

static void family(struct evbuffer *b, struct origins *t, const char *name, const char *type,
		   const char *help, int which)
{
	evbuffer_add_printf(b, "# HELP lota_%s %s\n# TYPE lota_%s %s\n", name, help, name, type);
	for (size_t i = 0; i < origins_count(t); i++) {
		struct origin *o = origins_at(t, i);
		uint64_t v = which == 0	  ? __atomic_load_n(&o->n_requests, __ATOMIC_RELAXED)
			     : which == 1 ? __atomic_load_n(&o->n_errors, __ATOMIC_RELAXED)
			     : which == 2 ? __atomic_load_n(&o->n_timeouts, __ATOMIC_RELAXED)
					  : !origin_is_down(o);

		evbuffer_add_printf(b, "lota_%s{origin=\"%s\",region=\"%s\"} %llu\n", name,
				    o->label, o->region, (unsigned long long)v);
	}
}

static void origins_metrics(void *arg, struct evbuffer *b)
{
	struct cachepath *cp = arg;
	struct origins *t = cp->d->origins;

	family(b, t, "origin_requests_by_origin", "counter", "requests sent to each origin", 0);
	family(b, t, "origin_errors_by_origin", "counter",
	       "connect, TLS or protocol failures of each origin", 1);
	family(b, t, "origin_timeouts_by_origin", "counter",
	       "requests to each origin that timed out", 2);
	family(b, t, "origin_up", "gauge",
	       "0 after a failure of the origin, until it answers again", 3);
	evbuffer_add_printf(
	    b,
	    "# HELP lota_bucket_locations_known buckets whose origin is known\n"
	    "# TYPE lota_bucket_locations_known gauge\nlota_bucket_locations_known %zu\n",
	    origins_known(t));
}

int location_register(struct cachepath *cp)
{
	struct admin_section s = {
	    .name = "origins", .status = origins_status, .metrics = origins_metrics, .arg = cp};

	if (!cp->d->origins)
		return 0; /* neither region-origins nor bucket-origins: nothing changes */
	if (admin_section_add(cp->d, &s) < 0)
		return -ENOSPC;
	if (!origins_is_learning(cp->d->origins))
		return 0;
	if (!cp->svc)
		log_warn("region-origins: no service-credentials to ask where buckets live: "
			 "requests go to origin %s",
			 cp->d->cfg.origin);
	cp->location = (struct route){.name = "location",
				      .arg = cp,
				      .claims = location_claims,
				      .start = location_start,
				      .on_wake = location_on_wake,
				      .end = location_end};
	return exchange_route_add(cp->d, &cp->location);
}

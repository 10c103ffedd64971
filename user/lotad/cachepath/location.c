/* Each bucket's home region (region-origins): a route asked before all others learns it
 * once with GetBucketLocation, signed with the service credentials, while the bucket's
 * requests wait; the exchange core then sends them to that region's origin (origins.h).
 * The origins are asked in turn, the default first: one that does not hold the bucket
 * answers 404, one that does names its region. Also the "origins" part of lotactl status
 * and /metrics. */
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

#define LOCATION_BODY_MAX 4096 /* a GetBucketLocation answer is ~150 bytes */
#define ASK_MAX (HTTP_HEAD_MAX + LOCATION_BODY_MAX)

/* One request's wait for its bucket's location (x->rt_priv). */
struct ask {
	struct cachepath *cp;
	struct exchange *x;
	char bucket[S3_BUCKET_MAX];
	bool is_learner;	 /* this request asks; the others wait for it */
	bool is_waiting;	 /* registered as a waiter */
	bool is_done;		 /* the location is known: reroute */
	bool is_in_claim;	 /* in ask_claim(): its verdict says it, no wake */
	size_t next;		 /* the next origin to ask (origins_at) */
	size_t asked;		 /* origins asked so far */
	struct bufferevent *bev; /* GetBucketLocation in flight */
	struct origin *o;	 /* ... to this origin */
};

static struct origins *table_of(const struct ask *a)
{
	return a->cp->d->origins;
}

static bool location_claims(struct exchange *x, void *arg)
{
	struct cachepath *cp = arg;

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
		exchange_wake(a->x);
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
	struct timeval tv = {.tv_sec = (time_t)a->cp->d->cfg.origin_timeout};

	a->bev = origin_connect(a->o, exchange_base(a->x));
	if (!a->bev)
		return -errno;
	bufferevent_setcb(a->bev, ask_read_cb, NULL, ask_event_cb, a);
	bufferevent_set_timeouts(a->bev, &tv, &tv);
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

/* What the table says decides: reroute (known), ask, or wait for whoever asks. */
static enum route_verdict ask_claim(struct ask *a)
{
	struct event *ev = exchange_wake_event(a->x);

	switch (origins_claim(table_of(a), a->bucket, time(NULL), ev)) {
	case ORIGINS_KNOWN:
		return RT_REROUTE;
	case ORIGINS_WAIT:
		a->is_waiting = true;
		return RT_WAIT;
	case ORIGINS_LEARN:
		break;
	}
	a->is_learner = true;
	a->next = 0;
	a->is_in_claim = true;
	ask_next(a);
	a->is_in_claim = false;
	return a->is_done ? RT_REROUTE : RT_WAIT;
}

static enum route_verdict location_start(struct exchange *x, void *arg)
{
	struct ask *a = calloc(1, sizeof(*a));

	if (!a || !exchange_wake_event(x)) {
		free(a);
		return RT_REROUTE; /* the default origin, as without region-origins */
	}
	a->cp = arg;
	a->x = x;
	snprintf(a->bucket, sizeof(a->bucket), "%s", x->s3.bucket);
	x->rt_priv = a;
	return ask_claim(a);
}

static enum route_verdict location_on_wake(struct exchange *x)
{
	struct ask *a = x->rt_priv;

	if (a->is_done)
		return RT_REROUTE;
	if (a->is_learner)
		return RT_WAIT; /* a wake of our own from before */
	a->is_waiting = false;
	return ask_claim(a); /* the learner answered, or went away */
}

static void location_end(struct exchange *x)
{
	struct ask *a = x->rt_priv;

	if (!a)
		return;
	if (a->is_waiting)
		origins_unwait(table_of(a), a->bucket, exchange_wake_event(x));
	if (a->is_learner)
		origins_abandon(table_of(a), a->bucket);
	ask_drop_bev(a);
	free(a);
	x->rt_priv = NULL;
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
		    "\"timeouts\":%llu}",
		    i == 0 ? "true" : "false", origin_is_down(o) ? "false" : "true",
		    (unsigned long long)__atomic_load_n(&o->n_requests, __ATOMIC_RELAXED),
		    (unsigned long long)__atomic_load_n(&o->n_errors, __ATOMIC_RELAXED),
		    (unsigned long long)__atomic_load_n(&o->n_timeouts, __ATOMIC_RELAXED));
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

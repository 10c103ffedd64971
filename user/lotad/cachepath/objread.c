/* The read route, as DESIGN says: every read is authorized by the origin with the
 * client's own request. When the store holds a version of the key we add
 * If-None-Match: <its ETag> (and If-Unmodified-Since: <its Last-Modified>, so that changed
 * headers show as 412), and a 304 lets us serve the client's range from chunks (hit.c,
 * assemble.c). The client's own conditions are combined with ours, so that the origin's
 * one answer tells both. A 200 is adopted into chunks at the origin's pace (fills.c) and
 * served from them; on first contact a ranged read first learns the version with lotad's
 * own HEAD. Cold readers of one key wait for the first one (the herd). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cachepath/assemble.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/objread.h"
#include "cachepath/request.h"
#include "cachepath/hit.h"
#include "cachepath/known.h"
#include "cachepath/upkeep.h"
#include "cachepath/fills.h"
#include "cachepath/objmeta.h"
#include "cachepath/remote.h"
#include "cachepath/sseccache.h"
#include "cachepath/svcdenied.h"
#include "cachepath/young.h"
#include "chunkmap.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

static struct objread *priv(struct exchange *x)
{
	return x->rt_priv;
}

/* The version this read is about: the store's, or the one lotad's HEAD just told. */
static const struct cache_meta *version(const struct objread *o)
{
	if (o->held)
		return &o->held->meta;
	return o->has_learned ? &o->learned.meta : NULL;
}

static void read_conds(struct exchange *x, struct conds *c)
{
	memset(c, 0, sizeof(*c));
	c->if_match = http_find(&x->req, "if-match");
	c->if_none_match = http_find(&x->req, "if-none-match");
	c->ims = http_find(&x->req, "if-modified-since");
	c->ius = http_find(&x->req, "if-unmodified-since");
}

/* Is the request's Range (if any) one lotad answers exactly as the origin would? The
 * others go to the origin as they came (range.h says which forms are served here). */
static bool is_range_local(const struct exchange *x, uint64_t size)
{
	const struct http_header *h = http_find(&x->req, "range");

	return !h || range_is_served_locally(h->value.p, h->value.n, size);
}

/* The conditions a validation adds to the client's request. If-None-Match confirms the
 * bytes; If-Unmodified-Since with the stored Last-Modified makes the origin answer 412
 * instead of 304 once the object's headers changed while its ETag did not (a copy in
 * place with new metadata, new tags): the origin checks it before If-None-Match. A client
 * If-None-Match of its own cannot be combined with ours (one field): its request goes as
 * it came. With the client's If-Match the origin ignores If-Unmodified-Since, and a client
 * If-Unmodified-Since of its own takes the place of ours. */
static void add_conditions(struct exchange *x, struct objread *o, const struct cache_meta *m)
{
	char lines[EXCHANGE_EXTRA_MAX];
	size_t n;

	if (o->cond.if_none_match)
		return;
	/* The origin answers If-Modified-Since first, and ignores it next to If-None-Match:
	 * with a client If-Match or If-Unmodified-Since beside it, only the origin can say
	 * which one wins. */
	if (o->cond.ims && (o->cond.if_match || o->cond.ius))
		return;
	n = (size_t)snprintf(lines, sizeof(lines), "If-None-Match: %s\r\n", m->etag);
	o->cond.is_ours_ius = m->last_modified[0] && !o->cond.if_match && !o->cond.ius;
	if (o->cond.is_ours_ius && n < sizeof(lines))
		snprintf(lines + n, sizeof(lines) - n, "If-Unmodified-Since: %s\r\n", m->last_modified);
	o->cond.is_ours_inm = exchange_set_extra(x, lines) == 0;
	if (!o->cond.is_ours_inm)
		o->cond.is_ours_ius = false;
}

/* Can the held version answer this request once the origin confirms it? Without service
 * credentials lotad cannot fetch a missing chunk: a 304 would only cost a round trip
 * before the client's request goes again, so it goes as it came now (its 200 refills). */
static bool is_servable_when_confirmed(struct exchange *x, struct objread *o,
				       const struct cache_meta *m)
{
	const struct http_header *h = http_find(&x->req, "range");
	struct range rg = {0, m->size ? m->size - 1 : 0};

	if (o->cp->svc || m->size == 0)
		return true;
	if (h && range_parse(h->value.p, h->value.n, m->size, &rg) == RANGE_UNSATISFIABLE)
		return true;
	return assemble_can_serve(o->cp, m, rg.first, rg.last);
}

/* A full GET of a version known here (known.h) but none of whose bytes are (evicted,
 * or never kept): a validation would cost a round trip before the fill's own. An object
 * of one chunk goes as the client sent it and its 200 is adopted, like a first contact's
 * (one round trip, the origin's bytes once, behind the herd); a bigger one is validated
 * so that its chunks fill in parallel. In a cluster the chunks are their owners'. */
static bool is_cold_whole_read(const struct exchange *x, const struct objread *o,
			       const struct cache_meta *m)
{
	return o->cp->svc && !o->held && !o->redone && !http_find(&x->req, "range") &&
	       m->size <= m->chunk_size && !remote_is_spread(o->cp);
}

static void release_herd(struct objread *o, const struct exchange *x)
{
	struct cache_key k = cachepath_key(x);

	if (o->herd_leader) {
		o->herd_leader = false;
		herd_release(o->cp->herd, &k);
	}
}

static void drop_version(struct objread *o)
{
	cache_object_release(o->held);
	o->held = NULL;
	if (o->has_learned)
		objmeta_free(&o->learned);
	o->has_learned = false;
}

static enum route_verdict ask_head(struct exchange *x, struct objread *o);
static enum route_verdict check_young(struct exchange *x, struct objread *o);

/* By this node's clock: checking a young version any sooner would prove nothing. */
static bool is_past_lm_second(const struct cache_meta *m)
{
	time_t lm;

	return http_parse_date(m->last_modified, strlen(m->last_modified), &lm) < 0 ||
	       time(NULL) > lm;
}

/* What we hold decides the request we send; RT_WAIT: behind another reader of the key,
 * or for lotad's own HEAD. */
static enum route_verdict send_read(struct exchange *x, struct objread *o)
{
	struct cache_key k = cachepath_key(x);
	const struct cache_meta *m;
	int r;

	if (!o->held && !o->has_learned && cache_object_lookup(o->cp->cache, &k, &o->held) < 0) {
		o->held = NULL; /* none of its chunks here: perhaps learnt before (known.h) */
		if (known_get(o->cp->known, &k, &o->learned) == 0)
			o->has_learned = true;
		else
			objmeta_free(&o->learned);
	}
	if (o->held && ssec_is_sealed(&o->held->meta)) {
		/* SSE-C, and no key: only the origin may answer (ssec.c), and its answer is
		 * not stored over the sealed chunks, which may have the same ETag. */
		drop_version(o);
		o->no_cache = true;
		exchange_label(x, "relay");
		return RT_UPSTREAM;
	}
	m = version(o);
	if (m && is_cold_whole_read(x, o, m)) {
		drop_version(o); /* as on first contact: the client's own GET fills it */
		m = NULL;
	}
	if (m && is_range_local(x, m->size) && !is_servable_when_confirmed(x, o, m)) {
		exchange_label(x, "miss"); /* its 200 is adopted; the chunks held are kept */
		return RT_UPSTREAM;
	}
	if (m && is_range_local(x, m->size) && o->cp->svc && !o->is_young_checked &&
	    young_is(o->cp->young, m) && is_past_lm_second(m) &&
	    !svcdenied_has(o->cp->denied, m->id.bucket))
		return check_young(x, o);
	if (m && is_range_local(x, m->size)) {
		add_conditions(x, o, m);
		exchange_label(x, "validate");
		return RT_UPSTREAM;
	}
	if (m) {
		drop_version(o); /* a Range only the origin answers exactly: relayed */
		exchange_label(x, "relay");
		return RT_UPSTREAM;
	}
	if (!o->herd_leader && !o->herd_waiting && !o->herd_woken && exchange_wake_event(x)) {
		o->herd.wake = exchange_wake_event(x);
		r = herd_join(o->cp->herd, &k, &o->herd);
		if (r == 0) {
			o->herd_waiting = true; /* another request is fetching this key */
			return RT_WAIT;
		}
		o->herd_leader = r == 1;
	}
	/* First contact: a full GET's own 200 fills the chunks; a ranged one learns the
	 * version with lotad's HEAD first (its client signed its Range). In a cluster a full
	 * GET does too: its chunks are their owners' to fill, not the stream's to tee here. */
	if ((http_find(&x->req, "range") || remote_is_spread(o->cp)) && o->cp->svc && !o->redone)
		return ask_head(x, o);
	exchange_label(x, "miss");
	return RT_UPSTREAM;
}

/* lotad's HEAD answered: a cacheable version becomes known to the store (its first
 * chunk's fill begins), and the herd behind us may go on. */
static void head_done(void *arg, int status, const struct http_msg *m)
{
	struct exchange *x = arg;
	struct objread *o = priv(x);
	struct cache_key k = cachepath_key(x);
	struct lotad *d = exchange_lotad(x);

	o->head = NULL;
	o->is_head_answered = true;
	if (status == 200 && m->content_length >= d->cfg.min_object_size &&
	    objmeta_from_response(&o->learned, &k, m->content_length, m) == 0) {
		o->learned.meta.chunk_size = d->cfg.chunk_size;
		o->has_learned = true;
		o->is_young_checked = true; /* this HEAD is the latest word on it */
		young_note(o->cp->young, &o->learned.meta, m);
		known_put(o->cp->known, &o->learned.meta);
	} else {
		objmeta_free(&o->learned);
	}
	exchange_wake(x);
}

/* Do two versions' headers (a hit replays them) agree? */
static bool is_same_headers(const struct cache_meta *a, const struct cache_meta *b)
{
	return !strcmp(a->etag, b->etag) && !strcmp(a->last_modified, b->last_modified) &&
	       !strcmp(a->content_type, b->content_type) && a->extra_len == b->extra_len &&
	       !memcmp(a->extra, b->extra, a->extra_len);
}

/* lotad's HEAD of a young version answered: its headers still are the origin's (the mark
 * goes once the origin's clock is past that second), or they changed (the version goes:
 * read_on_wake). Any other answer is left to the read's own request. */
static void young_head_done(void *arg, int status, const struct http_msg *m)
{
	struct exchange *x = arg;
	struct objread *o = priv(x);
	const struct cache_meta *v = version(o);
	struct cache_key k = cachepath_key(x);
	struct objmeta now = {0};

	o->head = NULL;
	o->is_young_answered = true;
	if (!v || !status || status >= 500) {
		/* no word: asked again at the next read */
	} else if (status == 200) {
		/* (another ETag: radosgw compares If-None-Match by the ETag's first 32 digits,
		 * so a 304 would not tell a multipart ETag from a plain one with the same) */
		if (objmeta_from_response(&now, &k, m->content_length, m) == 0 &&
		    is_same_headers(&now.meta, v) && now.meta.size == v->size)
			young_checked(o->cp->young, v, m);
		else
			o->is_young_stale = true; /* not what we hold, or nothing we would hold */
	} else if (status == 404) {
		o->is_young_gone = true; /* lotad's own HEAD is proof enough */
	} else {
		young_forget(o->cp->young, v); /* refused (403): it cannot be checked */
	}
	objmeta_free(&now);
	exchange_wake(x);
}

static enum route_verdict check_young(struct exchange *x, struct objread *o)
{
	struct cache_key k = cachepath_key(x);
	struct fills *f = fills_of(o->cp, exchange_worker(x));

	o->is_young_checked = true;
	if (!f || fills_head(f, &k, young_head_done, x, &o->head) < 0)
		return send_read(x, o); /* unchecked, as before the mark */
	exchange_label(x, "validate");
	return RT_WAIT;
}

static enum route_verdict ask_head(struct exchange *x, struct objread *o)
{
	struct cache_key k = cachepath_key(x);
	struct fills *f = fills_of(o->cp, exchange_worker(x));

	if (!f || fills_head(f, &k, head_done, x, &o->head) < 0) {
		exchange_label(x, "miss");
		return RT_UPSTREAM;
	}
	exchange_label(x, "miss");
	return RT_WAIT;
}

/* The version lotad's HEAD told: its first chunk begins filling, so that other readers
 * find it; then the client's own request, with our conditions. */
static enum route_verdict after_head(struct exchange *x, struct objread *o)
{
	const struct http_header *rh = http_find(&x->req, "range");
	struct range rg = {0, 0};

	if (o->has_learned && o->learned.meta.size &&
	    (!rh || range_parse(rh->value.p, rh->value.n, o->learned.meta.size, &rg) !=
			RANGE_UNSATISFIABLE)) {
		uint64_t from, to;

		if (!rh)
			rg.last = o->learned.meta.size - 1;
		chunkmap_span(o->learned.meta.size, o->learned.meta.chunk_size, rg.first, rg.last,
			      &from, &to);
		remote_want(o->cp, exchange_worker(x), &o->learned.meta, from);
	}
	release_herd(o, x);
	o->herd_woken = true;
	if (!o->has_learned) {
		exchange_label(x, "relay"); /* not cacheable, or unknown: the client's own request */
		return RT_UPSTREAM;
	}
	return send_read(x, o);
}

static bool read_claims(struct exchange *x, void *arg)
{
	return cachepath_is_cacheable_read(x);
}

static enum route_verdict read_start(struct exchange *x, void *arg)
{
	struct objread *o = calloc(1, sizeof(*o));

	if (!o)
		return RT_UPSTREAM; /* relay it: no memory to cache it */
	o->cp = arg;
	o->no_cache = cachepath_has_no_cache(x);
	read_conds(x, &o->cond);
	x->rt_priv = o;
	return send_read(x, o);
}

/* The answer carries a whole cacheable object: its version (chunk size: the store's). */
static int version_of_200(struct exchange *x, struct objread *o, const struct http_msg *m,
			  struct objmeta *om)
{
	struct lotad *d = exchange_lotad(x);
	struct cache_key k = cachepath_key(x);
	int r;

	memset(om, 0, sizeof(*om));
	if (m->body != HTTP_BODY_LENGTH || m->content_length < d->cfg.min_object_size || o->no_cache)
		return -EFBIG;
	r = objmeta_from_response(om, &k, m->content_length, m);
	if (r == -EPERM)
		log_info("cache: %s/%s is an SSE-C object: relayed, never stored", x->s3.bucket, x->s3.key);
	om->meta.chunk_size = d->cfg.chunk_size;
	if (r == 0)
		young_note(o->cp->young, &om->meta, m);
	return r;
}

static void wake_exchange(void *arg)
{
	exchange_wake(arg);
}

/* A 200 to the client's own request: the body is read into chunks at the origin's pace,
 * and the client follows them. Its head goes to the client as the origin sent it. */
static enum route_verdict adopt_200(struct exchange *x, struct objread *o, const struct http_msg *m,
				    const char *raw)
{
	struct fills *f = fills_of(o->cp, exchange_worker(x));
	struct cache_key k = cachepath_key(x);
	struct bufferevent *bev;
	struct fills_spill *spill;
	struct objmeta om;
	int r = version_of_200(x, o, m, &om);

	metric_add(M_cache_misses, 1);
	if (r < 0 || !f) {
		if (r != -EPERM && !o->no_cache)
			herd_note_uncacheable(o->cp->herd, &k);
		metric_add(M_cache_bypasses, 1);
		objmeta_free(&om);
		exchange_label(x, "bypass");
		return RT_RELAY;
	}
	/* The head first: raw points into the connection's input, which the fill drains. */
	evbuffer_add(exchange_client_out(x), raw, m->head_len);
	exchange_flush_client(x); /* the first byte goes before the store's first writes */
	x->resp_head_sent = true; /* from here on a failure cuts the answer */
	bev = exchange_take_upstream(x, m->head_len);
	if (!bev || fills_adopt(f, bev, m->keep_alive, &om.meta, remote_is_remote, wake_exchange, x,
				&spill) < 0) {
		if (bev)
			bufferevent_free(bev);
		objmeta_free(&om);
		x->cut_why = "out of memory";
		return RT_FAIL; /* the head is out: the answer is cut */
	}
	if (assemble_start(x, o->cp, &om.meta, 0, m->content_length - 1, spill) < 0) {
		objmeta_free(&om);
		x->cut_why = "out of memory";
		return RT_FAIL;
	}
	objmeta_free(&om);
	exchange_label(x, "miss");
	return RT_SERVE;
}

/* A 206 to the client's own ranged request (its version was unknown, or changed): a new
 * version the store should hold instead of one that no longer is the origin's. Its first
 * chunk of the range begins filling (lotad's own GET, If-Match). */
static void learn_from_206(struct exchange *x, struct objread *o, const struct http_msg *m)
{
	const struct http_header *h = http_find(m, "content-range");
	const struct cache_meta *held = version(o);
	struct cache_key k = cachepath_key(x);
	struct fills *f = fills_of(o->cp, exchange_worker(x));
	struct content_range cr;
	struct objmeta om;
	const struct http_header *etag = http_find(m, "etag");

	if (!f || !h || !etag || o->no_cache ||
	    range_parse_content_range(h->value.p, h->value.n, &cr) < 0 || !cr.size_known ||
	    !cr.has_range || cr.size < exchange_lotad(x)->cfg.min_object_size)
		return;
	if (held && http_str_eq(&etag->value, held->etag))
		return; /* the one we hold: nothing new */
	if (objmeta_from_response(&om, &k, cr.size, m) == 0) {
		om.meta.chunk_size = exchange_lotad(x)->cfg.chunk_size;
		young_note(o->cp->young, &om.meta, m);
		remote_want(o->cp, exchange_worker(x), &om.meta, cr.first / om.meta.chunk_size);
	}
	objmeta_free(&om);
}

/* Our If-Unmodified-Since failed (no condition of the client's could have): the stored
 * headers are stale, though the bytes (the ETag) may be the same. The version goes (its
 * chunks carry those headers) and the request goes again without ours; its 200 refills. */
static enum route_verdict redo_unconditional(struct exchange *x, struct objread *o)
{
	struct cache_key k = cachepath_key(x);

	cachepath_invalidate(o->cp, &k);
	metric_add(M_cache_stale_metadata, 1);
	log_info("cache: %s/%s changed at the origin since it was cached: fetching it again",
		 x->s3.bucket, x->s3.key);
	o->redone = true;
	o->cond.is_ours_inm = o->cond.is_ours_ius = false;
	exchange_set_extra(x, NULL);
	drop_version(o);
	exchange_label(x, "miss");
	return RT_REDO;
}

/* A new version, but one older than the client's If-Modified-Since, which our
 * If-None-Match hid from the origin: alone, the client's request gets a 304. */
static bool is_not_modified_for_client(const struct objread *o, const struct http_msg *m)
{
	const struct http_header *h = http_find(m, "last-modified");
	time_t since, lm;

	return o->cond.is_ours_inm && o->cond.ims && !o->redone && h &&
	       http_parse_date(o->cond.ims->value.p, o->cond.ims->value.n, &since) == 0 &&
	       http_parse_date(h->value.p, h->value.n, &lm) == 0 && lm <= since;
}

/* The client's request again, as it came. */
static enum route_verdict redo_as_sent(struct exchange *x, struct objread *o)
{
	o->redone = true;
	o->cond.is_ours_inm = o->cond.is_ours_ius = false;
	exchange_set_extra(x, NULL);
	drop_version(o);
	exchange_label(x, "relay");
	return RT_REDO;
}

/* The origin confirmed our version (304 to our If-None-Match, the client's If-Match and
 * If-Unmodified-Since having held): the client's If-Modified-Since, which the origin
 * ignores next to If-None-Match, is ours to judge, against the confirmed Last-Modified. */
static enum route_verdict confirmed(struct exchange *x, struct objread *o, const struct http_msg *m)
{
	const struct cache_meta *v = version(o);
	time_t since, lm;

	if (o->cond.ims && http_parse_date(o->cond.ims->value.p, o->cond.ims->value.n, &since) == 0 &&
	    http_parse_date(v->last_modified, strlen(v->last_modified), &lm) == 0 && lm <= since)
		return hit_not_modified(x, v, m);
	return hit_serve(x, o->cp, v, m, o->held != NULL);
}

static enum route_verdict read_on_head(struct exchange *x, const struct http_msg *m,
				       const char *raw)
{
	struct objread *o = priv(x);
	struct cache_key k = cachepath_key(x);
	enum route_verdict v = RT_RELAY;

	if (!o)
		return RT_RELAY;
	if (m->status == 304 && o->cond.is_ours_inm && version(o)) {
		v = confirmed(x, o, m);
	} else if (m->status == 200 && is_not_modified_for_client(o, m)) {
		v = redo_as_sent(x, o);
	} else if (m->status == 200 && !x->s3.is_head) {
		known_drop(o->cp->known, &k); /* not the version the origin has */
		drop_version(o);
		v = adopt_200(x, o, m, raw);
	} else if (m->status == 412 && o->cond.is_ours_ius && !o->redone) {
		v = redo_unconditional(x, o);
	} else if (m->status == 206 && o->cp->svc) {
		learn_from_206(x, o, m);
	} else if (m->status == 404 && version(o)) {
		struct fills *f = fills_of(o->cp, exchange_worker(x));

		if (f)
			fills_confirm_gone(f, &k);
	}
	release_herd(o, x);
	return v;
}

static enum route_verdict read_on_wake(struct exchange *x)
{
	struct objread *o = priv(x);

	if (!o)
		return RT_WAIT;
	if (o->herd_waiting) {
		o->herd_waiting = false;
		o->herd_woken = true; /* do not queue again */
		herd_leave(&o->herd);
		return send_read(x, o);
	}
	if (o->is_head_answered) {
		o->is_head_answered = false;
		return after_head(x, o);
	}
	if (o->is_young_answered) {
		o->is_young_answered = false;
		if (o->is_young_stale || o->is_young_gone) {
			struct cache_key k = cachepath_key(x);

			cachepath_invalidate(o->cp, &k);
			if (o->is_young_stale)
				metric_add(M_cache_stale_metadata, 1);
			log_info(
			    "cache: %s/%s %s at the origin in its Last-Modified second (lotad's "
			    "HEAD): dropped",
			    x->s3.bucket, x->s3.key, o->is_young_stale ? "changed" : "deleted");
			drop_version(o);
		}
		return send_read(x, o);
	}
	return RT_WAIT;
}

/* Our validation went out: what its 304 would serve is made ready meanwhile. */
static void read_on_sent(struct exchange *x)
{
	struct objread *o = priv(x);

	if (o && o->cond.is_ours_inm && o->held)
		hit_prepare(x, o->cp, &o->held->meta);
}

static void read_end(struct exchange *x)
{
	struct objread *o = priv(x);

	if (!o)
		return;
	fills_head_cancel(o->head);
	if (o->herd_waiting)
		herd_leave(&o->herd);
	release_herd(o, x);
	drop_version(o);
	free(o);
	x->rt_priv = NULL;
}

void objread_route(struct cachepath *cp, struct route *rt)
{
	*rt = (struct route){
		.name = "miss",
		.arg = cp,
		.claims = read_claims,
		.start = read_start,
		.on_sent = read_on_sent,
		.on_head = read_on_head,
		.on_wake = read_on_wake,
		.end = read_end,
	};
}

/* The read route, as DESIGN says: every read is authorized by the origin with the
 * client's own request; when we hold the object (committed, or being filled) we add
 * If-None-Match with its ETag, and a 304 lets us serve our bytes (hit.c). A 200 is
 * relayed and teed into a new entry; cold readers of one key wait for the first one's
 * answer (the herd) and then follow its fill. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cachepath/cachepath-int.h"
#include "cachepath/committer.h"
#include "cachepath/objmeta.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

static struct objread *priv(struct exchange *x)
{
	return x->rt_priv;
}

/* The conditions a validation adds to the client's request. If-None-Match confirms the
 * bytes; If-Unmodified-Since with the stored Last-Modified makes the origin answer 412
 * instead of 304 once the object's metadata changed while its ETag did not (a copy in
 * place with new metadata, new tags): the origin checks it before If-None-Match, and a
 * 304 then also means the stored headers are still the origin's. */
static void set_conditions(struct exchange *x, struct objread *o, const struct cache_meta *meta)
{
	char lines[EXCHANGE_EXTRA_MAX];
	size_t n;

	snprintf(o->inm, sizeof(o->inm), "%s", meta->etag);
	n = (size_t)snprintf(lines, sizeof(lines), "If-None-Match: %s\r\n", meta->etag);
	if (meta->last_modified[0] && n < sizeof(lines))
		snprintf(lines + n, sizeof(lines) - n, "If-Unmodified-Since: %s\r\n",
			 meta->last_modified);
	if (exchange_set_extra(x, lines) < 0)
		o->inm[0] = '\0';
}

/* Cross-thread wake-up from the cache (fill progress). */
static void fill_wake(void *arg)
{
	event_active(arg, EV_READ, 0);
}

/* Is the request's Range (if any) one lotad answers exactly as the origin would? The
 * others go to the origin as they came (range.h says which forms are served here). */
static bool is_range_local(const struct exchange *x, uint64_t size)
{
	const struct http_header *h = http_find(&x->req, "range");

	return !h || range_is_served_locally(h->value.p, h->value.n, size);
}

/* We hold the key but will not serve this request from it. */
static void drop_held(struct objread *o)
{
	cache_obj_close(o->obj);
	o->obj = NULL;
	cache_follower_close(o->fl);
	o->fl = NULL;
}

static void release_herd(struct objread *o, const struct cache_key *k)
{
	if (o->herd_leader) {
		o->herd_leader = false;
		herd_release(o->cp->herd, k);
	}
}

/* What we hold for this key decides the request we send: with an ETag to confirm, or
 * the client's request as it is. RT_WAIT: behind another request for the key. */
static enum route_verdict send_read(struct exchange *x, struct objread *o)
{
	struct cache *cache = o->cp->cache;
	struct cache_key k = cachepath_key(x);
	struct event *ev = exchange_wake_event(x);
	bool is_relayed = false;

	/* A running fill first: it only runs once the origin sent a new 200, so it holds a
	 * newer version than a committed entry it will replace. */
	if (ev && cache_fill_follow(cache, &k, fill_wake, ev, &o->fl) == 0) {
		if (is_range_local(x, cache_follower_meta(o->fl)->size))
			set_conditions(x, o, cache_follower_meta(o->fl));
		else
			is_relayed = true;
	} else if (cache_lookup(cache, &k, &o->obj) == 0) {
		if (is_range_local(x, o->obj->meta.size))
			set_conditions(x, o, &o->obj->meta);
		else
			is_relayed = true;
	} else if (ev && !o->herd_leader && !o->herd_waiting && !o->herd_woken) {
		int r;

		o->herd.wake = ev;
		r = herd_join(o->cp->herd, &k, &o->herd);
		if (r == 0) {
			/* Another request is fetching this key: wait for its answer. */
			o->herd_waiting = true;
			return RT_WAIT;
		}
		o->herd_leader = r == 1;
	}
	if (is_relayed)
		drop_held(o);
	exchange_label(x, is_relayed ? "relay" : o->inm[0] ? "validate" : "miss");
	return RT_UPSTREAM;
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
	x->rt_priv = o;
	exchange_label(x, "miss");
	return send_read(x, o);
}

/* A 200 for a GET: start the one fill of this key, if the object qualifies. */
static void begin_fill(struct exchange *x, struct objread *o, const struct http_msg *m)
{
	struct lotad *d = exchange_lotad(x);
	struct cache_key k = cachepath_key(x);
	struct objmeta om;
	int r;

	if (m->body != HTTP_BODY_LENGTH || m->content_length < d->cfg.min_object_size || o->no_cache) {
		if (!o->no_cache)
			herd_note_uncacheable(o->cp->herd, &k);
		metric_add(M_cache_bypasses, 1);
		exchange_label(x, "bypass");
		return;
	}
	r = objmeta_from_response(&om, &k, m->content_length, m);
	if (r == 0)
		r = cache_fill_begin(o->cp->cache, &om.meta, &o->fill);
	if (r == 0)
		metric_add(M_cache_fills_started, 1);
	else if (r == -EPERM)
		log_info("cache: %s/%s is an SSE-C object: relayed, never stored", x->s3.bucket, x->s3.key);
	else if (r != -EEXIST)
		log_info("cache: not caching %s/%s: %s", x->s3.bucket, x->s3.key, strerror(-r));
	objmeta_free(&om);
}

/* Our If-Unmodified-Since failed (the client sent no condition of its own): the stored
 * headers are stale. Ask again without ours; the 200 refills the entry. */
static enum route_verdict redo_unconditional(struct exchange *x, struct objread *o)
{
	metric_add(M_cache_stale_metadata, 1);
	log_info("cache: %s/%s changed at the origin since it was cached: fetching it again",
		 x->s3.bucket, x->s3.key);
	o->redone = true;
	o->inm[0] = '\0';
	exchange_set_extra(x, NULL);
	drop_held(o);
	exchange_label(x, "miss");
	return RT_REDO;
}

static enum route_verdict read_on_head(struct exchange *x, const struct http_msg *m,
				       const char *raw)
{
	struct objread *o = priv(x);
	struct cache_key k = cachepath_key(x);
	enum route_verdict v = RT_RELAY;

	if (!o)
		return RT_RELAY;
	if (m->status == 304 && o->inm[0] && (o->obj || o->fl)) {
		v = hit_serve(x, o, m);
	} else if (m->status == 200) {
		metric_add(M_cache_misses, 1);
		drop_held(o);
		exchange_label(x, "miss");
		begin_fill(x, o, m);
	} else if (m->status == 412 && o->inm[0] && !o->redone) {
		v = redo_unconditional(x, o);
	} else if (m->status == 404 && (o->obj || o->fl)) {
		/* Only lotad's own request may drop an entry: a 404 to someone else's request
		 * (a mis-addressed one, say) proves nothing about the object. */
		if (o->cp->bgfill)
			bgfill_confirm_gone(o->cp->bgfill, &k);
	} else if (m->status == 206 && o->cp->bgfill) {
		bgfill_request(o->cp->bgfill, &k, m, NULL);
	}
	release_herd(o, &k);
	return v;
}

/* A write into the fill failed: the client keeps getting its bytes, nothing is cached. */
static void abandon_fill(struct exchange *x, struct objread *o, int r)
{
	log_warn("cache: fill of %s/%s abandoned: %s", x->s3.bucket, x->s3.key, strerror(-r));
	cache_fill_abort(o->fill, r);
	o->fill = NULL;
	metric_add(M_cache_fills_aborted, 1);
	if (r == -ENOSPC)
		cachepath_wake_evict(o->cp);
}

static void read_on_body(struct exchange *x, struct evbuffer *src, size_t n)
{
	struct objread *o = priv(x);
	struct evbuffer_iovec v[32];
	int nv, r = 0;

	if (!o || !o->fill)
		return;
	nv = evbuffer_peek(src, (ssize_t)n, NULL, v, 32);
	for (int i = 0; i < nv && i < 32 && n && r == 0; i++) {
		size_t len = v[i].iov_len < n ? v[i].iov_len : n;

		r = cache_fill_write(o->fill, v[i].iov_base, len);
		n -= len;
	}
	if (r == 0 && n)
		r = -EIO; /* more than 32 chains at once cannot happen with our read sizes */
	if (r < 0)
		abandon_fill(x, o, r);
}

/* The splice path's tee: the n bytes now in pipe pr are duplicated into the empty pipe
 * tw and spliced from tr into the fill's file, by reference. The commit thread reads them
 * back for the CRC (from the page cache) and the fill wakes its followers. */
static void read_on_body_pipe(struct exchange *x, int pr, int tr, int tw, size_t n)
{
	struct objread *o = priv(x);
	uint64_t off;
	size_t done = 0;
	int fd, r = 0;

	if (!o || !o->fill)
		return; /* nothing to keep: the bytes only go to the client */
	if (tee(pr, tw, n, 0) != (ssize_t)n)
		r = errno ? -errno : -EIO;
	if (r == 0)
		r = cache_fill_write_pos(o->fill, &fd, &off);
	while (r == 0 && done < n) {
		loff_t at = (loff_t)(off + done);
		ssize_t w = splice(tr, NULL, fd, &at, n - done, SPLICE_F_MOVE);

		if (w <= 0)
			r = w < 0 ? -errno : -EIO;
		else
			done += (size_t)w;
	}
	if (r == 0)
		r = cache_fill_advance_nocrc(o->fill, n);
	if (r < 0)
		abandon_fill(x, o, r);
}

static void read_on_body_end(struct exchange *x)
{
	struct objread *o = priv(x);
	char label[S3_BUCKET_MAX + 256];

	if (!o || !o->fill)
		return;
	snprintf(label, sizeof(label), "%s/%s", x->s3.bucket, x->s3.key);
	committer_commit(o->cp->committer, o->fill, label);
	o->fill = NULL;
}

static enum route_verdict read_on_wake(struct exchange *x)
{
	struct objread *o = priv(x);

	if (!o || !o->herd_waiting)
		return RT_WAIT;
	o->herd_waiting = false;
	o->herd_woken = true; /* do not queue again: go to the origin */
	herd_leave(&o->herd);
	return send_read(x, o);
}

static void read_end(struct exchange *x)
{
	struct objread *o = priv(x);
	struct cache_key k = cachepath_key(x);

	if (!o)
		return;
	if (o->fill) {
		cache_fill_abort(o->fill, -ECONNRESET);
		metric_add(M_cache_fills_aborted, 1);
	}
	if (o->herd_waiting)
		herd_leave(&o->herd);
	release_herd(o, &k);
	cache_follower_close(o->fl); /* after it, the fill never wakes us again */
	cache_obj_close(o->obj);
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
		.on_head = read_on_head,
		.on_body = read_on_body,
		.on_body_pipe = read_on_body_pipe,
		.on_body_end = read_on_body_end,
		.on_wake = read_on_wake,
		.end = read_end,
	};
}

/* Object reads through the cache, as DESIGN says: every read is authorized by the
 * origin with the client's own request; when we hold the object (committed, or being
 * filled) we add If-None-Match with its ETag, and a 304 lets us serve our bytes. A 200
 * is streamed to the client and teed into a new entry; a 404 drops the entry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cachepath/bgfill.h"
#include "committer.h"
#include "cache.h"
#include "exchange/conn.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "cachepath/objmeta.h"
#include "range.h"

static struct cache_key exchange_key(const struct exchange *x)
{
	return (struct cache_key){x->s3.bucket, x->s3.key, x->s3.version_id};
}

/* Request headers that make a read unsuitable for the cache: the client's own
 * conditions (we would have to evaluate them against the origin's answer to ours) and
 * SSE-C (the origin must see and check the customer key for every read), in any spelling
 * the origin accepts; and a second Range field, which the origin may read otherwise. */
static bool has_bypass_header(const struct http_msg *m)
{
	static const char *const names[] = {"if-match", "if-none-match", "if-modified-since",
					    "if-unmodified-since", "if-range"};
	int ranges = 0;

	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http_str *n = &m->headers[i].name;

		for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++)
			if (http_name_eq(n, names[j]))
				return true;
		if (http_name_has_prefix(n, OBJMETA_SSEC_PREFIX))
			return true;
		if (http_name_eq(n, "range") && ++ranges > 1)
			return true;
	}
	return false;
}

static void cache_control(const struct http_msg *m, bool *no_store, bool *no_cache)
{
	const struct http_header *h = http_find(m, "cache-control");

	*no_store = h && http_has_token(&h->value, "no-store");
	*no_cache = h && http_has_token(&h->value, "no-cache");
}

/* The conditions a validation adds to the client's request. If-None-Match confirms the
 * bytes; If-Unmodified-Since with the stored Last-Modified makes the origin answer 412
 * instead of 304 once the object's metadata changed while its ETag did not (a copy in
 * place with new metadata, new tags): the origin checks it before If-None-Match, and a
 * 304 then also means the stored headers are still the origin's. */
static void set_inm(struct exchange *x, const struct cache_meta *meta)
{
	size_t n;

	snprintf(x->inm, sizeof(x->inm), "%s", meta->etag);
	n = (size_t)snprintf(x->extra_hdr, sizeof(x->extra_hdr), "If-None-Match: %s\r\n", meta->etag);
	if (meta->last_modified[0] && n < sizeof(x->extra_hdr))
		snprintf(x->extra_hdr + n, sizeof(x->extra_hdr) - n, "If-Unmodified-Since: %s\r\n",
			 meta->last_modified);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg);
static void prestage_done(struct conn *c);

/* Cross-thread wake-up from the cache (fill progress) or the herd table. */
static void fill_wake(void *arg)
{
	struct event *ev = arg;

	event_active(ev, EV_READ, 0);
}

/* Is the request's Range (if any) one lotad answers exactly as the origin would? The
 * others go to the origin as they came (range.h says which forms are served here). */
static bool is_range_local(const struct exchange *x, uint64_t size)
{
	const struct http_header *h = http_find(&x->req, "range");

	return !h || range_is_served_locally(h->value.p, h->value.n, size);
}

/* We hold the key but will not serve this request from it. */
static void drop_held(struct exchange *x)
{
	cache_obj_close(x->obj);
	x->obj = NULL;
	cache_follower_close(x->fl);
	x->fl = NULL;
	x->route = "relay";
}

/* What we hold for this key decides the request we send: with an ETag to confirm, or
 * the client's request as it is. */
static void send_read(struct conn *c)
{
	struct exchange *x = c->x;
	struct cache *cache = c->w->d->cache;
	struct cache_key k = exchange_key(x);

	/* A running fill first: it only runs once the origin sent a new 200, so it holds a
	 * newer version than a committed entry it will replace. */
	if (cache_fill_follow(cache, &k, fill_wake, x->ev, &x->fl) == 0) {
		if (is_range_local(x, cache_follower_meta(x->fl)->size))
			set_inm(x, cache_follower_meta(x->fl));
		else
			drop_held(x);
	} else if (cache_lookup(cache, &k, &x->obj) == 0) {
		if (is_range_local(x, x->obj->meta.size))
			set_inm(x, &x->obj->meta);
		else
			drop_held(x);
	} else if (!x->herd_leader && !x->herd_waiting && !x->herd_woken) {
		int r = herd_join(&k, &x->herd);

		if (r == 0) {
			/* Another request is fetching this key: wait for its answer. */
			x->herd_waiting = true;
			return;
		}
		x->herd_leader = r == 1;
	}
	if (!x->route)
		x->route = x->inm[0] ? "validate" : "miss";
	if (exchange_send_origin(c, x->extra_hdr[0] ? x->extra_hdr : NULL) < 0)
		return;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct exchange *x = c->x;

	if (!x)
		return;
	if (x->herd_waiting) {
		x->herd_waiting = false;
		x->herd_woken = true; /* do not queue again: go to the origin */
		herd_leave(&x->herd);
		send_read(c);
		return;
	}
	if (x->prestage_waiting) {
		prestage_done(c);
		return;
	}
	if (x->serving_file)
		hit_pump(c);
}

/* HEAD with Range: bytes=0-0 asks us to cache the object before we answer. */
static bool is_prestage(const struct exchange *x)
{
	const struct http_header *h = http_find(&x->req, "range");

	return x->s3.is_head && h && http_str_eq(&h->value, "bytes=0-0");
}

static bool is_cached(struct conn *c, const struct cache_key *k)
{
	struct cache_obj *o;

	if (cache_lookup(c->w->d->cache, k, &o) < 0)
		return false;
	cache_obj_close(o);
	return true;
}

/* The origin authorized the HEAD: hold its answer until the object is cached. */
static enum objread_verdict prestage_response(struct conn *c, const char *buf, const struct http_msg *m)
{
	struct exchange *x = c->x;
	struct cache_key k = exchange_key(x);
	int r;

	if (m->status != 200 && m->status != 206)
		return OBJREAD_RELAY;
	r = bgfill_request(c->w->d->bgfill, &k, m, &x->bgw);
	if (r == 1 && !is_cached(c, &k))
		return OBJREAD_RELAY; /* under min-object-size, or no size: nothing to stage */
	x->held_head = malloc(m->head_len);
	if (!x->held_head) {
		bgfill_unwatch(&x->bgw);
		return OBJREAD_RELAY;
	}
	memcpy(x->held_head, buf, m->head_len);
	x->held_len = m->head_len;
	x->prestage_waiting = true;
	if (r != 0) {
		/* Cached already, or the job could not be queued: say so now, in the header
		 * lotactl prestage checks, rather than with a plain answer that hides it. */
		x->bgw.result = r > 0 ? 0 : r;
		event_active(x->ev, EV_READ, 0);
	}
	return OBJREAD_TAKEN;
}

static void prestage_done(struct conn *c)
{
	struct exchange *x = c->x;
	struct evbuffer *out = bufferevent_get_output(c->cbev);

	x->prestage_waiting = false;
	evbuffer_add(out, x->held_head, x->held_len - 2);
	evbuffer_add_printf(out, "x-lota-prestage: %s\r\n\r\n", x->bgw.result == 0 ? "cached" : "failed");
	if (x->bgw.result < 0)
		log_warn("pre-stage of %s/%s: %s", x->s3.bucket, x->s3.key, strerror(-x->bgw.result));
	x->resp_done = true;
	exchange_finish(c);
}

void objread_start(struct conn *c)
{
	struct exchange *x = c->x;
	bool no_store, no_cache;

	cache_control(&x->req, &no_store, &no_cache);
	/* Reads the cache would serve go to the key's owner node, if that is another node. */
	if (!no_store && !x->s3.part_number && !has_bypass_header(&x->req) &&
	    (!x->s3.is_head || is_prestage(x)) && peerfwd_try(c))
		return;
	if (is_prestage(x) && !no_store && c->w->d->bgfill) {
		x->is_cacheable = x->prestage = true;
		x->ev = event_new(c->w->base, -1, 0, wake_cb, c);
		if (x->ev) {
			x->bgw.ev = x->ev;
			exchange_relay(c, "prestage");
			return;
		}
	}
	if (no_store || x->s3.is_head || x->s3.part_number || has_bypass_header(&x->req)) {
		metric_add(M_cache_bypasses, 1);
		exchange_relay(c, "bypass");
		return;
	}
	x->ev = event_new(c->w->base, -1, 0, wake_cb, c);
	if (!x->ev) {
		exchange_relay(c, "relay");
		return;
	}
	x->herd.wake = x->ev;
	x->no_cache = no_cache;
	x->is_cacheable = true;
	send_read(c);
}

/* A 200 for a GET: start the one fill of this key, if the object qualifies. */
static void begin_fill(struct conn *c, const struct http_msg *m)
{
	struct exchange *x = c->x;
	struct lotad *d = c->w->d;
	struct cache_key k = exchange_key(x);
	struct objmeta om;
	int r;

	if (m->body != HTTP_BODY_LENGTH || m->content_length < d->cfg.min_object_size || x->no_cache) {
		if (!x->no_cache)
			herd_note_uncacheable(&k);
		metric_add(M_cache_bypasses, 1);
		x->route = "bypass";
		return;
	}
	r = objmeta_from_response(&om, &k, m->content_length, m);
	if (r == 0)
		r = cache_fill_begin(d->cache, &om.meta, &x->fill);
	if (r == 0)
		metric_add(M_cache_fills_started, 1);
	else if (r == -EPERM)
		log_info("cache: %s/%s is an SSE-C object: relayed, never stored", x->s3.bucket, x->s3.key);
	else if (r != -EEXIST)
		log_info("cache: not caching %s/%s: %s", x->s3.bucket, x->s3.key, strerror(-r));
	objmeta_free(&om);
}

static void release_herd(struct exchange *x)
{
	if (x->herd_leader) {
		struct cache_key k = exchange_key(x);

		x->herd_leader = false;
		herd_release(&k);
	}
}

enum objread_verdict objread_response(struct conn *c, const char *buf, const struct http_msg *m)
{
	struct exchange *x = c->x;
	struct cache_key k = exchange_key(x);
	enum objread_verdict r = OBJREAD_RELAY;

	if (x->prestage)
		return prestage_response(c, buf, m);
	if (m->status == 304 && x->inm[0] && (x->obj || x->fl)) {
		/* The 304 answers our If-None-Match, not the client's: if our copy cannot be
		 * served, the client must not see it either. */
		if (hit_serve(c, m) < 0) {
			log_warn("cache: %s/%s: cannot serve the cached copy", x->s3.bucket, x->s3.key);
			release_herd(x);
			return OBJREAD_UNSERVABLE;
		}
		r = OBJREAD_TAKEN;
	} else if (m->status == 200) {
		metric_add(M_cache_misses, 1);
		cache_obj_close(x->obj);
		x->obj = NULL;
		cache_follower_close(x->fl);
		x->fl = NULL;
		begin_fill(c, m);
	} else if (m->status == 412 && x->inm[0] && !x->redone) {
		/* Our If-Unmodified-Since failed (the client sent no condition of its own): the
		 * stored headers are stale. Ask again without ours; the 200 refills the entry. */
		metric_add(M_cache_stale_metadata, 1);
		log_info("cache: %s/%s changed at the origin since it was cached: fetching it again",
			 x->s3.bucket, x->s3.key);
		release_herd(x);
		return OBJREAD_REDO;
	} else if (m->status == 404 && (x->obj || x->fl)) {
		/* Only lotad's own request may drop an entry: a 404 to someone else's request
		 * (a mis-addressed one, say) proves nothing about the object. */
		if (c->w->d->bgfill)
			bgfill_confirm_gone(c->w->d->bgfill, &k);
	} else if (m->status == 206 && c->w->d->bgfill) {
		bgfill_request(c->w->d->bgfill, &k, m, NULL);
	}
	release_herd(x);
	return r;
}

void objread_redo(struct conn *c)
{
	struct exchange *x = c->x;

	x->redone = true;
	x->inm[0] = '\0';
	x->extra_hdr[0] = '\0';
	cache_obj_close(x->obj);
	x->obj = NULL;
	cache_follower_close(x->fl);
	x->fl = NULL;
	x->route = "miss";
}

/* A write into the fill failed: the client keeps getting its bytes, nothing is cached. */
static void abandon_fill(struct conn *c, int r)
{
	struct exchange *x = c->x;

	log_warn("cache: fill of %s/%s abandoned: %s", x->s3.bucket, x->s3.key, strerror(-r));
	cache_fill_abort(x->fill, r);
	x->fill = NULL;
	metric_add(M_cache_fills_aborted, 1);
	if (r == -ENOSPC)
		control_wake_evict(c->w->d);
}

void objread_tee(struct conn *c, struct evbuffer *src, size_t n)
{
	struct exchange *x = c->x;
	struct evbuffer_iovec v[32];
	int nv = evbuffer_peek(src, (ssize_t)n, NULL, v, 32);
	size_t left = n;
	int r = 0;

	for (int i = 0; i < nv && i < 32 && left && r == 0; i++) {
		size_t len = v[i].iov_len < left ? v[i].iov_len : left;

		r = cache_fill_write(x->fill, v[i].iov_base, len);
		left -= len;
	}
	if (r == 0 && left)
		r = -EIO; /* more than 32 chains at once cannot happen with our read sizes */
	if (r < 0)
		abandon_fill(c, r);
}

void objread_body_done(struct conn *c, bool ok)
{
	struct exchange *x = c->x;
	char label[S3_BUCKET_MAX + 256];

	if (!x->fill)
		return;
	if (!ok) {
		cache_fill_abort(x->fill, -ECONNRESET);
		metric_add(M_cache_fills_aborted, 1);
	} else {
		snprintf(label, sizeof(label), "%s/%s", x->s3.bucket, x->s3.key);
		committer_commit(x->fill, label);
	}
	x->fill = NULL;
}

void objread_cleanup(struct exchange *x)
{
	if (x->fill) {
		cache_fill_abort(x->fill, -ECONNRESET);
		metric_add(M_cache_fills_aborted, 1);
		x->fill = NULL;
	}
	if (x->herd_waiting)
		herd_leave(&x->herd);
	if (x->prestage_waiting)
		bgfill_unwatch(&x->bgw);
	free(x->held_head);
	x->held_head = NULL;
	release_herd(x);
	cache_follower_close(x->fl);
	x->fl = NULL;
	cache_obj_close(x->obj);
	x->obj = NULL;
	if (x->ev)
		event_free(x->ev);
	x->ev = NULL;
	if (x->seg)
		evbuffer_file_segment_free(x->seg);
	x->seg = NULL;
}

/* The splice path's tee (splice.c): the n bytes now in pipe pr are duplicated into the
 * empty pipe tw and spliced from tr into the fill's file, by reference. The fill reads
 * them back for the CRC (from the page cache) and wakes its followers. */
void objread_tee_pipe(struct conn *c, int pr, int tr, int tw, size_t n)
{
	struct exchange *x = c->x;
	uint64_t off;
	size_t done = 0;
	int fd, r = 0;

	if (tee(pr, tw, n, 0) != (ssize_t)n)
		r = errno ? -errno : -EIO;
	if (r == 0)
		r = cache_fill_write_pos(x->fill, &fd, &off);
	while (r == 0 && done < n) {
		loff_t o = (loff_t)(off + done);
		ssize_t w = splice(tr, NULL, fd, &o, n - done, SPLICE_F_MOVE);

		if (w <= 0)
			r = w < 0 ? -errno : -EIO;
		else
			done += (size_t)w;
	}
	if (r == 0)
		r = cache_fill_advance_nocrc(x->fill, n); /* the committer computes the CRC */
	if (r < 0)
		abandon_fill(c, r);
}

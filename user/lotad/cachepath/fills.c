/* The fills of one worker (fills.h): fetches of single chunks with lotad's own ranged
 * GETs, and the worker's table of fills; adopted 200s are in fillstream.c and lotad's
 * HEADs in fillhead.c. Everything here runs on the worker's thread; the store (cache/)
 * wakes the readers that follow these fills. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cache.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/upkeep.h"
#include "cachepath/request.h"
#include "cachepath/committer.h"
#include "cachepath/fills.h"
#include "cachepath/fills-int.h"
#include "cachepath/location.h"
#include "cachepath/objmeta.h"
#include "cachepath/svccreds.h"
#include "cachepath/svcdenied.h"
#include "chunkmap.h"
#include "exchange/origin.h"
#include "exchange/originpool.h"
#include "exchange/origins.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

/* A chunk fetched with a ranged GET of our own. */
struct fetch {
	struct fills *f;
	char *bucket, *key, *version, *etag;
	uint64_t size, index, first, len; /* the chunk: bytes [first, first + len) */
	uint64_t done;			  /* body bytes written into the fill */
	struct cache_fill *fill;
	struct bufferevent *bev;
	struct event *timer; /* the back-off before the next attempt */
	unsigned attempt;
	time_t started;
	bool is_head_done, is_running;
	bool is_reused;	    /* bev came idle from the pool: the origin may have closed it */
	bool is_keep_alive; /* the answer leaves bev fit for another request */
	int lowat;	    /* SO_RCVLOWAT set on bev's socket */
	enum fills_reason why;
	struct origin *o;	     /* the origin bev goes to */
	struct location_wait *moved; /* the bucket lives elsewhere: learning where */
	bool is_moved;		     /* ... once per fetch */
	struct fetch *next;
};

static void fetch_start(struct fetch *ft);
static void kick(struct fills *f);


int fills_new(struct cachepath *cp, struct worker *w, struct fills **out)
{
	struct fills *f = calloc(1, sizeof(*f));

	if (f) {
		f->owns_pool = !w->pool;
		f->pool = w->pool ? w->pool : originpool_new(w->base);
	}
	if (!f || !f->pool) {
		free(f);
		return -ENOMEM;
	}
	f->cp = cp;
	f->w = w;
	*out = f;
	return 0;
}

struct fills *fills_of(struct cachepath *cp, struct worker *w)
{
	if (w->id < 0 || w->id >= CACHEPATH_WORKERS_MAX)
		return NULL;
	if (!cp->fills[w->id] && fills_new(cp, w, &cp->fills[w->id]) < 0)
		cp->fills[w->id] = NULL;
	return cp->fills[w->id];
}

/* -- fetches ------------------------------------------------------------------------ */

static void fetch_free(struct fetch *ft)
{
	if (ft->bev)
		bufferevent_free(ft->bev);
	if (ft->timer)
		event_free(ft->timer);
	location_wait_cancel(ft->moved);
	free(ft->bucket);
	free(ft->key);
	free(ft->version);
	free(ft->etag);
	free(ft);
}

static void unlink_fetch(struct fills *f, struct fetch *ft)
{
	for (struct fetch **pp = &f->fetches; *pp; pp = &(*pp)->next) {
		if (*pp == ft) {
			*pp = ft->next;
			break;
		}
	}
	if (ft->is_running)
		f->nrunning--;
}

/* The fetch is over: committed (r == 0) or not (its readers see r and resume). */
static void fetch_end(struct fetch *ft, int r)
{
	struct fills *f = ft->f;
	char label[CACHE_BUCKET_MAX + CACHE_KEY_MAX + 32];

	snprintf(label, sizeof(label), "%s/%s chunk %llu", ft->bucket, ft->key,
		 (unsigned long long)ft->index);
	if (r == 0) {
		committer_commit(f->cp->committer, ft->fill, label);
	} else {
		cache_fill_abort(ft->fill, r);
		metric_add(M_cache_fills_aborted, 1);
		if (r != -ESTALE)
			log_warn_every(LOG_EVERY_SECOND, "cache: fill of %s abandoned: %s", label,
				       strerror(-r));
		if (r == -ENOSPC)
			cachepath_wake_evict(f->cp);
	}
	ft->fill = NULL;
	unlink_fetch(f, ft);
	fetch_free(ft);
	kick(f);
}

/* The version we fetch is not the origin's any more (412 to If-Match, or 404): our own
 * request proves it, so every chunk of it goes. */
static void version_gone(struct fetch *ft, int status)
{
	struct cache_key k = {ft->bucket, ft->key, ft->version};

	log_info("cache: %s/%s changed at the origin (%d to lotad's If-Match %s): dropped", ft->bucket,
		 ft->key, status, ft->etag);
	cachepath_invalidate(ft->f->cp, &k);
	fetch_end(ft, -ESTALE);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	fetch_start(arg);
}

uint64_t fills_backoff_ms(unsigned attempt)
{
	uint64_t cap = (uint64_t)FILLS_RETRY_BASE_MS << (attempt < 16 ? attempt : 16);

	if (cap > FILLS_RETRY_CAP_MS)
		cap = FILLS_RETRY_CAP_MS;
	return (uint64_t)random() % (cap + 1);
}

/* Again after a random delay (full jitter), within bounds. */
static void fetch_retry(struct fetch *ft, int err)
{
	struct timeval tv;
	uint64_t ms;

	if (ft->bev)
		bufferevent_free(ft->bev);
	ft->bev = NULL;
	if (ft->attempt >= FILLS_RETRY_MAX || time(NULL) - ft->started > FILLS_RETRY_WINDOW_S) {
		fetch_end(ft, err);
		return;
	}
	ms = fills_backoff_ms(ft->attempt);
	tv = (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	ft->attempt++;
	metric_add(M_cache_fill_retries, 1);
	if (!ft->timer)
		ft->timer = event_new(ft->f->w->base, -1, 0, retry_cb, ft);
	if (!ft->timer || event_add(ft->timer, &tv) < 0)
		fetch_end(ft, err);
}

static void fetch_relocated(void *arg)
{
	struct fetch *ft = arg;

	ft->moved = NULL;
	fetch_start(ft);
}

/* The bucket lives elsewhere (a 301, or a 400 naming another region): once per fetch,
 * its location is learned again (location.c) and the fetch goes again to the origin then
 * known. True if the answer is taken care of (or more of it is awaited). */
static bool fetch_moved(struct fetch *ft, const struct http_msg *m, const char *body, size_t n)
{
	if (ft->is_moved)
		return false;
	switch (location_redirected(ft->f->cp, ft->f->w->base, ft->bucket, ft->o, m, body, n,
				    fetch_relocated, ft, &ft->moved)) {
	case LOCATION_STAY:
		return false;
	case LOCATION_MORE:
		return true;
	case LOCATION_MOVED:
		break;
	}
	ft->is_moved = true;
	bufferevent_free(ft->bev);
	ft->bev = NULL;
	return true;
}

/* The answer's head: 206 of our range goes on; what else it may be decides the rest. */
static int fetch_head(struct fetch *ft, struct evbuffer *in)
{
	static const struct http_str get = {"GET", 3};
	size_t len = evbuffer_get_length(in), want = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	struct http_msg *m = malloc(sizeof(*m));
	const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)want);
	const struct http_header *h;
	struct content_range cr;
	int r;

	if (!m)
		return -ENOMEM;
	r = http_parse_response(buf, want, &get, m);
	if (r == 0 && m->status >= 100 && m->status < 200) {
		evbuffer_drain(in, m->head_len);
		free(m);
		return evbuffer_get_length(in) ? -EINPROGRESS : -EAGAIN; /* the next head may be in */
	}
	if (r == 0 && (m->status == 301 || m->status == 400) &&
	    fetch_moved(ft, m, buf + m->head_len, want - m->head_len)) {
		free(m);
		return -EAGAIN;
	}
	if (r < 0 || m->status != 206) {
		r = r < 0 ? r : m->status;
		free(m);
		return r; /* a status: the caller reads it */
	}
	h = http_find(m, "content-range");
	if (!h || range_parse_content_range(h->value.p, h->value.n, &cr) < 0 || !cr.has_range ||
	    cr.first != ft->first + ft->done || cr.last != ft->first + ft->len - 1 ||
	    (cr.size_known && cr.size != ft->size) || m->body != HTTP_BODY_LENGTH ||
	    m->content_length != ft->len - ft->done) {
		free(m);
		return -EPROTO;
	}
	evbuffer_drain(in, m->head_len);
	ft->is_head_done = true;
	ft->is_keep_alive = m->keep_alive;
	free(m);
	return 0;
}

static int fetch_body(struct fetch *ft, struct evbuffer *in)
{
	while (ft->done < ft->len && evbuffer_get_length(in)) {
		struct evbuffer_iovec v;
		size_t n;
		int r;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = v.iov_len < ft->len - ft->done ? v.iov_len : (size_t)(ft->len - ft->done);
		r = cache_fill_write(ft->fill, v.iov_base, n);
		if (r < 0)
			return r;
		evbuffer_drain(in, n);
		ft->done += fills_count_bytes(ft->f, ft->why, n);
	}
	return 0;
}

static void fetch_read_cb(struct bufferevent *bev, void *arg)
{
	struct fetch *ft = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int r = 0;

	if (ft->is_head_done)
		origin_read_more(ft->o, bev, fills_read_more_now(ft->done, ft->len, in));

	if (!ft->is_head_done) {
		for (int i = 0; i < 8 && (r = fetch_head(ft, in)) == -EINPROGRESS; i++)
			;
		if (r == -EAGAIN || r == -EINPROGRESS)
			return;
		if (r == 412 || r == 404) {
			version_gone(ft, r);
			return;
		}
		if (r >= 500 || r == -EPROTO) {
			fetch_retry(ft, r == -EPROTO ? -EPROTO : -EAGAIN);
			return;
		}
		if (r != 0) {
			log_warn("cache: lotad's GET of %s/%s got %d%s", ft->bucket, ft->key, r,
				 r == 403 ? " (do the service credentials allow it?)" : "");
			svcdenied_note(ft->f->cp->denied, ft->bucket, r);
			fetch_end(ft, r == 403 ? -EACCES : r < 0 ? r : -EPROTO);
			return;
		}
	}
	r = fetch_body(ft, in);
	if (r < 0) {
		fetch_end(ft, r);
	} else if (ft->done == ft->len) {
		if (ft->is_keep_alive) {
			/* for the next fetch */
			originpool_put(ft->f->pool, ft->o, bev);
			ft->bev = NULL;
		}
		fetch_end(ft, 0);
	}
	else
		fills_pace_reads(bev, fills_still_to_come(ft->done, ft->len, in), &ft->lowat);
}

/* A fault mid-way: the next attempt asks for the bytes still missing. */
static void fetch_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fetch *ft = arg;

	if (what & BEV_EVENT_CONNECTED || fills_is_slow_not_silent(bev, what, &ft->lowat))
		return;
	if (ft->is_reused && !ft->is_head_done && !evbuffer_get_length(bufferevent_get_input(bev))) {
		/* An idle connection the origin had closed: a new one, at once, no retry. */
		metric_add(M_origin_retries, 1);
		bufferevent_free(ft->bev);
		ft->bev = NULL;
		fetch_start(ft);
		return;
	}
	ft->is_head_done = false;
	fetch_retry(ft, (what & BEV_EVENT_TIMEOUT) ? -ETIMEDOUT : -ECONNRESET);
}

static int fetch_send(struct fetch *ft)
{
	struct lotad *d = ft->f->cp->d;
	struct cache_key k = {ft->bucket, ft->key, ft->version};
	char range[64];
	struct svccreds_header h[2] = {{"Range", range}, {"If-Match", ft->etag}};
	struct origin *o = ft->o = origins_for(d, ft->bucket);

	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)(ft->first + ft->done),
		 (unsigned long long)(ft->first + ft->len - 1));
	ft->bev = originpool_get(ft->f->pool, o, &ft->is_reused);
	if (!ft->bev)
		return -errno;
	ft->lowat = 0; /* a socket of its own, SO_RCVLOWAT 1 */
	ft->is_keep_alive = false;
	if (ft->is_reused)
		metric_add(M_origin_connections_reused, 1);
	bufferevent_setcb(ft->bev, fetch_read_cb, NULL, fetch_event_cb, ft);
	origin_set_timeouts(o, ft->bev);
	bufferevent_set_max_single_read(ft->bev, 256 * 1024);
	metric_add(M_origin_requests, 1);
	if (svccreds_request(ft->f->cp->svc, "GET", o, &k, h, 2,
			     bufferevent_get_output(ft->bev)) < 0)
		return -EINVAL;
	return bufferevent_enable(ft->bev, EV_READ | EV_WRITE) < 0 ? -ENOMEM : 0;
}

static void fetch_start(struct fetch *ft)
{
	int r = fetch_send(ft);

	if (r < 0)
		fetch_retry(ft, r);
}

/* Fetches of the same version running now on this worker. */
static unsigned running_of(struct fills *f, const struct fetch *ft)
{
	unsigned n = 0;

	for (struct fetch *o = f->fetches; o; o = o->next)
		n += o->is_running && strcmp(o->etag, ft->etag) == 0 && strcmp(o->key, ft->key) == 0 &&
		     strcmp(o->bucket, ft->bucket) == 0;
	return n;
}

/* Starts queued fetches, oldest first, within the worker's and each object's bounds.
 * Starting one may end it at once (and change the list): start again from the head. */
static void kick(struct fills *f)
{
	unsigned par = f->cp->d->cfg.fill_parallelism ? (unsigned)f->cp->d->cfg.fill_parallelism : 1;
	struct fetch *ft;

again:
	for (ft = f->fetches; ft && f->nrunning < FILLS_RUNNING_MAX; ft = ft->next) {
		if (ft->is_running || running_of(f, ft) >= par)
			continue;
		ft->is_running = true;
		f->nrunning++;
		ft->started = time(NULL);
		/* a bucket of another region this node has not seen: its origin first */
		if (!location_learn_first(f->cp, f->w->base, ft->bucket, fetch_relocated, ft,
					  &ft->moved))
			fetch_start(ft);
		goto again;
	}
}

static struct fetch *fetch_new(struct fills *f, const struct cache_meta *m, uint64_t index)
{
	struct fetch *ft = calloc(1, sizeof(*ft));

	if (!ft)
		return NULL;
	ft->f = f;
	ft->bucket = strdup(m->id.bucket);
	ft->key = strdup(m->id.key);
	ft->version = strdup(m->id.version ? m->id.version : "");
	ft->etag = strdup(m->etag);
	if (!ft->bucket || !ft->key || !ft->version || !ft->etag) {
		fetch_free(ft);
		return NULL;
	}
	ft->size = m->size;
	ft->index = index;
	ft->first = chunkmap_start(m->chunk_size, index);
	ft->len = chunkmap_len(m->size, m->chunk_size, index);
	return ft;
}

int fills_want(struct fills *f, const struct cache_meta *m, uint64_t index, enum fills_reason why)
{
	struct cache_fill *fill;
	struct fetch *ft, **pp;
	int r;

	if (!f->cp->svc)
		return -ENOKEY;
	if (svcdenied_has(f->cp->denied, m->id.bucket))
		return -EACCES;
	r = cache_chunk_begin(f->cp->cache, m, (uint32_t)index, &fill);
	if (r == CACHE_BEGIN_COMMITTED)
		return FILLS_COMMITTED;
	if (r == CACHE_BEGIN_FOLLOW)
		return FILLS_RUNNING;
	if (r < 0)
		return r;
	ft = fetch_new(f, m, index);
	if (!ft) {
		cache_fill_abort(fill, -ENOMEM);
		return -ENOMEM;
	}
	ft->fill = fill;
	ft->why = why;
	metric_add(M_cache_chunk_fills, 1);
	metric_add(M_cache_fills_started, 1);
	for (pp = &f->fetches; *pp; pp = &(*pp)->next)
		;
	*pp = ft;
	kick(f);
	return FILLS_RUNNING;
}

void fills_free(struct fills *f)
{
	if (!f)
		return;
	fills_heads_free(f);
	fills_streams_free(f);
	while (f->fetches) {
		struct fetch *ft = f->fetches;

		f->fetches = ft->next;
		cache_fill_abort(ft->fill, -ECANCELED);
		fetch_free(ft);
	}
	if (f->owns_pool)
		originpool_free(f->pool);
	free(f);
}

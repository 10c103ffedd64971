/* The fills of one worker (fills.h): fetches of single chunks with lotad's own ranged
 * GETs, and streams of adopted 200s cut into chunks. Everything here runs on the worker's
 * thread; the store (cache/) wakes the readers that follow these fills. */
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

#define SPILL_MAX (4 * 1024 * 1024) /* spilled bytes buffered for the reader at most */

/* What the adopting reader gets of a stream that could not store everything. */
struct fills_spill {
	unsigned refs; /* the stream's and the reader's (same thread) */
	struct evbuffer *buf;
	uint64_t from;	     /* object offset of buf's first byte; UINT64_MAX: not spilling */
	bool is_broken;	     /* the stream ended before the object's end */
	bool is_reader_gone;
	struct stream *s;    /* NULL once the stream ended */
	void (*wake)(void *arg);
	void *arg;
};

/* A 200's body read into chunks. */
struct stream {
	struct fills *f;
	struct objmeta om;
	struct bufferevent *bev;
	uint64_t pos;	/* the object byte the origin sends next */
	uint64_t index; /* the chunk pos is in */
	/* the fills of chunks index .. index + FILLS_STREAM_WINDOW - 1 (NULL: skipped) */
	struct cache_fill *win[FILLS_STREAM_WINDOW];
	bool win_elsewhere[FILLS_STREAM_WINDOW]; /* NULL because another fill has it */
	uint64_t win_next; /* the next chunk to begin */
	uint64_t window;   /* chunks begun ahead of pos, at most FILLS_STREAM_WINDOW */
	bool is_handing_off; /* chunks others fill end the stream (fetches run in parallel) */
	bool is_waiting;     /* at a chunk another fill has not shown it can get yet */
	struct event *recheck; /* while waiting: look again */
	unsigned rechecks;
	fills_theirs_fn is_theirs;
	struct fills_spill *spill;
	bool is_paused; /* the spill is full: the reader drains it first */
	int lowat;	/* SO_RCVLOWAT set on bev's socket */
	struct stream *next;
};

/* lotad's HEAD of a key. */
struct fills_head {
	struct fills *f;
	struct bufferevent *bev;
	bool is_reused; /* bev came idle from the pool */
	struct origin *o;	     /* the origin bev goes to */
	struct location_wait *moved; /* as for a fetch */
	bool is_moved;
	char *bucket, *key, *version;
	fills_head_fn done;
	void *arg;
	struct fills_head *next;
};

struct fills {
	struct cachepath *cp;
	struct worker *w;
	struct fetch *fetches; /* running and queued */
	unsigned nrunning;
	struct stream *streams;
	struct fills_head *heads;
	struct originpool *pool; /* idle connections for the next fetches */
};

static void fetch_start(struct fetch *ft);
static void kick(struct fills *f);

/* Bytes the socket of a fill's origin connection gathers before it wakes us. The origin
 * sends in small segments; woken for each, a fill costs a read, a write into the chunk
 * and an epoll turn per 4 KiB and runs at a fraction of the origin's speed. */
#define FILLS_LOWAT (256 * 1024)

/* Wakes for bev once FILLS_LOWAT bytes are there, or the body's last byte: left is what
 * the origin has still to send of it beyond what is read already. The socket is the
 * fill's own (closed at its end), so the setting never outlives the body. */
static void pace_reads(struct bufferevent *bev, uint64_t left, int *cur)
{
	int v = left < FILLS_LOWAT ? (int)left : FILLS_LOWAT;

	if (*cur < 0)
		return; /* a slow origin: every byte wakes us (is_slow_not_silent) */

	if (v < 1)
		v = 1;
	if (v != *cur && setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_RCVLOWAT, &v,
				    sizeof(v)) == 0)
		*cur = v;
}

/* A read timeout with bytes waiting below SO_RCVLOWAT is an origin that is slow, not
 * silent: from here on bev wakes for every byte, and reading goes on. */
static bool is_slow_not_silent(struct bufferevent *bev, short what, int *lowat)
{
	int queued = 0, one = 1;

	if (!(what & BEV_EVENT_TIMEOUT) || !(what & BEV_EVENT_READING) || *lowat <= 1 ||
	    ioctl(bufferevent_getfd(bev), FIONREAD, &queued) < 0 || queued <= 0)
		return false;
	if (setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one)) == 0)
		*lowat = -1; /* and it stays so */
	bufferevent_enable(bev, EV_READ);
	return true;
}

/* Bytes read from a fill's socket per wake at most (beyond libevent's 4 KiB): enough to
 * make a wake worth its cost, little enough to keep the worker's other clients going. */
#define FILLS_READ_MORE (1024 * 1024)

/* What of [done, len) is not in in yet. */
static uint64_t still_to_come(uint64_t done, uint64_t len, const struct evbuffer *in)
{
	uint64_t buffered = evbuffer_get_length(in);

	return len - done > buffered ? len - done - buffered : 0;
}

/* How much more to read now of [done, len). */
static size_t read_more_now(uint64_t done, uint64_t len, const struct evbuffer *in)
{
	uint64_t left = still_to_come(done, len, in);

	return left < FILLS_READ_MORE ? (size_t)left : FILLS_READ_MORE;
}

int fills_new(struct cachepath *cp, struct worker *w, struct fills **out)
{
	struct fills *f = calloc(1, sizeof(*f));

	if (!f || !(f->pool = originpool_new(w->base))) {
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

static uint64_t count_bytes(struct fills *f, enum fills_reason why, uint64_t n)
{
	metric_add(why == FILLS_FOR_PRESTAGE ? M_bytes_from_origin_prestage : M_bytes_from_origin_fill,
		   n);
	metric_add(M_bytes_from_origin, n);
	return n;
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
			log_warn("cache: fill of %s abandoned: %s", label, strerror(-r));
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

/* Again after a random delay (full jitter) up to base * 2^attempt, within bounds. */
static void fetch_retry(struct fetch *ft, int err)
{
	uint64_t cap = (uint64_t)FILLS_RETRY_BASE_MS << (ft->attempt < 16 ? ft->attempt : 16);
	struct timeval tv;
	uint64_t ms;

	if (ft->bev)
		bufferevent_free(ft->bev);
	ft->bev = NULL;
	if (ft->attempt >= FILLS_RETRY_MAX || time(NULL) - ft->started > FILLS_RETRY_WINDOW_S) {
		fetch_end(ft, err);
		return;
	}
	if (cap > FILLS_RETRY_CAP_MS)
		cap = FILLS_RETRY_CAP_MS;
	ms = (uint64_t)random() % (cap + 1);
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
		ft->done += count_bytes(ft->f, ft->why, n);
	}
	return 0;
}

static void fetch_read_cb(struct bufferevent *bev, void *arg)
{
	struct fetch *ft = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int r = 0;

	if (ft->is_head_done)
		origin_read_more(ft->o, bev, read_more_now(ft->done, ft->len, in));

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
		pace_reads(bev, still_to_come(ft->done, ft->len, in), &ft->lowat);
}

/* A fault mid-way: the next attempt asks for the bytes still missing. */
static void fetch_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fetch *ft = arg;

	if (what & BEV_EVENT_CONNECTED || is_slow_not_silent(bev, what, &ft->lowat))
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

/* -- streams ------------------------------------------------------------------------ */

static void spill_unref(struct fills_spill *sp)
{
	if (--sp->refs)
		return;
	evbuffer_free(sp->buf);
	free(sp);
}

static void stream_free(struct stream *s)
{
	for (struct stream **pp = &s->f->streams; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	for (int i = 0; i < FILLS_STREAM_WINDOW; i++) {
		if (s->win[i]) {
			cache_fill_abort(s->win[i], -ECONNRESET);
			metric_add(M_cache_fills_aborted, 1);
		}
	}
	if (s->spill) {
		s->spill->s = NULL;
		s->spill->is_broken = s->pos < s->om.meta.size;
		if (!s->spill->is_reader_gone)
			s->spill->wake(s->spill->arg);
		spill_unref(s->spill);
	}
	if (s->recheck)
		event_free(s->recheck);
	if (s->bev)
		bufferevent_free(s->bev);
	objmeta_free(&s->om);
	free(s);
}

static void wake_reader(struct stream *s)
{
	if (s->spill && !s->spill->is_reader_gone)
		s->spill->wake(s->spill->arg);
}

/* Whether chunk i is left to another fill: one running or committed here, or, handing
 * off, a chunk a peer owns and this node does not hold (the reader asks that peer). A
 * chunk begun here wakes the reader: it may wait for the stream to reach it. */
static bool is_elsewhere(struct stream *s, uint64_t i, struct cache_fill **fill)
{
	const struct cache_meta *m = &s->om.meta;
	enum cache_chunk_state st = CACHE_CHUNK_ABSENT;
	int r;

	*fill = NULL;
	if (s->is_handing_off && s->is_theirs && s->is_theirs(s->f->cp, m, i)) {
		r = cache_chunk_states(s->f->cp->cache, m, (uint32_t)i, 1, &st);
		if ((r == 0 || r == -ENOENT) && st == CACHE_CHUNK_ABSENT)
			return true;
	}
	r = cache_chunk_begin(s->f->cp->cache, m, (uint32_t)i, fill);
	if (r == CACHE_BEGIN_FILL) {
		metric_add(M_cache_chunk_fills, 1);
		metric_add(M_cache_fills_started, 1);
		wake_reader(s);
		return false;
	}
	*fill = NULL;
	return r == CACHE_BEGIN_FOLLOW || r == CACHE_BEGIN_COMMITTED;
}

/* Begins the chunks of the window not begun yet, so that readers of the chunks the
 * stream will reach soon follow it instead of fetching them themselves. */
static void stream_begin_window(struct stream *s)
{
	uint64_t n = chunkmap_count(s->om.meta.size, s->om.meta.chunk_size);

	while (s->win_next < n && s->win_next < s->index + s->window) {
		struct cache_fill *fill;
		bool elsewhere = is_elsewhere(s, s->win_next, &fill);

		s->win[s->win_next - s->index] = fill;
		s->win_elsewhere[s->win_next - s->index] = elsewhere;
		s->win_next++;
	}
}

/* What the stream does at the start of a chunk. */
enum handoff {
	HANDOFF_NO,   /* go on: the chunk is the stream's, or the stream does not hand off */
	HANDOFF_NOW,  /* end here: another fill has it and has shown it can get it */
	HANDOFF_WAIT, /* another fill has it but has not got a byte yet: wait, reading nothing */
};

/* Has the fill of chunk i that is not the stream's shown it gets the chunk: committed,
 * bytes written, or a peer's (its owner fills it)? 1 yes, 0 not yet, -1 no fill at all
 * (it failed and is gone). */
static int other_fill_proof(struct stream *s, uint64_t i)
{
	const struct cache_meta *m = &s->om.meta;
	enum cache_chunk_state st = CACHE_CHUNK_ABSENT;
	struct cache_follower *fl;
	struct cache_fill_status fs;
	int r = cache_chunk_states(s->f->cp->cache, m, (uint32_t)i, 1, &st);

	if (r < 0 && r != -ENOENT)
		return 1;
	if (st == CACHE_CHUNK_COMMITTED)
		return 1;
	if (st == CACHE_CHUNK_ABSENT)
		return s->is_theirs && s->is_theirs(s->f->cp, m, i) ? 1 : -1;
	if (cache_chunk_follow(s->f->cp->cache, m, (uint32_t)i, NULL, NULL, &fl) < 0)
		return -1;
	cache_follower_status(fl, &fs);
	cache_follower_close(fl);
	if (fs.state == CACHE_FILL_ABORTED)
		return -1;
	return fs.written > 0 || fs.state != CACHE_FILL_RUNNING ? 1 : 0;
}

/* Handing off, the stream ends where the chunk it reaches is another fill's that has
 * shown it gets it, and the reader takes no byte from the stream: the reader's
 * read-ahead runs fetches of the chunks ahead in parallel, faster than one stream from
 * an origin that paces each connection. What the origin sent past that point is wasted
 * (its socket's bytes). A fill that has not got a byte yet (its answer may be a refusal)
 * is waited for; one that failed leaves the chunk to the stream again. */
static enum handoff stream_handoff(struct stream *s)
{
	const struct fills_spill *sp = s->spill;
	uint64_t start = chunkmap_start(s->om.meta.chunk_size, s->index);
	int proof;

	if (!s->is_handing_off || s->pos >= s->om.meta.size || s->pos != start || s->win[0] ||
	    !s->win_elsewhere[0] || (sp && sp->from != UINT64_MAX && !sp->is_reader_gone))
		return HANDOFF_NO;
	proof = other_fill_proof(s, s->index);
	if (proof > 0)
		return HANDOFF_NOW;
	if (proof == 0)
		return HANDOFF_WAIT;
	s->win_elsewhere[0] = is_elsewhere(s, s->index, &s->win[0]); /* take it back */
	return s->win[0] || !s->win_elsewhere[0] ? HANDOFF_NO : HANDOFF_WAIT;
}

/* Chunk index is complete: commit it, and slide the window. */
static void stream_next_chunk(struct stream *s)
{
	char label[CACHE_BUCKET_MAX + CACHE_KEY_MAX + 32];

	if (s->win[0]) {
		snprintf(label, sizeof(label), "%s/%s chunk %llu", s->om.bucket, s->om.key,
			 (unsigned long long)s->index);
		committer_commit(s->f->cp->committer, s->win[0], label);
	}
	memmove(&s->win[0], &s->win[1], sizeof(s->win[0]) * (FILLS_STREAM_WINDOW - 1));
	memmove(&s->win_elsewhere[0], &s->win_elsewhere[1],
		sizeof(s->win_elsewhere[0]) * (FILLS_STREAM_WINDOW - 1));
	s->win[FILLS_STREAM_WINDOW - 1] = NULL;
	s->win_elsewhere[FILLS_STREAM_WINDOW - 1] = false;
	s->index++;
	stream_begin_window(s);
}

/* The spill begins: the chunks begun ahead go (their followers take them from the
 * origin), so that no reader follows a stream now paced by one client. */
static void spill_begins(struct stream *s)
{
	s->spill->from = s->pos;
	for (int i = 1; i < FILLS_STREAM_WINDOW; i++) {
		if (s->win[i]) {
			cache_fill_abort(s->win[i], -ECONNRESET);
			metric_add(M_cache_fills_aborted, 1);
		}
		s->win[i] = NULL;
		s->win_elsewhere[i] = false;
	}
}

/* From the first byte the store would not take, the adopting reader gets every byte
 * (moved out of in); true if it took them. */
static bool stream_spill(struct stream *s, struct evbuffer *in, size_t n)
{
	struct fills_spill *sp = s->spill;

	if (!sp || sp->is_reader_gone)
		return false;
	if (sp->from == UINT64_MAX) {
		if (s->win[0] || s->win_elsewhere[0])
			return false; /* stored here or elsewhere: nothing to spill yet */
		spill_begins(s);
	}
	evbuffer_remove_buffer(in, sp->buf, n);
	if (evbuffer_get_length(sp->buf) >= SPILL_MAX && !s->is_paused) {
		s->is_paused = true;
		bufferevent_disable(s->bev, EV_READ);
	}
	sp->wake(sp->arg);
	return true;
}

/* n bytes of in into the current chunk's fill (every segment of them). */
static int write_fill(struct stream *s, struct evbuffer *in, size_t n)
{
	struct evbuffer_iovec v[16];
	struct evbuffer_ptr p;
	int r = 0;

	evbuffer_ptr_set(in, &p, 0, EVBUFFER_PTR_SET);
	while (n && r == 0) {
		int nv = evbuffer_peek(in, (ssize_t)n, &p, v, 16);

		if (nv < 1)
			return -EIO;
		for (int i = 0; i < nv && i < 16 && n && r == 0; i++) {
			size_t len = v[i].iov_len < n ? v[i].iov_len : n;

			r = cache_fill_write(s->win[0], v[i].iov_base, len);
			n -= len;
			evbuffer_ptr_set(in, &p, len, EVBUFFER_PTR_ADD);
		}
	}
	return r;
}

static void stream_write(struct stream *s, struct evbuffer *in, size_t n)
{
	int r = s->win[0] ? write_fill(s, in, n) : 0;

	if (r < 0 && s->win[0]) {
		log_warn("cache: fill of %s/%s chunk %llu abandoned: %s (its readers get the "
			 "origin's bytes)", s->om.bucket, s->om.key, (unsigned long long)s->index,
			 strerror(-r));
		cache_fill_abort(s->win[0], r);
		metric_add(M_cache_fills_aborted, 1);
		s->win[0] = NULL;
		if (r == -ENOSPC)
			cachepath_wake_evict(s->f->cp);
	}
	if (!stream_spill(s, in, n))
		evbuffer_drain(in, n);
}

/* Nobody wants what the stream would read: its reader is gone and no chunk of its
 * window is stored here. */
static bool stream_is_idle(const struct stream *s)
{
	if (!s->spill || !s->spill->is_reader_gone)
		return false;
	for (int i = 0; i < FILLS_STREAM_WINDOW; i++)
		if (s->win[i])
			return false;
	return true;
}

#define RECHECK_MS 10

static void stream_read_cb(struct bufferevent *bev, void *arg);

static void recheck_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	s->is_waiting = false;
	if (!s->is_paused)
		bufferevent_enable(s->bev, EV_READ);
	stream_read_cb(s->bev, s);
}

/* Reads nothing for a while and looks again; after origin-timeout of it, hands off. */
static bool stream_wait(struct stream *s)
{
	struct timeval tv = {0, RECHECK_MS * 1000};
	uint64_t most = s->f->cp->d->cfg.origin_timeout * 1000 / RECHECK_MS;

	if (s->rechecks++ >= most)
		return false;
	if (!s->recheck && !(s->recheck = evtimer_new(s->f->w->base, recheck_cb, s)))
		return false;
	s->is_waiting = true;
	bufferevent_disable(s->bev, EV_READ);
	return evtimer_add(s->recheck, &tv) == 0;
}

static void stream_read_cb(struct bufferevent *bev, void *arg)
{
	struct stream *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint64_t size = s->om.meta.size, cs = s->om.meta.chunk_size;

	if (s->is_waiting)
		return;
	if (!s->is_paused)
		origin_read_more(origins_for(s->f->cp->d, s->om.meta.id.bucket), bev,
				 read_more_now(s->pos, size, in));

	while (s->pos < size) {
		uint64_t end = chunkmap_start(cs, s->index) + chunkmap_len(size, cs, s->index);
		enum handoff h = stream_handoff(s);
		size_t n = evbuffer_get_length(in);

		if (h == HANDOFF_WAIT && stream_wait(s))
			return;
		if (h != HANDOFF_NO || stream_is_idle(s)) {
			if (h != HANDOFF_NO)
				metric_add(M_cache_stream_handoffs, 1);
			stream_free(s);
			return;
		}
		s->rechecks = 0;
		if (!n)
			break;
		if (n > end - s->pos)
			n = (size_t)(end - s->pos);
		stream_write(s, in, n);
		s->pos += count_bytes(s->f, FILLS_FOR_READ, n);
		if (s->pos == end)
			stream_next_chunk(s);
	}
	if (s->pos == size)
		stream_free(s);
	else
		pace_reads(bev, still_to_come(s->pos, size, in), &s->lowat);
}

static void stream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct stream *s = arg;

	if (what & BEV_EVENT_CONNECTED || is_slow_not_silent(bev, what, &s->lowat))
		return;
	log_warn("cache: %s/%s: the origin's body ended at byte %llu of %llu (%s); readers go on "
		 "from the origin", s->om.bucket, s->om.key, (unsigned long long)s->pos,
		 (unsigned long long)s->om.meta.size, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "closed");
	metric_add(M_origin_aborts, 1);
	stream_free(s);
}

int fills_adopt(struct fills *f, struct bufferevent *bev, const struct cache_meta *m,
		fills_theirs_fn is_theirs, void (*wake)(void *arg), void *arg,
		struct fills_spill **spill)
{
	struct lotad *d = f->cp->d;
	struct timeval tv = origin_tv(origins_for(d, m->id.bucket)->read_ms);
	struct stream *s = calloc(1, sizeof(*s));
	struct fills_spill *sp = calloc(1, sizeof(*sp));

	if (!s || !sp || !(sp->buf = evbuffer_new()) || objmeta_copy(&s->om, m) < 0) {
		if (s)
			objmeta_free(&s->om);
		if (sp && sp->buf)
			evbuffer_free(sp->buf);
		free(sp);
		free(s);
		return -ENOMEM;
	}
	sp->refs = 2;
	sp->from = UINT64_MAX;
	sp->s = s;
	sp->wake = wake;
	sp->arg = arg;
	*spill = sp;
	s->spill = sp;
	s->f = f;
	/* With service credentials the reader's read-ahead fetches the chunks after the
	 * first in parallel: the stream begins only the chunk it is in. Without them (or
	 * where they are refused) nobody else can fetch: the stream begins a window ahead
	 * for readers to follow. A small object is not handed off: what the origin sends
	 * past the cut (its socket buffers, some MiB) would be a large share of it. */
	s->is_handing_off = f->cp->svc && d->cfg.fill_parallelism > 1 &&
			    chunkmap_count(m->size, m->chunk_size) >= FILLS_HANDOFF_MIN_CHUNKS &&
			    !svcdenied_has(f->cp->denied, m->id.bucket);
	s->window = s->is_handing_off ? 1 : FILLS_STREAM_WINDOW;
	s->is_theirs = is_theirs;
	s->next = f->streams;
	f->streams = s;
	stream_begin_window(s);
	s->bev = bev;
	bufferevent_setcb(bev, stream_read_cb, NULL, stream_event_cb, s);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(bev)))
		stream_read_cb(bev, s);
	return 0;
}

uint64_t fills_spill_from(const struct fills_spill *sp)
{
	return sp->from;
}

struct evbuffer *fills_spill_buf(struct fills_spill *sp, uint64_t *from)
{
	*from = sp->from;
	return sp->buf;
}

/* The reader took n bytes off the front: a paused stream reads on below half full. */
void fills_spill_consumed(struct fills_spill *sp, size_t n)
{
	sp->from += n;
	if (sp->s && sp->s->is_paused && evbuffer_get_length(sp->buf) < SPILL_MAX / 2) {
		sp->s->is_paused = false;
		bufferevent_enable(sp->s->bev, EV_READ);
	}
}

bool fills_spill_is_broken(const struct fills_spill *sp)
{
	return sp->is_broken;
}

bool fills_spill_is_done(const struct fills_spill *sp)
{
	return sp->s == NULL;
}

bool fills_spill_may_reach(const struct fills_spill *sp, uint64_t pos)
{
	return sp->s && sp->from == UINT64_MAX && sp->s->pos <= pos;
}

void fills_spill_release(struct fills_spill *sp)
{
	if (!sp)
		return;
	sp->is_reader_gone = true;
	evbuffer_drain(sp->buf, evbuffer_get_length(sp->buf));
	if (sp->s && sp->s->is_paused) {
		sp->s->is_paused = false;
		bufferevent_enable(sp->s->bev, EV_READ);
	}
	spill_unref(sp);
}

/* -- lotad's HEADs ------------------------------------------------------------------ */

static void head_free(struct fills_head *h)
{
	for (struct fills_head **pp = &h->f->heads; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	if (h->bev)
		bufferevent_free(h->bev);
	location_wait_cancel(h->moved);
	free(h->bucket);
	free(h->key);
	free(h->version);
	free(h);
}

/* The answer is told; a connection that ended with a bodiless 200 and holds nothing
 * more goes back to the pool (after the call: m points into its input). */
static void head_done(struct fills_head *h, int status, const struct http_msg *m)
{
	bool is_reusable = h->bev && m && status == 200 && m->keep_alive &&
			   evbuffer_get_length(bufferevent_get_input(h->bev)) == m->head_len;

	svcdenied_note(h->f->cp->denied, h->bucket, status);
	if (h->done)
		h->done(h->arg, status, m);
	if (is_reusable) {
		evbuffer_drain(bufferevent_get_input(h->bev), m->head_len);
		originpool_put(h->f->pool, h->o, h->bev);
		h->bev = NULL;
	}
	head_free(h);
}

static int head_send(struct fills_head *h);

static void head_relocated(void *arg)
{
	struct fills_head *h = arg;

	h->moved = NULL;
	if (head_send(h) < 0)
		head_done(h, 0, NULL);
}

/* As fetch_moved(), for a HEAD (whose answer has no body). */
static bool head_moved(struct fills_head *h, const struct http_msg *m)
{
	if (h->is_moved || location_redirected(h->f->cp, h->f->w->base, h->bucket, h->o, m, NULL,
					       0, head_relocated, h,
					       &h->moved) != LOCATION_MOVED)
		return false;
	h->is_moved = true;
	bufferevent_free(h->bev);
	h->bev = NULL;
	return true;
}

static void head_read_cb(struct bufferevent *bev, void *arg)
{
	static const struct http_str head = {"HEAD", 4};
	struct fills_head *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct http_msg *m = malloc(sizeof(*m));
	int r;

	if (!m) {
		head_done(h, 0, NULL);
		return;
	}
	for (int i = 0; i < 8; i++) {
		size_t len = evbuffer_get_length(in), want = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;

		r = http_parse_response((const char *)evbuffer_pullup(in, (ssize_t)want), want,
					&head, m);
		if (r == 0 && m->status < 200) {
			evbuffer_drain(in, m->head_len); /* an interim 1xx: the next head may be in */
			continue;
		}
		if (r == 0 && (m->status == 301 || m->status == 400) && head_moved(h, m))
			; /* sent again once the bucket's origin is known */
		else if (r == 0)
			head_done(h, m->status, m);
		else if (r != -EAGAIN)
			head_done(h, 0, NULL);
		break;
	}
	free(m);
}

static void head_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fills_head *h = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (h->is_reused && !evbuffer_get_length(bufferevent_get_input(bev))) {
		/* An idle connection the origin had closed: again at once on a new one. */
		metric_add(M_origin_retries, 1);
		bufferevent_free(h->bev);
		h->bev = NULL;
		if (head_send(h) == 0)
			return;
	}
	head_done(h, 0, NULL);
}

/* h's HEAD, signed with the service credentials, on an idle or a new connection. */
static int head_send(struct fills_head *h)
{
	struct lotad *d = h->f->cp->d;
	struct cache_key k = {h->bucket, h->key, h->version[0] ? h->version : NULL};
	struct origin *o = h->o = origins_for(d, h->bucket);

	h->bev = originpool_get(h->f->pool, o, &h->is_reused);
	if (!h->bev)
		return -ENOMEM;
	if (h->is_reused)
		metric_add(M_origin_connections_reused, 1);
	bufferevent_setcb(h->bev, head_read_cb, NULL, head_event_cb, h);
	origin_set_timeouts(o, h->bev);
	metric_add(M_origin_requests, 1);
	if (svccreds_request(h->f->cp->svc, "HEAD", o, &k, NULL, 0,
			     bufferevent_get_output(h->bev)) < 0 ||
	    bufferevent_enable(h->bev, EV_READ | EV_WRITE) < 0)
		return -EINVAL;
	return 0;
}

int fills_head(struct fills *f, const struct cache_key *k, fills_head_fn done, void *arg,
	       struct fills_head **out)
{
	struct fills_head *h;
	int r;

	if (!f->cp->svc)
		return -ENOKEY;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->f = f;
	h->done = done;
	h->arg = arg;
	h->next = f->heads;
	f->heads = h;
	h->bucket = strdup(k->bucket);
	h->key = strdup(k->key);
	h->version = strdup(k->version ? k->version : "");
	if (!h->bucket || !h->key || !h->version) {
		head_free(h);
		return -ENOMEM;
	}
	if (!location_learn_first(f->cp, f->w->base, h->bucket, head_relocated, h, &h->moved) &&
	    (r = head_send(h)) < 0) {
		head_free(h);
		return r;
	}
	if (out)
		*out = h;
	return 0;
}

void fills_head_cancel(struct fills_head *h)
{
	if (h)
		head_free(h);
}

static void gone_done(void *arg, int status, const struct http_msg *m)
{
	struct fills_head *h = arg;
	struct cache_key k = {h->bucket, h->key, h->version};

	if (status == 404 && cachepath_invalidate(h->f->cp, &k) > 0)
		log_info("cache: %s/%s is gone at the origin: dropped", h->bucket, h->key);
}

void fills_confirm_gone(struct fills *f, const struct cache_key *k)
{
	struct fills_head *h;

	/* The callback reads the key from the request itself (its own copy). */
	if (fills_head(f, k, NULL, NULL, &h) == 0) {
		h->done = gone_done;
		h->arg = h;
	}
}

void fills_free(struct fills *f)
{
	if (!f)
		return;
	while (f->heads)
		head_free(f->heads);
	while (f->streams)
		stream_free(f->streams);
	while (f->fetches) {
		struct fetch *ft = f->fetches;

		f->fetches = ft->next;
		cache_fill_abort(ft->fill, -ECANCELED);
		fetch_free(ft);
	}
	originpool_free(f->pool);
	free(f);
}

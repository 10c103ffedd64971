/* Adopted 200s (fills.h): the body of a client's own whole-object GET read into chunks
 * at the origin's pace, handed to the reader as a spill where the store will not take
 * it, and handed off to the reader's parallel fetches where they have the chunk ahead. */
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

#define SPILL_MAX (4 * 1024 * 1024) /* spilled bytes buffered for the reader at most */
/* The receive buffer of a stream that hands off (the kernel doubles it). Autotuned, it
 * grows to tcp_rmem's maximum (32 MiB on some hosts), and whatever the origin has in it
 * when the stream ends at the cut is sent for nothing; this is still a window of some
 * MiB, what one stream from a remote origin needs. */
#define STREAM_HANDOFF_RCVBUF (2 * 1024 * 1024)

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
	bool is_keep_alive; /* the 200 let bev carry another request after its body */
	struct stream *next;
};

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
		log_warn_every(LOG_EVERY_SECOND,
			       "cache: fill of %s/%s chunk %llu abandoned: %s (its readers get the "
			       "origin's bytes)",
			       s->om.bucket, s->om.key, (unsigned long long)s->index, strerror(-r));
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

/* The whole body is read: a kept-alive connection with nothing more in it goes idle
 * to the pool (the next request to the origin skips the handshake) instead of closing. */
static void keep_idle(struct stream *s)
{
	struct origin *o = origins_for(s->f->cp->d, s->om.meta.id.bucket);

	if (!s->is_keep_alive || evbuffer_get_length(bufferevent_get_input(s->bev)))
		return;
	originpool_put(s->f->pool, o, s->bev);
	s->bev = NULL;
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
				 fills_read_more_now(s->pos, size, in));

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
		s->pos += fills_count_bytes(s->f, FILLS_FOR_READ, n);
		if (s->pos == end)
			stream_next_chunk(s);
	}
	if (s->pos == size) {
		keep_idle(s);
		stream_free(s);
	} else
		fills_pace_reads(bev, fills_still_to_come(s->pos, size, in), &s->lowat);
}

static void stream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct stream *s = arg;

	if (what & BEV_EVENT_CONNECTED || fills_is_slow_not_silent(bev, what, &s->lowat))
		return;
	log_warn("cache: %s/%s: the origin's body ended at byte %llu of %llu (%s); readers go on "
		 "from the origin", s->om.bucket, s->om.key, (unsigned long long)s->pos,
		 (unsigned long long)s->om.meta.size, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "closed");
	metric_add(M_origin_aborts, 1);
	stream_free(s);
}

int fills_adopt(struct fills *f, struct bufferevent *bev, bool is_keep_alive,
		const struct cache_meta *m, fills_theirs_fn is_theirs, void (*wake)(void *arg), void *arg,
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
	if (s->is_handing_off) {
		int sz = STREAM_HANDOFF_RCVBUF;

		setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	s->is_theirs = is_theirs;
	s->is_keep_alive = is_keep_alive;
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

void fills_streams_free(struct fills *f)
{
	while (f->streams)
		stream_free(f->streams);
}

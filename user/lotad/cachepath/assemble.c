/* The body of a read served from the cache, assembled in order from chunks once the
 * origin has confirmed the version (304): a committed chunk is verified (once) and sent
 * by sendfile; a chunk being filled is followed as it grows; a chunk another node of the
 * cluster owns comes from that node's peer port (remote.h), spliced; a missing one is
 * fetched now (fills.c) and followed, and the next fill-parallelism - 1 chunks are asked
 * for ahead of the reader, each of its owner. If a fill or an owner fails while the origin
 * is reachable (a full disk, a reset, a node killed), the reader goes on from its offset
 * with a ranged GET of lotad's own, streamed to the client: neither costs a client its
 * request. A version that changes at the origin mid-read cuts the client: never a mix of
 * versions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cache.h"
#include "cachepath/assemble.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/fills.h"
#include "cachepath/objmeta.h"
#include "cachepath/remote.h"
#include "cachepath/svccreds.h"
#include "cachepath/svcdenied.h"
#include "chunkmap.h"
#include "exchange/origin.h"
#include "exchange/origins.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

/* File bytes queued on the client's output at once: segments cost no memory. */
#define QUEUE_MAX (8 * 1024 * 1024)
/* Bytes of a resume (SRC_PASS) read ahead of the client at most, and bytes held in
 * memory (a resume's, a spill's, a peer's) queued on the client's output at most: a slow
 * client costs its socket's buffer, not lotad's memory. */
#define PASS_BUFFER_MAX (1024 * 1024)
#define MEM_QUEUE_MAX (1024 * 1024)
/* A chunk whose fill failed is looked for again this many times before its rest comes
 * from the origin (a fill that fails at once, as on a full disk, must not spin). */
#define REOPENS_MAX 2

enum source {
	SRC_NONE,   /* the next chunk is not open yet */
	SRC_FILE,   /* a committed chunk's file */
	SRC_FOLLOW, /* a running fill's file, as far as it is written */
	SRC_PASS,   /* lotad's own ranged GET, relayed (a fill failed) */
	SRC_SPILL,  /* the adopted stream's bytes the store could not keep */
	SRC_PEER,   /* the chunk's owner node, by its peer port */
};

struct assembler {
	struct exchange *x;
	struct cachepath *cp;
	struct objmeta om; /* the version served */
	uint64_t pos, last; /* the next object byte to queue, the last one */
	uint64_t index;	    /* the chunk pos is in */
	uint64_t asked;	    /* chunks below this were asked for (read-ahead) */
	uint64_t missed_to; /* chunks below this were counted as misses */
	unsigned reopens;   /* times the current chunk's source was opened again after a failure */
	enum source src;
	struct cache_chunk *ch;
	struct cache_follower *fl;
	struct evbuffer_file_segment *seg; /* the file of ch or fl, for sendfile */
	uint64_t body_offset;		    /* where the chunk's body starts in that file */
	struct bufferevent *pass;	    /* SRC_PASS; NULL while a retry waits */
	bool is_pass_head_done, is_pass_ended;
	uint64_t pass_end; /* the byte after the last the pass asks for */
	/* A pass that met a 5xx or lost its connection goes again from pos after a back-off
	 * (as lotad's fills do), within these bounds, reset once a chunk's part is through. */
	struct event *pass_timer;
	unsigned pass_attempts;
	time_t pass_started;
	bool is_pass_due; /* the back-off is over: open the pass again */
	struct fills_spill *spill;
	struct remote_src *rs; /* SRC_PEER */
	bool is_owner; /* serving another node's chunk request: every chunk is this node's */
	unsigned *sending; /* the worker's count of bodies sent (cachepath-t.h), or NULL */
};

static void spill_skip(struct assembler *a);

static void close_source(struct assembler *a)
{
	if (a->seg)
		evbuffer_file_segment_free(a->seg);
	a->seg = NULL;
	cache_chunk_close(a->ch);
	a->ch = NULL;
	cache_follower_close(a->fl); /* after it, the fill never wakes us */
	a->fl = NULL;
	if (a->pass)
		bufferevent_free(a->pass);
	a->pass = NULL;
	if (a->pass_timer)
		event_del(a->pass_timer);
	a->is_pass_due = false;
	remote_close(a->cp, a->rs);
	a->rs = NULL;
	a->src = SRC_NONE;
}

/* A segment over the chunk's file as it will be once complete (a followed file is still
 * growing): header and body. */
static int open_segment(struct assembler *a, int fd, uint64_t body_offset)
{
	uint64_t len = chunkmap_len(a->om.meta.size, a->om.meta.chunk_size, a->index);
	int dupfd = dup(fd);

	if (dupfd < 0)
		return -errno;
	a->body_offset = body_offset;
	a->seg = evbuffer_file_segment_new(dupfd, 0, (ev_off_t)(body_offset + len),
					   EVBUF_FS_CLOSE_ON_FREE);
	if (!a->seg) {
		close(dupfd);
		return -ENOMEM;
	}
	return 0;
}

static void fill_wake(void *arg)
{
	event_active(arg, EV_READ, 0);
}

/* Asks for chunk i ahead of the reader: of its owner (remote_want), or, serving another
 * node's request, of this node's fills. */
static void want_ahead(struct assembler *a, struct fills *fills, uint64_t i)
{
	if (!a->is_owner)
		remote_want(a->cp, exchange_worker(a->x), &a->om.meta, i);
	else if (fills)
		fills_want(fills, &a->om.meta, i, FILLS_FOR_READ);
}

/* Asks for the chunks after index, up to fill-parallelism of them, once each. */
static void read_ahead(struct assembler *a, struct fills *fills)
{
	uint64_t from, to, depth = a->cp->d->cfg.fill_parallelism;

	chunkmap_span(a->om.meta.size, a->om.meta.chunk_size, a->pos, a->last, &from, &to);
	if (a->asked <= a->index)
		a->asked = a->index + 1;
	while (a->asked <= to && a->asked < a->index + (depth ? depth : 1))
		want_ahead(a, fills, a->asked++);
}

/* The end of what the read wants of chunk a->index: the byte after its last. */
static uint64_t part_end(const struct assembler *a)
{
	uint64_t cs = a->om.meta.chunk_size;
	uint64_t end = chunkmap_start(cs, a->index) + chunkmap_len(a->om.meta.size, cs, a->index);

	return end > a->last + 1 ? a->last + 1 : end;
}

/* A chunk the read needed that was not committed when it came to it: counted once,
 * however it is then had (followed, spilled, resumed from the origin). */
static void count_miss(struct assembler *a)
{
	if (a->missed_to > a->index)
		return;
	a->missed_to = a->index + 1;
	metric_add(M_cache_chunk_misses, 1);
}

/* The chunk a->index as a source: committed here (verified), followed here, from its
 * owner node, or fetched and then followed. A copy here is used whoever owns the chunk.
 * -ENOENT: none of them can be had (the caller resumes from the origin). */
static int open_source(struct assembler *a)
{
	struct cache *c = a->cp->cache;
	struct fills *fills = fills_of(a->cp, exchange_worker(a->x));
	struct event *ev = exchange_wake_event(a->x);
	int r;

	read_ahead(a, fills);
	for (int tries = 0; tries < 3; tries++) {
		if (cache_chunk_open(c, &a->om.meta, (uint32_t)a->index, &a->ch) == 0) {
			if (cache_chunk_verify(a->ch) == 0 &&
			    open_segment(a, a->ch->fd, a->ch->body_offset) == 0) {
				a->src = SRC_FILE;
				metric_add(M_cache_chunk_hits, 1);
				return 0;
			}
			close_source(a); /* corrupt (dropped by verify) or unreadable: refetch */
		}
		if (ev && cache_chunk_follow(c, &a->om.meta, (uint32_t)a->index, fill_wake, ev, &a->fl) == 0) {
			uint64_t off;
			int fd = cache_follower_fd(a->fl, &off);

			if (fd >= 0 && open_segment(a, fd, off) == 0) {
				a->src = SRC_FOLLOW;
				count_miss(a);
				metric_add(M_cache_chunk_follows, 1);
				return 0;
			}
			close_source(a);
			return -ENOENT;
		}
		if (a->spill && fills_spill_from(a->spill) <= a->pos) {
			a->src = SRC_SPILL;
			count_miss(a);
			return 0;
		}
		if (a->spill && fills_spill_may_reach(a->spill, a->pos))
			return -EAGAIN; /* the stream spills it soon, or stores it: wait */
		r = a->is_owner ? REMOTE_HERE
				: remote_open(a->cp, a->x, &a->om.meta, a->index, a->pos, part_end(a),
					      &a->rs);
		if (r == REMOTE_THERE) {
			a->src = SRC_PEER;
			return 0;
		}
		if (r < 0)
			break; /* its owner cannot be asked: from the origin */
		r = fills ? fills_want(fills, &a->om.meta, a->index, FILLS_FOR_READ) : -ENOMEM;
		if (r < 0)
			break;
	}
	count_miss(a); /* resumed from the origin */
	return -ENOENT;
}

/* -- SRC_PASS: the rest of the chunk's part from the origin ------------------------ */

static void pass_read_cb(struct bufferevent *bev, void *arg)
{
	struct assembler *a = arg;

	exchange_wake(a->x);
}

static void pass_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct assembler *a = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	a->is_pass_ended = true;
	exchange_wake(a->x);
}

static int open_pass(struct assembler *a)
{
	struct lotad *d = a->cp->d;
	struct cache_key k = a->om.meta.id;
	struct timeval tv = {.tv_sec = (time_t)d->cfg.origin_timeout};
	char range[64];
	struct svccreds_header h[2] = {{"Range", range}, {"If-Match", a->om.meta.etag}};

	if (!a->cp->svc)
		return -ENOKEY;
	if (!a->pass_attempts)
		metric_add(M_cache_chunk_resumes, 1);
	a->pass_end = part_end(a);
	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)a->pos,
		 (unsigned long long)(a->pass_end - 1));
	a->pass = origin_connect(origins_for(d, k.bucket), exchange_base(a->x));
	if (!a->pass)
		return -errno;
	bufferevent_setcb(a->pass, pass_read_cb, NULL, pass_event_cb, a);
	bufferevent_set_timeouts(a->pass, &tv, &tv);
	/* a slow client: the origin's socket waits, not lotad's memory */
	bufferevent_setwatermark(a->pass, EV_READ, 0, PASS_BUFFER_MAX);
	metric_add(M_origin_requests, 1);
	a->is_pass_head_done = a->is_pass_ended = false;
	a->src = SRC_PASS;
	if (svccreds_request(a->cp->svc, "GET", origins_for(d, k.bucket), &k, h, 2,
			     bufferevent_get_output(a->pass)) < 0)
		return -EINVAL;
	return bufferevent_enable(a->pass, EV_READ | EV_WRITE) < 0 ? -ENOMEM : 0;
}

/* What a pass's answer says, once its head is in (or its connection gone). */
enum pass_answer {
	PASS_BODY,     /* a 206 of exactly our range, of our version: the body follows */
	PASS_PARTIAL,  /* not the whole head yet */
	PASS_CHANGED,  /* 412: the version changed at the origin */
	PASS_BUSY,     /* a 5xx: worth another try */
	PASS_LOST,     /* the connection ended first: worth another try */
	PASS_REFUSED,  /* anything else (a 403, a malformed head, no memory) */
};

/* The pass's head: only a 206 of exactly our range, of our version, will do. */
static enum pass_answer pass_head(struct assembler *a, struct evbuffer *in)
{
	static const struct http_str get = {"GET", 3};
	size_t len = evbuffer_get_length(in), want = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	struct http_msg *m;
	enum pass_answer v = PASS_BODY;
	int r;

	if (!len)
		return a->is_pass_ended ? PASS_LOST : PASS_PARTIAL;
	if (!(m = malloc(sizeof(*m))))
		return PASS_REFUSED;
	r = http_parse_response((const char *)evbuffer_pullup(in, (ssize_t)want), want, &get, m);
	if (r == -EAGAIN && len >= HTTP_HEAD_MAX)
		v = PASS_REFUSED; /* no head in the bytes a head may take */
	else if (r == -EAGAIN)
		v = a->is_pass_ended ? PASS_LOST : PASS_PARTIAL;
	else if (r < 0)
		v = PASS_REFUSED;
	else if (m->status != 206 || m->body != HTTP_BODY_LENGTH ||
		 m->content_length != a->pass_end - a->pos) {
		svcdenied_note(a->cp->denied, a->om.meta.id.bucket, m->status);
		v = m->status == 412 ? PASS_CHANGED : m->status >= 500 ? PASS_BUSY : PASS_REFUSED;
		if (v == PASS_BUSY)
			log_info("cache: lotad's resume of %s/%s got %d", a->om.meta.id.bucket,
				 a->om.meta.id.key, m->status);
	}
	if (v == PASS_BODY) {
		evbuffer_drain(in, m->head_len);
		a->is_pass_head_done = true;
	}
	free(m);
	return v;
}

static void pass_due_cb(evutil_socket_t fd, short what, void *arg)
{
	struct assembler *a = arg;

	a->is_pass_due = true;
	exchange_wake(a->x);
}

/* The pass met a 5xx or lost its connection (why): true if it goes again from pos after
 * a back-off, false once the bounds are spent. The window counts from the first failure
 * since the last chunk part that came through, not from the pass's start: a slow client
 * may take longer than the window over one chunk. */
static bool pass_retry(struct assembler *a, enum pass_answer why)
{
	struct timeval tv;
	uint64_t ms;

	if (!a->pass_attempts)
		a->pass_started = time(NULL);
	if (a->pass_attempts >= FILLS_RETRY_MAX ||
	    time(NULL) - a->pass_started > FILLS_RETRY_WINDOW_S)
		return false;
	if (!a->pass_timer && !(a->pass_timer = evtimer_new(exchange_base(a->x), pass_due_cb, a)))
		return false;
	ms = fills_backoff_ms(a->pass_attempts++);
	tv = (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	if (evtimer_add(a->pass_timer, &tv) < 0)
		return false;
	bufferevent_free(a->pass);
	a->pass = NULL;
	metric_add(M_cache_fill_retries, 1);
	log_info("cache: lotad's resume of %s/%s at byte %llu: %s; again in %llu ms",
		 a->om.meta.id.bucket, a->om.meta.id.key, (unsigned long long)a->pos,
		 why == PASS_BUSY ? "the origin answered 5xx" : "its connection failed",
		 (unsigned long long)ms);
	return true;
}

static enum mover_result pump_pass(struct assembler *a, struct evbuffer *out)
{
	struct evbuffer *in;
	size_t n;

	if (!a->pass) {
		if (!a->is_pass_due)
			return MOVER_WAIT; /* the back-off runs */
		a->is_pass_due = false;
		if (open_pass(a) < 0) {
			a->x->cut_why = "the origin refused lotad's resume";
			return MOVER_CUT;
		}
	}
	in = bufferevent_get_input(a->pass);
	if (!a->is_pass_head_done) {
		enum pass_answer v = pass_head(a, in);

		if (v == PASS_PARTIAL)
			return MOVER_WAIT;
		if ((v == PASS_BUSY || v == PASS_LOST) && pass_retry(a, v))
			return MOVER_WAIT;
		if (v != PASS_BODY) {
			a->x->cut_why = v == PASS_CHANGED ? "the object changed at the origin mid-read"
							  : "the origin refused lotad's resume";
			return MOVER_CUT;
		}
	}
	n = evbuffer_get_length(in);
	if (n > a->pass_end - a->pos)
		n = (size_t)(a->pass_end - a->pos);
	if (evbuffer_get_length(out) >= MEM_QUEUE_MAX)
		return MOVER_WAIT;
	if (n > MEM_QUEUE_MAX - evbuffer_get_length(out))
		n = MEM_QUEUE_MAX - evbuffer_get_length(out);
	evbuffer_remove_buffer(in, out, n);
	a->pos += n;
	spill_skip(a);
	exchange_count_out(a->x, n);
	metric_add(M_bytes_from_origin, n);
	metric_add(M_bytes_from_origin_relay, n);
	if (a->pos == a->pass_end)
		return MOVER_DONE; /* this chunk's part is through */
	if (!evbuffer_get_length(in) && a->is_pass_ended) {
		if (pass_retry(a, PASS_LOST))
			return MOVER_WAIT; /* the rest, from pos */
		a->x->cut_why = "the origin closed lotad's resume early";
		return MOVER_CUT;
	}
	return MOVER_WAIT;
}

/* -- SRC_SPILL: what the adopted stream could not store ------------------------------- */

/* The reader had bytes below pos from elsewhere: the spill's copies of them go, so that
 * the stream, paced by the spill, never waits for bytes the reader will not take. */
static void spill_skip(struct assembler *a)
{
	uint64_t from;
	struct evbuffer *buf;
	size_t n;

	if (!a->spill || fills_spill_from(a->spill) >= a->pos)
		return;
	buf = fills_spill_buf(a->spill, &from);
	n = (size_t)(a->pos - from) < evbuffer_get_length(buf) ? (size_t)(a->pos - from)
								: evbuffer_get_length(buf);
	evbuffer_drain(buf, n);
	fills_spill_consumed(a->spill, n);
}

static enum mover_result pump_spill(struct assembler *a, struct evbuffer *out, uint64_t end)
{
	uint64_t from;
	struct evbuffer *buf;
	size_t n;

	spill_skip(a);
	buf = fills_spill_buf(a->spill, &from);
	if (from < a->pos)
		return MOVER_WAIT; /* still bytes below pos to come and go */
	n = evbuffer_get_length(buf);
	if (n > end - a->pos)
		n = (size_t)(end - a->pos);
	if (evbuffer_get_length(out) >= MEM_QUEUE_MAX)
		return MOVER_WAIT;
	if (n > MEM_QUEUE_MAX - evbuffer_get_length(out))
		n = MEM_QUEUE_MAX - evbuffer_get_length(out);
	evbuffer_remove_buffer(buf, out, n);
	fills_spill_consumed(a->spill, n);
	a->pos += n;
	exchange_count_out(a->x, n);
	if (a->pos == end)
		return MOVER_DONE;
	if (!evbuffer_get_length(buf) && fills_spill_is_done(a->spill)) {
		a->x->cut_why = "the origin's body ended early";
		return MOVER_CUT;
	}
	return MOVER_WAIT;
}

/* -- SRC_PEER: the chunk from its owner node ------------------------------------------ */

static enum mover_result pump_peer(struct assembler *a, struct evbuffer *out)
{
	uint64_t n = 0;
	enum remote_result r;

	if (evbuffer_get_length(out) >= MEM_QUEUE_MAX)
		return MOVER_WAIT; /* the client's write callback runs us again */
	r = remote_pump(a->cp, a->rs, out, &n);

	a->pos += n;
	exchange_count_out(a->x, n);
	spill_skip(a);
	switch (r) {
	case REMOTE_DONE: return MOVER_DONE;
	case REMOTE_WAIT: return MOVER_WAIT;
	case REMOTE_CUT: a->x->cut_why = "client write failed"; return MOVER_CUT;
	case REMOTE_FAILED: break;
	}
	/* The owner failed or refused: the rest of the chunk's part from the origin, from
	 * the byte the client gets next. */
	close_source(a);
	if (open_pass(a) == 0)
		return MOVER_WAIT;
	a->x->cut_why = "a peer failed and the origin cannot be asked";
	return MOVER_CUT;
}

/* -- the mover ------------------------------------------------------------------------ */

/* Queues the chunk's bytes up to `upto` (an object offset) from its file. */
static int queue_file(struct assembler *a, struct evbuffer *out, uint64_t upto)
{
	uint64_t cs = a->om.meta.chunk_size, start = chunkmap_start(cs, a->index);

	while (a->pos < upto && evbuffer_get_length(out) < QUEUE_MAX) {
		uint64_t n = upto - a->pos;

		if (n > QUEUE_MAX)
			n = QUEUE_MAX;
		if (evbuffer_add_file_segment(out, a->seg, (ev_off_t)(a->body_offset + a->pos - start),
					      (ev_off_t)n) < 0)
			return -ENOMEM;
		a->pos += n;
		exchange_count_out(a->x, n);
		metric_add(M_cache_bytes_served, n);
	}
	spill_skip(a);
	return 0;
}

/* How far chunk a->index's bytes can be queued now; -errno if its fill failed. */
static int readable_upto(struct assembler *a, uint64_t chunk_end, uint64_t *upto)
{
	uint64_t start = chunkmap_start(a->om.meta.chunk_size, a->index);
	struct cache_fill_status st;

	*upto = chunk_end;
	if (a->src != SRC_FOLLOW)
		return 0;
	cache_follower_status(a->fl, &st);
	if (start + st.written < chunk_end)
		*upto = start + st.written;
	if (st.state == CACHE_FILL_ABORTED && *upto < chunk_end)
		return st.error ? st.error : -EIO;
	return 0;
}

static enum mover_result pump_chunk(struct assembler *a, struct evbuffer *out)
{
	uint64_t end = part_end(a);
	uint64_t upto;
	int r;

	/* Corked while committed files go out and this is the worker's only body: on
	 * loopback one corked sendfile stream ran 1.4x faster, eight of them 0.88x. From one
	 * committed chunk to the next it stays on (uncorking at each chunk's end cost 15%):
	 * the next one's bytes are there at once; any other source, or a wait, uncorks. */
	exchange_cork_client(a->x, a->src == SRC_FILE && a->sending && *a->sending == 1);
	if (a->src == SRC_PASS)
		return pump_pass(a, out);
	if (a->src == SRC_SPILL)
		return pump_spill(a, out, end);
	if (a->src == SRC_PEER)
		return pump_peer(a, out);
	r = readable_upto(a, end, &upto);
	if (r == -ESTALE) {
		a->x->cut_why = "the object changed at the origin mid-read";
		return MOVER_CUT;
	}
	/* What a fill wrote is good even if it failed later. */
	if (queue_file(a, out, upto) < 0)
		return MOVER_CUT;
	if (a->pos == end)
		return MOVER_DONE;
	if (r < 0 && a->pos >= upto) {
		/* (>=: a fill followed again after another failed may have failed short of
		 * what the reader had already sent) */
		/* The fill failed (a full disk, a reset): the rest from the adopted stream's
		 * spill, or from the origin. */
		close_source(a);
		if (a->spill && fills_spill_from(a->spill) <= a->pos) {
			a->src = SRC_SPILL; /* it holds pos, even once the stream has ended */
			return pump_spill(a, out, end);
		}
		if (a->spill && fills_spill_may_reach(a->spill, a->pos))
			return MOVER_WAIT; /* open_source takes the spill once it holds pos */
		if (a->reopens++ < REOPENS_MAX) {
			/* another fill may hold the chunk now (the stream took it back): open it
			 * again; open_source falls back to the origin if nothing has it */
			exchange_wake(a->x);
			return MOVER_WAIT;
		}
		return open_pass(a) == 0 ? MOVER_WAIT : MOVER_CUT;
	}
	return MOVER_WAIT;
}

static enum mover_result assemble_pump(struct exchange *x, void *state)
{
	struct assembler *a = state;
	struct evbuffer *out = exchange_client_out(x);

	while (a->pos <= a->last) {
		enum mover_result r;

		if (evbuffer_get_length(out) >= QUEUE_MAX)
			return MOVER_WAIT;
		if (a->src == SRC_NONE) {
			int r = open_source(a);

			if (r == -EAGAIN) {
				/* nothing to send for a while: the last segment goes now */
				exchange_cork_client(x, false);
				return MOVER_WAIT;
			}
			if (r < 0 && open_pass(a) < 0) {
				x->cut_why = "no copy of the chunk and no way to fetch it";
				return MOVER_CUT;
			}
		}
		r = pump_chunk(a, out);
		if (r != MOVER_DONE)
			return r;
		close_source(a);
		a->index++;
		a->reopens = 0;
		a->pass_attempts = 0;
	}
	return MOVER_DONE;
}

static void assemble_free(void *state)
{
	struct assembler *a = state;

	if (!a)
		return;
	close_source(a);
	if (a->pass_timer)
		event_free(a->pass_timer);
	fills_spill_release(a->spill);
	objmeta_free(&a->om);
	if (a->sending)
		(*a->sending)--;
	free(a);
}

static const struct mover_ops assemble_ops = {assemble_pump, assemble_free};

static int start(struct exchange *x, struct cachepath *cp, const struct cache_meta *m,
		 uint64_t first, uint64_t last, struct fills_spill *spill, bool is_owner)
{
	struct assembler *a = calloc(1, sizeof(*a));
	uint64_t from, to;
	int id;

	if (!a || objmeta_copy(&a->om, m) < 0) {
		if (a)
			objmeta_free(&a->om);
		free(a);
		fills_spill_release(spill);
		return -ENOMEM;
	}
	a->spill = spill;
	a->x = x;
	a->cp = cp;
	a->pos = first;
	a->last = last;
	a->is_owner = is_owner;
	id = exchange_worker(x)->id;
	if (id >= 0 && id < CACHEPATH_WORKERS_MAX) {
		a->sending = &cp->sending[id];
		(*a->sending)++;
	}
	chunkmap_span(m->size, m->chunk_size, first, last, &from, &to);
	a->index = from;
	exchange_serve(x, &assemble_ops, a);
	return 0;
}

int assemble_start(struct exchange *x, struct cachepath *cp, const struct cache_meta *m,
		   uint64_t first, uint64_t last, struct fills_spill *spill)
{
	return start(x, cp, m, first, last, spill, false);
}

int assemble_start_owner(struct exchange *x, struct cachepath *cp, const struct cache_meta *m,
			 uint64_t first, uint64_t last)
{
	return start(x, cp, m, first, last, NULL, true);
}

bool assemble_can_serve(struct cachepath *cp, const struct cache_meta *m, uint64_t first,
			uint64_t last)
{
	uint64_t from, to;
	enum cache_chunk_state st;

	if (cp->svc && !svcdenied_has(cp->denied, m->id.bucket))
		return true;
	chunkmap_span(m->size, m->chunk_size, first, last, &from, &to);
	for (uint64_t i = from; i <= to; i++)
		if (cache_chunk_states(cp->cache, m, (uint32_t)i, 1, &st) < 0 || st == CACHE_CHUNK_ABSENT)
			return false;
	return true;
}

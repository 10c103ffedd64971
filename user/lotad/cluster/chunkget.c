/* This node asking the others for chunks (the cache path's remote.h): a chunk another
 * node owns is asked of it on its peer port, signed, naming the exact version, and its
 * bytes go on to the client as they come: once the head is read and nothing is queued for
 * the client, owner socket -> pipe -> client socket by splice(2), never through user
 * space. A connection whose chunk came whole is kept for the next chunk asked of that
 * owner (the worker's pool, originpool.h): no handshake and no slow start per chunk.
 * An owner that refuses, dies or freezes is given
 * up at once: the assembler takes the rest of the chunk from the origin at the byte the
 * client gets next, and the owner is marked down, so that the next chunks go to the next
 * HRW owner. A prefetch only asks the owner to begin its fill. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cache.h"
#include "cachepath/remote.h"
#include "chunkmap.h"
#include "cluster/chunkwire.h"
#include "cluster/cluster-int.h"
#include "exchange/originpool.h"
#include "http.h"
#include "log.h"
#include "lotad.h"

/* Bytes read ahead of the client from an owner: the socket is not read past this. */
#define PEER_QUEUE_MAX (4 * 1024 * 1024)
/* Bytes read from an owner's socket at once. A bufferevent would read 4 KiB at a time
 * (libevent 2.1's EVBUFFER_MAX_READ) and wake the exchange for each: a sixth of what
 * the link carries. */
#define PEER_READ_MAX (1024 * 1024)
/* The pipe of a spliced chunk, and the pipefuls moved per pump before others get a turn. */
#define PEER_PIPE_SIZE (1024 * 1024)
#define PEER_SPLICE_TURN 8
#define PEER_SPLICE_MIN (64 * 1024) /* below this the bytes go through user space */
/* How often a source whose owner has not finished checks that it is still up. */
#define OWNER_CHECK_S 1

/* A chunk asked of its owner: the request goes out by a bufferevent (connect, write),
 * the answer comes in by reads of our own into in. */
struct remote_src {
	struct cluster *cl;
	struct exchange *x;
	struct peer_target owner;
	const struct cache_meta *m; /* the version asked for (the assembler's, outlives us) */
	struct chunkwire_span span;
	struct originpool *pool;    /* the worker's: where a clean connection goes back */
	bool is_reused;		    /* the connection came from the pool ... */
	bool is_fresh_only;	    /* ... and was closed unanswered: the next one is new */
	bool is_keep_alive;	    /* the owner's head did not say Connection: close */
	struct bufferevent *bev;
	struct event *rd, *timer;
	struct evbuffer *in;
	struct timeval idle;  /* the longest silence of the owner: the origin timeout */
	uint64_t want, moved; /* body bytes asked for, and those gone to the client */
	bool is_sent, is_reading, is_head_done, is_ended, is_given_up;
	/* splicing: owner -> pr/pw -> client; sr/cw wake the exchange once either is ready */
	bool is_splicing, is_client_stalled;
	int pr, pw;
	size_t pipe_cap, in_pipe;
	struct event *sr, *cw;
};

static bool get_is_spread(void *arg)
{
	struct cluster *cl = arg;

	return peers_has_live_peer(cl->peers);
}

static int owner_of(struct cluster *cl, const struct cache_meta *m, uint64_t index,
		    struct peer_target *t)
{
	return peers_chunk_owner(cl->peers, m->id.bucket, m->id.key, m->id.version, index, t);
}

static bool get_is_remote(void *arg, const struct cache_meta *m, uint64_t index)
{
	struct peer_target t;

	return owner_of(arg, m, index, &t) == 1;
}

static void src_end(struct remote_src *s)
{
	s->is_ended = true;
	if (s->is_reading)
		event_del(s->rd);
	s->is_reading = false;
	exchange_wake(s->x);
}

/* Reads (while below PEER_QUEUE_MAX) only once the request is out and after the pump
 * made room: the owner's socket is the only backpressure it gets. */
static void want_read(struct remote_src *s)
{
	bool is_room = evbuffer_get_length(s->in) < PEER_QUEUE_MAX && !s->is_splicing;

	if (s->is_ended || is_room == s->is_reading)
		return;
	if (is_room)
		event_add(s->rd, &s->idle);
	else
		event_del(s->rd);
	s->is_reading = is_room;
}

static void src_readable(evutil_socket_t fd, short what, void *arg)
{
	struct remote_src *s = arg;
	struct evbuffer_iovec v[2];
	int nv = evbuffer_reserve_space(s->in, PEER_READ_MAX, v, 2);
	ssize_t n;

	if (what & EV_TIMEOUT || nv < 1) {
		src_end(s);
		return;
	}
	n = readv(fd, (struct iovec *)v, nv); /* evbuffer_iovec is laid out as iovec */
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		evbuffer_commit_space(s->in, v, 0);
		return;
	}
	if (n <= 0) {
		evbuffer_commit_space(s->in, v, 0);
		src_end(s);
		return;
	}
	if ((size_t)n <= v[0].iov_len) {
		v[0].iov_len = (size_t)n;
		nv = 1;
	} else {
		v[1].iov_len = (size_t)n - v[0].iov_len;
	}
	evbuffer_commit_space(s->in, v, nv);
	want_read(s);
	exchange_wake(s->x);
}

/* The request is out (or failed): from here on the answer is read. */
static void src_written(struct bufferevent *bev, void *arg)
{
	want_read(arg);
}

static void src_event(struct bufferevent *bev, short what, void *arg)
{
	if (!(what & BEV_EVENT_CONNECTED))
		src_end(arg);
}

/* A frozen owner keeps its sockets open and answers nothing: once the probes mark it
 * down, waiting longer is pointless. */
static void src_check(evutil_socket_t fd, short what, void *arg)
{
	struct remote_src *s = arg;

	if (s->is_ended || peers_is_up(s->cl->peers, s->owner.id))
		return;
	log_warn("owner %s of a chunk of %s/%s is down mid-transfer: the rest from the origin",
		 s->owner.id, s->x->s3.bucket, s->x->s3.key);
	s->is_given_up = true;
	src_end(s);
}

/* The chunk came whole, nothing after it, and the owner keeps the connection. */
static bool is_reusable(const struct remote_src *s)
{
	return s->pool && s->is_head_done && s->is_keep_alive && s->moved == s->want &&
	       !s->in_pipe && !s->is_ended && !s->is_given_up && !evbuffer_get_length(s->in);
}

static void get_close(struct remote_src *s)
{
	if (!s)
		return;
	if (s->is_sent)
		peers_count_sent(s->cl->peers, &s->owner, s->moved);
	if (s->timer)
		event_free(s->timer);
	if (s->rd)
		event_free(s->rd);
	if (s->sr)
		event_free(s->sr);
	if (s->cw)
		event_free(s->cw);
	if (s->pr >= 0)
		close(s->pr);
	if (s->pw >= 0)
		close(s->pw);
	if (s->bev && is_reusable(s))
		originpool_keep(s->pool, &s->owner.addr, s->owner.addrlen, s->bev);
	else if (s->bev)
		bufferevent_free(s->bev);
	if (s->in)
		evbuffer_free(s->in);
	free(s);
}

/* The request on a connection to the owner: one from the pool if it has one, else new. */
static int connect_src(struct remote_src *s)
{
	struct event_base *base = exchange_base(s->x);
	struct bufferevent *bev = s->is_fresh_only ? NULL : originpool_take(s->pool, &s->owner.addr,
									  s->owner.addrlen);
	int r;

	s->is_reused = bev != NULL;
	if (bev) {
		bufferevent_disable(bev, EV_READ); /* the answer is read by rd, not the bufferevent */
		peers_count(s->cl->peers, PEERS_CHUNKS_SENT_KEPT, 1);
	} else {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	s->bev = bev;
	if (!s->bev)
		return -ENOMEM;
	r = peernote_head(s->cl, "GET", CHUNKWIRE_CHUNK, &s->owner, &s->m->id, s->m, &s->span, true,
			  bufferevent_get_output(s->bev));
	if (r < 0)
		return r;
	bufferevent_setcb(s->bev, NULL, src_written, src_event, s);
	bufferevent_set_timeouts(s->bev, NULL, &s->idle);
	if (!s->is_reused && bufferevent_socket_connect(s->bev, (struct sockaddr *)&s->owner.addr,
							(int)s->owner.addrlen) < 0) {
		peers_report_unreachable(s->cl->peers, &s->owner);
		return -ECONNREFUSED;
	}
	s->rd = event_new(base, bufferevent_getfd(s->bev), EV_READ | EV_PERSIST, src_readable, s);
	if (!s->rd)
		return -ENOMEM;
	return bufferevent_enable(s->bev, EV_WRITE) < 0 ? -ENOMEM : 0;
}

/* A kept connection the owner closed before answering (it restarted, or its idle time
 * ran out as we took it): the request goes again on a new one, which is the real test of
 * the owner. */
static int reconnect_src(struct remote_src *s)
{
	event_free(s->rd);
	s->rd = NULL;
	bufferevent_free(s->bev);
	s->bev = NULL;
	s->is_ended = s->is_reading = false;
	s->is_fresh_only = true;
	return connect_src(s);
}

static int get_open(void *arg, struct exchange *x, const struct cache_meta *m, uint64_t index,
		    uint64_t pos, uint64_t end, struct remote_src **out)
{
	struct cluster *cl = arg;
	struct chunkwire_span span = {index, pos, end - 1};
	struct timeval every = {OWNER_CHECK_S, 0};
	struct remote_src *s;
	int r;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cl = cl;
	s->x = x;
	s->m = m;
	s->span = span;
	s->pool = exchange_worker(x)->pool;
	s->want = end - pos;
	s->pr = s->pw = -1;
	if (pos >= end || owner_of(cl, m, index, &s->owner) != 1) {
		free(s);
		return REMOTE_HERE;
	}
	s->idle = (struct timeval){.tv_sec = (time_t)exchange_lotad(x)->cfg.origin_timeout};
	s->timer = event_new(exchange_base(x), -1, EV_PERSIST, src_check, s);
	s->in = evbuffer_new();
	r = s->timer && s->in ? connect_src(s) : -ENOMEM;
	if (r == 0)
		event_add(s->timer, &every);
	if (r < 0) {
		get_close(s);
		return r;
	}
	peers_count(cl->peers, PEERS_CHUNKS_SENT, 1);
	s->is_sent = true;
	*out = s;
	return REMOTE_THERE;
}

/* The owner's head: a 200 of exactly the bytes asked for will do. -EAGAIN: not all here;
 * -EPROTO: any other answer (a refusal, a 503 of an owner that cannot serve it). */
static int src_head(struct remote_src *s, struct evbuffer *in)
{
	static const struct http_str get = {"GET", 3};
	size_t len = evbuffer_get_length(in), want = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	struct http_msg *m = malloc(sizeof(*m));
	int r, status = 0;

	if (!m)
		return -ENOMEM;
	r = http_parse_response((const char *)evbuffer_pullup(in, (ssize_t)want), want, &get, m);
	if (r == 0)
		status = m->status;
	if (r == 0 &&
	    (status != 200 || m->body != HTTP_BODY_LENGTH || m->content_length != s->want))
		r = -EPROTO;
	if (r == -EAGAIN && len >= HTTP_HEAD_MAX)
		r = -EPROTO; /* no head in the bytes a head may take */
	if (r == 0) {
		evbuffer_drain(in, m->head_len);
		s->is_head_done = true;
		s->is_keep_alive = m->keep_alive;
	} else if (r != -EAGAIN) {
		log_warn("owner %s answered %d to a chunk of %s/%s: the chunk from the origin",
			 s->owner.id, status, s->x->s3.bucket, s->x->s3.key);
		r = -EPROTO;
	}
	free(m);
	return r;
}

/* The owner failed: counted, and marked down if it never answered (refused the
 * connection, reset it): the next chunks then go to the next owner at once. One that
 * answered and then stopped is left to the probes: it may be up and have cut us for its
 * own reasons (a client of ours too slow for its write timeout). */
static enum remote_result src_failed(struct remote_src *s, bool is_refusal)
{
	if (is_refusal || s->is_given_up) {
		peers_count_fallback(s->cl->peers, &s->owner);
		if (!is_refusal)
			peers_count(s->cl->peers, PEERS_CHUNK_FAILOVERS, 1);
		return REMOTE_FAILED;
	}
	peers_count(s->cl->peers, PEERS_CHUNK_FAILOVERS, 1);
	log_warn("owner %s of a chunk of %s/%s went away after %llu of %llu bytes: the rest "
		 "from the origin",
		 s->owner.id, s->x->s3.bucket, s->x->s3.key, (unsigned long long)s->moved,
		 (unsigned long long)s->want);
	if (!s->is_head_done)
		peers_report_unreachable(s->cl->peers, &s->owner);
	else
		peers_count_fallback(s->cl->peers, &s->owner);
	return REMOTE_FAILED;
}

/* -- splicing the body ------------------------------------------------------------------ */

static void splice_ready(evutil_socket_t fd, short what, void *arg)
{
	struct remote_src *s = arg;

	if ((what & EV_TIMEOUT) && fd == exchange_client_fd(s->x))
		s->is_client_stalled = true;
	else if (what & EV_TIMEOUT)
		s->is_ended = true; /* the owner fell silent */
	exchange_wake(s->x);
}

/* From here on the body goes by splice: no more reads into in (what it holds goes out
 * first). false if splice cannot be used (then the body goes on through in). */
static bool begin_splice(struct remote_src *s)
{
	struct event_base *base = exchange_base(s->x);
	int fds[2], sz;

	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return false;
	s->pr = fds[0];
	s->pw = fds[1];
	sz = fcntl(s->pw, F_SETPIPE_SZ, PEER_PIPE_SIZE);
	s->pipe_cap = sz > 0 ? (size_t)sz : 65536;
	s->sr = event_new(base, bufferevent_getfd(s->bev), EV_READ, splice_ready, s);
	s->cw = event_new(base, exchange_client_fd(s->x), EV_WRITE, splice_ready, s);
	if (!s->sr || !s->cw)
		return false;
	if (s->is_reading)
		event_del(s->rd);
	s->is_reading = false;
	s->is_splicing = true;
	return true;
}

/* Owner socket -> pipe -> client socket, a pipeful at a time, a bounded turn. */
static enum remote_result splice_body(struct remote_src *s, uint64_t *moved)
{
	struct lotad *d = exchange_lotad(s->x);
	struct timeval ctv = {.tv_sec = (time_t)d->cfg.client_timeout};
	int cfd = exchange_client_fd(s->x);

	for (int turn = 0; turn < PEER_SPLICE_TURN && s->moved < s->want; turn++) {
		ssize_t n;

		if (!s->in_pipe) {
			uint64_t left = s->want - s->moved;
			size_t ask = left < s->pipe_cap ? (size_t)left : s->pipe_cap;

			n = splice(bufferevent_getfd(s->bev), NULL, s->pw, NULL, ask,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n < 0 && errno == EAGAIN) {
				event_add(s->sr, &s->idle);
				return REMOTE_WAIT;
			}
			if (n <= 0)
				return src_failed(s, false); /* the owner closed or failed mid-chunk */
			s->in_pipe = (size_t)n;
		}
		n = splice(s->pr, NULL, cfd, NULL, s->in_pipe, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n < 0 && errno == EAGAIN) {
			event_add(s->cw, &ctv);
			return REMOTE_WAIT;
		}
		if (n <= 0)
			return REMOTE_CUT;
		s->in_pipe -= (size_t)n;
		s->moved += (uint64_t)n;
		*moved += (uint64_t)n;
		peers_count(s->cl->peers, PEERS_CHUNK_BYTES, (uint64_t)n);
		metric_add(M_peer_bytes_spliced, (uint64_t)n);
	}
	if (s->moved == s->want)
		return REMOTE_DONE;
	exchange_wake(s->x); /* a turn is over: the rest after the worker's other work */
	return REMOTE_WAIT;
}

/* Body bytes already read into in go to the client through out; the rest, once out is
 * empty (woken by the client's write callback), by splice. */
static enum remote_result get_pump(struct remote_src *s, struct evbuffer *out, uint64_t *moved)
{
	struct evbuffer *in = s->in;
	size_t n;
	int r;

	*moved = 0;
	if (s->is_given_up)
		return src_failed(s, false);
	if (s->is_client_stalled)
		return REMOTE_CUT;
	if (!s->is_head_done) {
		r = evbuffer_get_length(in) ? src_head(s, in) : -EAGAIN;
		if (r == -EAGAIN && !s->is_ended)
			return REMOTE_WAIT;
		if (r == -EAGAIN && s->is_reused && !evbuffer_get_length(in) && !s->is_given_up) {
			if (reconnect_src(s) < 0)
				return src_failed(s, false);
			return REMOTE_WAIT;
		}
		if (r < 0)
			return src_failed(s, r == -EPROTO);
		if (exchange_lotad(s->x)->is_splice && s->want - evbuffer_get_length(in) >= PEER_SPLICE_MIN)
			begin_splice(s);
	}
	n = evbuffer_get_length(in);
	if (n > s->want - s->moved)
		n = (size_t)(s->want - s->moved);
	if (n > PEER_QUEUE_MAX)
		n = PEER_QUEUE_MAX;
	evbuffer_remove_buffer(in, out, n);
	s->moved += n;
	*moved = n;
	peers_count(s->cl->peers, PEERS_CHUNK_BYTES, n);
	if (s->moved == s->want)
		return REMOTE_DONE;
	if (s->is_splicing) {
		if (evbuffer_get_length(in) || evbuffer_get_length(out))
			return REMOTE_WAIT;
		return s->is_ended && !s->in_pipe ? src_failed(s, false) : splice_body(s, moved);
	}
	want_read(s);
	if (s->is_ended && !evbuffer_get_length(in))
		return src_failed(s, false);
	return REMOTE_WAIT;
}

static int get_prefetch(void *arg, struct worker *w, const struct cache_meta *m, uint64_t index)
{
	struct cluster *cl = arg;
	struct peer_target t;
	uint64_t start = chunkmap_start(m->chunk_size, index);
	struct chunkwire_span span = {index, start,
				      start + chunkmap_len(m->size, m->chunk_size, index) - 1};

	if (owner_of(cl, m, index, &t) != 1)
		return REMOTE_HERE;
	if (peernote_send(cl, w->base, &t, "HEAD", CHUNKWIRE_CHUNK, &m->id, m, &span) < 0)
		return REMOTE_HERE;
	peers_count(cl->peers, PEERS_PREFETCHES_SENT, 1);
	return REMOTE_THERE;
}

const struct remote_ops chunkget_ops = {
    .is_spread = get_is_spread,
    .is_remote = get_is_remote,
    .open = get_open,
    .pump = get_pump,
    .close = get_close,
    .prefetch = get_prefetch,
};

/* Zero-copy relay of a response body: once the head has gone out, the rest of a
 * Content-Length body from a plain-TCP upstream (the origin over http://, or an owner
 * node's peer port) moves upstream socket -> pipe -> client socket with splice(2), and
 * on a miss tee(2) copies each pipeful by reference into a second pipe that is spliced
 * into the cache file. The bytes never enter user space.
 *
 * One pipeful at a time: read up to the pipe's size, tee it and write it to the cache
 * file, then drain it to the client before reading more. tee duplicates from the head of
 * the pipe, so the pipe must hold only bytes not yet teed; draining it first keeps that
 * true. Socket buffers on both sides still overlap reading and writing. Never used on
 * the client's own socket for reading: with sockmap, redirected bytes sit in a queue
 * that splice does not see. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange/exchange-int.h"
#include "log.h"
#include "exchange/origin.h"
#include "lotad.h"
#include "metrics.h"

#define SPLICE_PIPE_SIZE (1024 * 1024)
#define SPLICE_LOWAT (256 * 1024)

struct splicer {
	int pr, pw;	/* upstream -> client */
	int tr, tw;	/* tee copy -> cache file (-1 without a fill) */
	size_t pipe_cap;
	uint64_t in_pipe;  /* bytes in pr not yet sent to the client */
	uint64_t to_read;  /* body bytes still to come from upstream */
	struct event *up;  /* upstream readable */
	struct event *cl;  /* client writable */
	bool waiting_up, waiting_cl;
	int lowat; /* SO_RCVLOWAT set on the upstream socket, 0: untouched */
	const char *failed; /* a timeout fired: why the body is cut */
};

static void up_cb(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;

	x->sp->waiting_up = false;
	if (what & EV_TIMEOUT) {
		metric_add(M_origin_timeouts, 1);
		x->sp->failed = "upstream silent mid-body";
	}
	x->run(x);
}

static void cl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;

	x->sp->waiting_cl = false;
	if (what & EV_TIMEOUT) {
		metric_add(M_client_timeouts, 1);
		x->sp->failed = "client stopped reading";
	}
	x->run(x);
}

void splice_free(struct splicer *sp)
{
	if (!sp)
		return;
	if (sp->up)
		event_free(sp->up);
	if (sp->cl)
		event_free(sp->cl);
	for (int *fd = &sp->pr; fd <= &sp->tw; fd++)
		if (*fd >= 0)
			close(*fd);
	free(sp);
}

static int new_pipe(int *r, int *w, size_t *cap)
{
	int fds[2];
	int sz;

	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	*r = fds[0];
	*w = fds[1];
	sz = fcntl(*w, F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
	if (sz < 0)
		sz = fcntl(*w, F_GETPIPE_SZ);
	if (cap && (!*cap || (size_t)sz < *cap))
		*cap = sz > 0 ? (size_t)sz : 65536;
	return 0;
}

/* Can the rest of this response go by splice? Only a Content-Length body from a plain
 * TCP upstream, with nothing buffered yet, to a route that can tee spliced bytes (or
 * takes none). */
bool splice_is_eligible(const struct exchange *x)
{
	const struct conn *c = x->c;

	if (!c->w->d->is_splice || x->resp_body != HTTP_BODY_LENGTH || x->resp_left < SPLICE_MIN)
		return false;
	if (x->rt->on_body && !x->rt->on_body_pipe)
		return false;
	/* TLS bytes must be decrypted in user space. */
	if (!x->up.id[0] && x->origin->is_tls)
		return false;
	return evbuffer_get_length(bufferevent_get_input(c->obev)) == 0;
}

int splice_start(struct exchange *x)
{
	struct conn *c = x->c;
	struct splicer *sp;
	size_t cap = 0;

	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->pr = sp->pw = sp->tr = sp->tw = -1;
	if (new_pipe(&sp->pr, &sp->pw, &cap) < 0 ||
	    (x->rt->on_body_pipe && new_pipe(&sp->tr, &sp->tw, &cap) < 0))
		goto fail;
	sp->pipe_cap = cap;
	sp->to_read = x->resp_left;
	sp->up = event_new(c->w->base, bufferevent_getfd(c->obev), EV_READ, up_cb, x);
	sp->cl = event_new(c->w->base, bufferevent_getfd(c->cbev), EV_WRITE, cl_cb, x);
	if (!sp->up || !sp->cl)
		goto fail;
	x->sp = sp;
	bufferevent_disable(c->obev, EV_READ);
	c->origin_read_paused = false;
	/* The client's bufferevent must be empty before we write to its socket directly:
	 * its write callback now fires only once everything queued is out. */
	bufferevent_setwatermark(c->cbev, EV_WRITE, 0, 0);
	return 0;
fail:
	splice_free(sp);
	return -EAGAIN;
}

static void wait_on(struct event *ev, bool *flag, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	if (*flag)
		return;
	*flag = true;
	event_add(ev, &tv);
}

/* Upstream -> pipe, and the tee into the route (the cache file). 1: bytes arrived, 0:
 * would block, negative: failed (the upstream closed early, ...). */
static int fill_pipe(struct exchange *x)
{
	struct splicer *sp = x->sp;
	size_t want = sp->pipe_cap;
	ssize_t n;

	if (want > sp->to_read)
		want = (size_t)sp->to_read;
	n = splice(bufferevent_getfd(x->c->obev), NULL, sp->pw, NULL, want,
		   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	sp->in_pipe = (uint64_t)n;
	sp->to_read -= (uint64_t)n;
	metric_add(M_bytes_from_origin, (uint64_t)n);
	if (x->rt->on_body_pipe)
		x->rt->on_body_pipe(x, sp->pr, sp->tr, sp->tw, (size_t)n);
	return 1;
}

/* Wake for the upstream only once a good share of a pipeful is there (or the body's
 * end), not for every segment: fewer, larger splices. */
static void lowat(struct exchange *x, struct splicer *sp)
{
	int v = (int)(sp->to_read < SPLICE_LOWAT ? sp->to_read : SPLICE_LOWAT);

	if (v != sp->lowat) {
		setsockopt(bufferevent_getfd(x->c->obev), SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v));
		sp->lowat = v;
	}
}

/* The body is through: hand the sockets back to their bufferevents. */
static void splice_done(struct exchange *x)
{
	struct conn *c = x->c;
	int one = 1;

	if (x->sp->lowat > 1)
		setsockopt(bufferevent_getfd(c->obev), SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	splice_free(x->sp);
	x->sp = NULL;
	bufferevent_setwatermark(c->cbev, EV_WRITE, CONN_PIPE_HIGH / 2, 0);
	bufferevent_enable(c->obev, EV_READ);
	x->resp_left = 0;
}

/* Upstream -> pipe -> client, a pipeful at a time (tee needs the pipe to hold only
 * bytes not yet teed: draining it before reading more keeps that true). */
enum xinput splice_pump(struct exchange *x)
{
	struct splicer *sp = x->sp;
	struct conn *c = x->c;
	ssize_t n;
	int r;

	if (sp->failed) {
		x->cut_why = sp->failed;
		return XI_CUT;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)))
		return XI_WAIT; /* the client's write callback runs us once the head is out */
	for (;;) {
		if (!sp->in_pipe) {
			if (!sp->to_read) {
				splice_done(x);
				return XI_DONE;
			}
			r = fill_pipe(x);
			if (r < 0) {
				metric_add(M_origin_aborts, 1);
				x->cut_why = r == -ECONNRESET ? "upstream closed mid-body"
							      : "upstream read failed mid-body";
				return XI_CUT;
			}
			if (r == 0) {
				lowat(x, sp);
				wait_on(sp->up, &sp->waiting_up,
					x->origin ? x->origin->read_ms
						  : c->w->d->cfg.origin_timeout * 1000);
				return XI_WAIT;
			}
		}
		n = splice(sp->pr, NULL, bufferevent_getfd(c->cbev), NULL, (size_t)sp->in_pipe,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n < 0 && errno == EAGAIN) {
			wait_on(sp->cl, &sp->waiting_cl, c->w->d->cfg.client_timeout * 1000);
			return XI_WAIT;
		}
		if (n <= 0) {
			metric_add(M_client_aborts, 1);
			x->cut_why = "client write failed";
			return XI_CUT;
		}
		sp->in_pipe -= (uint64_t)n;
		exchange_count_out(x, (uint64_t)n);
	}
}

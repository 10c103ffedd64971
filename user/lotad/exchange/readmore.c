/* readmore.h: a bufferevent's input filled from its socket by readv of our own, up to
 * 256 KiB a call, until the socket is drained or the caller's bound is reached. */
#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "exchange/readmore.h"

#define READ_STEP (256 * 1024) /* bytes reserved in the input per read */

/* Commits the first n bytes read into the reserved v[0..nv). */
static void commit_read(struct evbuffer *in, struct evbuffer_iovec *v, int nv, size_t n)
{
	int used = 0;

	for (; used < nv && n; used++) {
		if (v[used].iov_len > n)
			v[used].iov_len = n;
		n -= v[used].iov_len;
	}
	evbuffer_commit_space(in, v, used);
}

/* One readv into reserved space: bytes read, 0 at EAGAIN, end of stream or an error. */
static size_t read_step(struct evbuffer *in, evutil_socket_t fd, size_t want)
{
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	int nv = evbuffer_reserve_space(in, (ssize_t)want, v, 2);
	ssize_t n;

	if (nv < 1)
		return 0;
	/* The reservation may be larger than asked: read no more than want. */
	for (int i = 0; i < nv; i++) {
		size_t len = v[i].iov_len < want ? v[i].iov_len : want;

		iov[i] = (struct iovec){v[i].iov_base, len};
		want -= len;
	}
	do
		n = readv(fd, iov, nv);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		evbuffer_commit_space(in, v, 0);
		return 0;
	}
	commit_read(in, v, nv, (size_t)n);
	return (size_t)n;
}

size_t readmore(struct bufferevent *bev, size_t max)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);
	size_t got = 0;

	if (fd < 0 || !max)
		return 0;
	evbuffer_unfreeze(in, 0); /* a bufferevent's input takes bytes only from its reads */
	while (got < max) {
		size_t want = max - got < READ_STEP ? max - got : READ_STEP, n = read_step(in, fd, want);

		got += n;
		if (n < want)
			break; /* the socket is drained (or ended: libevent sees it next) */
	}
	evbuffer_freeze(in, 0);
	return got;
}

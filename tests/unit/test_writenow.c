/* writenow: a socket bufferevent's queue (memory and file segments) written at once, not
 * at the loop's next turn, and its write callback still run as after libevent's write. */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange/writenow.h"

static struct event_base *base;
static int sv[2];
static struct bufferevent *bev;
static int write_cbs;

static void write_cb(struct bufferevent *b, void *arg)
{
	write_cbs++;
}

static int setup(void)
{
	base = event_base_new();
	if (!base || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	bev = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return 1;
	bufferevent_setcb(bev, NULL, write_cb, NULL, NULL);
	bufferevent_enable(bev, EV_WRITE);
	return 0;
}

static int cleanup(void)
{
	bufferevent_free(bev);
	close(sv[0]);
	event_base_free(base);
	return 0;
}

/* What the peer end holds now, up to n bytes, into buf. */
static ssize_t peer_read(char *buf, size_t n)
{
	ssize_t r = read(sv[0], buf, n);

	return r < 0 ? 0 : r;
}

static void test_queue_goes_before_the_loop_runs(void)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	char buf[64];

	/* what the plain call does: nothing, the output's start is frozen */
	evbuffer_add(out, "head", 4);
	CU_ASSERT_EQUAL(evbuffer_write(out, sv[1]), -1);
	CU_ASSERT_EQUAL(peer_read(buf, sizeof(buf)), 0);
	write_cbs = 0;
	CU_ASSERT_EQUAL(writenow(bev), 4);
	CU_ASSERT_EQUAL(evbuffer_get_length(out), 0);
	CU_ASSERT_EQUAL(peer_read(buf, sizeof(buf)), 4);
	CU_ASSERT_EQUAL(memcmp(buf, "head", 4), 0);
	/* the write callback at the loop's turn, once, as after libevent's own write */
	CU_ASSERT_EQUAL(write_cbs, 0);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(write_cbs, 1);
	/* the output takes bytes and is drained by libevent again afterwards */
	evbuffer_add(out, "more", 4);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(evbuffer_get_length(out), 0);
	CU_ASSERT_EQUAL(peer_read(buf, sizeof(buf)), 4);
}

static void test_file_segments_and_empty_queue(void)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	char path[] = "/tmp/test_writenow.XXXXXX", buf[64];
	int fd = mkstemp(path);
	struct evbuffer_file_segment *seg;

	CU_ASSERT_FATAL(fd >= 0);
	unlink(path);
	CU_ASSERT_FATAL(write(fd, "0123456789", 10) == 10);
	CU_ASSERT_EQUAL(writenow(bev), 0); /* nothing queued */
	seg = evbuffer_file_segment_new(fd, 0, 10, EVBUF_FS_CLOSE_ON_FREE);
	CU_ASSERT_FATAL(seg != NULL);
	CU_ASSERT_EQUAL(evbuffer_add_file_segment(out, seg, 2, 5), 0);
	CU_ASSERT_EQUAL(writenow(bev), 5);
	CU_ASSERT_EQUAL(peer_read(buf, sizeof(buf)), 5);
	CU_ASSERT_EQUAL(memcmp(buf, "23456", 5), 0);
	evbuffer_file_segment_free(seg);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void test_full_socket_writes_what_it_takes(void)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t big = 8 * 1024 * 1024, got = 0;
	char *p = calloc(1, big), buf[65536];
	ssize_t n, r;

	CU_ASSERT_FATAL(p != NULL);
	evbuffer_add(out, p, big);
	n = writenow(bev);
	CU_ASSERT(n > 0 && (size_t)n < big); /* the socket's buffer is smaller */
	CU_ASSERT_EQUAL(evbuffer_get_length(out), big - (size_t)n);
	CU_ASSERT_EQUAL(writenow(bev), 0); /* full: nothing more, no error */
	/* libevent's writes finish it as the peer reads (bounded: a stuck queue fails here
	 * rather than hanging the suite) */
	for (int turns = 0; got < big && turns < 100000; turns++) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		while ((r = peer_read(buf, sizeof(buf))) > 0)
			got += (size_t)r;
	}
	CU_ASSERT_EQUAL(got, big);
	CU_ASSERT_EQUAL(evbuffer_get_length(out), 0);
	free(p);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"the queue goes before the loop runs; the write callback follows",
	     test_queue_goes_before_the_loop_runs},
	    {"file segments go by sendfile; an empty queue writes nothing",
	     test_file_segments_and_empty_queue},
	    {"a full socket takes what it can, libevent writes the rest",
	     test_full_socket_writes_what_it_takes},
	};

	return UNIT_RUN("writenow", setup, cleanup, tests);
}

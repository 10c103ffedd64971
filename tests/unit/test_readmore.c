/* readmore: a bufferevent's input filled from its socket past libevent 2.1's 4 KiB per
 * read, in order after what libevent read itself, bounded by the caller, and leaving the
 * end of the stream for libevent to report. */
#include "unit.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange/readmore.h"

#define BIG (3 * 1024 * 1024 + 17) /* more than one 256 KiB step, not a multiple of it */

static struct event_base *base;
static int sv[2];
static struct bufferevent *bev;
static unsigned char *sent;
static short seen; /* BEV_EVENT_* flags the event callback got */

static void event_cb(struct bufferevent *b, short what, void *arg)
{
	seen |= what;
}

static int setup(void)
{
	int size = 8 * 1024 * 1024;

	base = event_base_new();
	sent = malloc(BIG);
	if (!base || !sent || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	for (size_t i = 0; i < BIG; i++)
		sent[i] = (unsigned char)(i * 131 + (i >> 12));
	evutil_make_socket_nonblocking(sv[1]);
	bev = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return 1;
	bufferevent_setcb(bev, NULL, NULL, event_cb, NULL);
	return 0;
}

static int cleanup(void)
{
	bufferevent_free(bev);
	close(sv[0]);
	event_base_free(base);
	free(sent);
	return 0;
}

/* Writes all of buf to the peer end. */
static void send_all(const unsigned char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(sv[0], buf, n);

		CU_ASSERT_FATAL(w > 0);
		buf += w;
		n -= (size_t)w;
	}
}

static void test_reads_past_4k_in_order(void)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t got;

	send_all(sent, BIG);
	/* libevent's own read first (at most 4 KiB), then ours behind it. */
	bufferevent_enable(bev, EV_READ);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	got = evbuffer_get_length(in);
	CU_ASSERT(got > 0 && got <= 4096);
	CU_ASSERT_EQUAL(readmore(bev, 1024 * 1024), 1024 * 1024);
	CU_ASSERT_EQUAL(evbuffer_get_length(in), got + 1024 * 1024);
	/* Unbounded but for what the socket holds: the rest, and nothing past it. */
	CU_ASSERT_EQUAL(readmore(bev, 64 * 1024 * 1024), BIG - got - 1024 * 1024);
	CU_ASSERT_EQUAL(evbuffer_get_length(in), BIG);
	CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(in, -1), sent, BIG), 0);
	CU_ASSERT_EQUAL(readmore(bev, 4096), 0); /* drained: EAGAIN is no error */
	/* The input takes bytes from libevent again afterwards (it was frozen again). */
	CU_ASSERT_EQUAL(evbuffer_add(in, "x", 1), -1);
	evbuffer_drain(in, BIG);
}

static void test_zero_bound_reads_nothing(void)
{
	send_all(sent, 1000);
	CU_ASSERT_EQUAL(readmore(bev, 0), 0);
	CU_ASSERT_EQUAL(readmore(bev, 10), 10);
	CU_ASSERT_EQUAL(readmore(bev, 5000), 990);
	CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(bufferevent_get_input(bev), -1), sent, 1000), 0);
	evbuffer_drain(bufferevent_get_input(bev), 1000);
}

static void test_end_of_stream_left_to_libevent(void)
{
	send_all(sent, 5000);
	shutdown(sv[0], SHUT_WR);
	CU_ASSERT_EQUAL(readmore(bev, 1 << 20), 5000);
	CU_ASSERT_EQUAL(seen & BEV_EVENT_EOF, 0);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	CU_ASSERT(seen & BEV_EVENT_EOF);
	CU_ASSERT_EQUAL(evbuffer_get_length(bufferevent_get_input(bev)), 5000);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{"reads past libevent's 4 KiB, in order, bounded", test_reads_past_4k_in_order},
		{"a zero bound reads nothing; a small one that much", test_zero_bound_reads_nothing},
		{"end of stream is left for libevent to report", test_end_of_stream_left_to_libevent},
	};

	return UNIT_RUN("readmore", setup, cleanup, tests);
}

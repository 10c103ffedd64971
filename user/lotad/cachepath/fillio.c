/* What a worker's fills share for reading an origin's body (fills-int.h): wake-ups paced
 * by SO_RCVLOWAT, a slow origin told from a silent one, how much to read now, and the
 * byte counters. */
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cachepath/fills-int.h"
#include "metrics.h"

/* Wakes for bev once FILLS_LOWAT bytes are there, or the body's last byte: left is what
 * the origin has still to send of it beyond what is read already. The socket is the
 * fill's own (closed at its end), so the setting never outlives the body. */
void fills_pace_reads(struct bufferevent *bev, uint64_t left, int *cur)
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
bool fills_is_slow_not_silent(struct bufferevent *bev, short what, int *lowat)
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

/* What of [done, len) is not in in yet. */
uint64_t fills_still_to_come(uint64_t done, uint64_t len, const struct evbuffer *in)
{
	uint64_t buffered = evbuffer_get_length(in);

	return len - done > buffered ? len - done - buffered : 0;
}

/* How much more to read now of [done, len). */
size_t fills_read_more_now(uint64_t done, uint64_t len, const struct evbuffer *in)
{
	uint64_t left = fills_still_to_come(done, len, in);

	return left < FILLS_READ_MORE ? (size_t)left : FILLS_READ_MORE;
}

uint64_t fills_count_bytes(struct fills *f, enum fills_reason why, uint64_t n)
{
	metric_add(why == FILLS_FOR_PRESTAGE ? M_bytes_from_origin_prestage : M_bytes_from_origin_fill,
		   n);
	metric_add(M_bytes_from_origin, n);
	return n;
}


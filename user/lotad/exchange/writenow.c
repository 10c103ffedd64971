/* writenow.h. A socket bufferevent keeps its output's start frozen outside its own write
 * callback, so that nothing else drains it: evbuffer_write() on it alone writes nothing.
 * Thawed for one write here, as libevent's callback does. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "exchange/writenow.h"

ssize_t writenow(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	int n;

	if (!evbuffer_get_length(out))
		return 0;
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(bev));
	evbuffer_freeze(out, 1);
	/* The write event that adding to the queue scheduled stays: when it finds the queue
	 * emptied, libevent still calls the write callback (the exchange's turn). */
	return n > 0 ? n : 0;
}

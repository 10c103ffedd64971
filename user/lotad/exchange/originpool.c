/* originpool.h: a short list per worker of idle connections, newest first, each watched
 * for bytes, a close or its idle time running out, any of which closes it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange/origin.h"
#include "exchange/originpool.h"

struct idle {
	struct originpool *p;
	unsigned char key[ORIGINPOOL_KEY_MAX];
	size_t keylen;
	struct bufferevent *bev;
	struct idle *next;
};

struct originpool {
	struct event_base *base;
	struct idle *head;
	unsigned n;
};

struct originpool *originpool_new(struct event_base *base)
{
	struct originpool *p = calloc(1, sizeof(*p));

	if (p)
		p->base = base;
	return p;
}

/* Unlinks it and returns its connection (callbacks cleared). */
static struct bufferevent *take(struct idle *it)
{
	struct originpool *p = it->p;
	struct bufferevent *bev = it->bev;

	for (struct idle **pp = &p->head; *pp; pp = &(*pp)->next) {
		if (*pp == it) {
			*pp = it->next;
			break;
		}
	}
	p->n--;
	free(it);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	return bev;
}

/* Anything from an idle connection (bytes nobody asked for, its close, the idle timeout)
 * ends it. */
static void idle_read_cb(struct bufferevent *bev, void *arg)
{
	bufferevent_free(take(arg));
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(take(arg));
}

void originpool_free(struct originpool *p)
{
	if (!p)
		return;
	while (p->head)
		bufferevent_free(take(p->head));
	free(p);
}

struct bufferevent *originpool_take(struct originpool *p, const void *key, size_t keylen)
{
	if (!p)
		return NULL;
	for (struct idle *it = p->head; it; it = it->next) {
		if (it->keylen == keylen && memcmp(it->key, key, keylen) == 0) {
			struct bufferevent *bev = take(it);

			bufferevent_set_timeouts(bev, NULL, NULL);
			return bev;
		}
	}
	return NULL;
}

struct bufferevent *originpool_get(struct originpool *p, struct origin *o, bool *is_reused)
{
	struct bufferevent *bev = originpool_take(p, &o, sizeof(o));

	*is_reused = bev != NULL;
	return bev ? bev : origin_connect(o, p->base);
}

void originpool_keep(struct originpool *p, const void *key, size_t keylen,
		     struct bufferevent *bev)
{
	struct timeval tv = {.tv_sec = ORIGINPOOL_IDLE_S};
	struct idle *it;
	int one = 1;

	if (!p || keylen > ORIGINPOOL_KEY_MAX || p->n >= ORIGINPOOL_MAX ||
	    evbuffer_get_length(bufferevent_get_input(bev)) || !(it = calloc(1, sizeof(*it)))) {
		bufferevent_free(bev);
		return;
	}
	setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	it->p = p;
	memcpy(it->key, key, keylen);
	it->keylen = keylen;
	it->bev = bev;
	it->next = p->head;
	p->head = it;
	p->n++;
	bufferevent_setcb(bev, idle_read_cb, NULL, idle_event_cb, it);
	bufferevent_set_timeouts(bev, &tv, NULL);
	bufferevent_enable(bev, EV_READ);
}

void originpool_put(struct originpool *p, struct origin *o, struct bufferevent *bev)
{
	originpool_keep(p, &o, sizeof(o), bev);
}

unsigned originpool_idle(const struct originpool *p)
{
	return p ? p->n : 0;
}

/* lotad's own HEADs of a key (fills.h), signed with the service credentials (or by
 * ssecfill.c, with a reader's SSE-C key besides), on pooled connections, following a
 * bucket to its region's origin; and the HEAD that confirms a key is gone before its
 * chunks are dropped. */
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

/* lotad's HEAD of a key. */
struct fills_head {
	struct fills *f;
	struct bufferevent *bev;
	bool is_reused; /* bev came idle from the pool */
	struct origin *o;	     /* the origin bev goes to */
	struct location_wait *moved; /* as for a fetch */
	bool is_moved;
	char *bucket, *key, *version;
	fills_sign_fn sign; /* NULL: the service credentials' */
	void *sign_arg;
	fills_head_fn done;
	void *arg;
	struct fills_head *next;
};

static void head_free(struct fills_head *h)
{
	for (struct fills_head **pp = &h->f->heads; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	if (h->bev)
		bufferevent_free(h->bev);
	location_wait_cancel(h->moved);
	free(h->bucket);
	free(h->key);
	free(h->version);
	free(h);
}

/* The answer is told; a connection that ended with a bodiless 200 and holds nothing
 * more goes back to the pool (after the call: m points into its input). */
static void head_done(struct fills_head *h, int status, const struct http_msg *m)
{
	bool is_reusable = h->bev && m && status == 200 && m->keep_alive &&
			   evbuffer_get_length(bufferevent_get_input(h->bev)) == m->head_len;

	if (!h->sign)
		svcdenied_note(h->f->cp->denied, h->bucket, status);
	if (h->done)
		h->done(h->arg, status, m);
	if (is_reusable) {
		evbuffer_drain(bufferevent_get_input(h->bev), m->head_len);
		originpool_put(h->f->pool, h->o, h->bev);
		h->bev = NULL;
	}
	head_free(h);
}

static int head_send(struct fills_head *h);

static void head_relocated(void *arg)
{
	struct fills_head *h = arg;

	h->moved = NULL;
	if (head_send(h) < 0)
		head_done(h, 0, NULL);
}

/* As fetch_moved(), for a HEAD (whose answer has no body). */
static bool head_moved(struct fills_head *h, const struct http_msg *m)
{
	if (h->is_moved || location_redirected(h->f->cp, h->f->w->base, h->bucket, h->o, m, NULL,
					       0, head_relocated, h,
					       &h->moved) != LOCATION_MOVED)
		return false;
	h->is_moved = true;
	bufferevent_free(h->bev);
	h->bev = NULL;
	return true;
}

static void head_read_cb(struct bufferevent *bev, void *arg)
{
	static const struct http_str head = {"HEAD", 4};
	struct fills_head *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct http_msg *m = malloc(sizeof(*m));
	int r;

	if (!m) {
		head_done(h, 0, NULL);
		return;
	}
	for (int i = 0; i < 8; i++) {
		size_t len = evbuffer_get_length(in), want = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;

		r = http_parse_response((const char *)evbuffer_pullup(in, (ssize_t)want), want,
					&head, m);
		if (r == 0 && m->status < 200) {
			evbuffer_drain(in, m->head_len); /* an interim 1xx: the next head may be in */
			continue;
		}
		if (r == 0 && (m->status == 301 || m->status == 400) && head_moved(h, m))
			; /* sent again once the bucket's origin is known */
		else if (r == 0)
			head_done(h, m->status, m);
		else if (r != -EAGAIN)
			head_done(h, 0, NULL);
		break;
	}
	free(m);
}

static void head_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fills_head *h = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (h->is_reused && !evbuffer_get_length(bufferevent_get_input(bev))) {
		/* An idle connection the origin had closed: again at once on a new one. */
		metric_add(M_origin_retries, 1);
		bufferevent_free(h->bev);
		h->bev = NULL;
		if (head_send(h) == 0)
			return;
	}
	head_done(h, 0, NULL);
}

/* h's HEAD, signed with the service credentials, on an idle or a new connection. */
static int head_send(struct fills_head *h)
{
	struct lotad *d = h->f->cp->d;
	struct cache_key k = {h->bucket, h->key, h->version[0] ? h->version : NULL};
	struct origin *o = h->o = origins_for(d, h->bucket);
	struct evbuffer *out;
	int r;

	h->bev = originpool_get(h->f->pool, o, &h->is_reused);
	if (!h->bev)
		return -ENOMEM;
	if (h->is_reused)
		metric_add(M_origin_connections_reused, 1);
	bufferevent_setcb(h->bev, head_read_cb, NULL, head_event_cb, h);
	origin_set_timeouts(o, h->bev);
	metric_add(M_origin_requests, 1);
	out = bufferevent_get_output(h->bev);
	r = h->sign ? h->sign(h->sign_arg, out, "HEAD", o, &k)
		    : svccreds_request(h->f->cp->svc, "HEAD", o, &k, NULL, 0, out);
	if (r < 0 || bufferevent_enable(h->bev, EV_READ | EV_WRITE) < 0)
		return -EINVAL;
	return 0;
}

int fills_head_signed(struct fills *f, const struct cache_key *k, fills_sign_fn sign,
		      void *sign_arg, fills_head_fn done, void *arg, struct fills_head **out)
{
	struct fills_head *h;
	int r;

	if (!f->cp->svc)
		return -ENOKEY;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->f = f;
	h->sign = sign;
	h->sign_arg = sign_arg;
	h->done = done;
	h->arg = arg;
	h->next = f->heads;
	f->heads = h;
	h->bucket = strdup(k->bucket);
	h->key = strdup(k->key);
	h->version = strdup(k->version ? k->version : "");
	if (!h->bucket || !h->key || !h->version) {
		head_free(h);
		return -ENOMEM;
	}
	if (!location_learn_first(f->cp, f->w->base, h->bucket, head_relocated, h, &h->moved) &&
	    (r = head_send(h)) < 0) {
		head_free(h);
		return r;
	}
	if (out)
		*out = h;
	return 0;
}

int fills_head(struct fills *f, const struct cache_key *k, fills_head_fn done, void *arg,
	       struct fills_head **out)
{
	return fills_head_signed(f, k, NULL, NULL, done, arg, out);
}

void fills_head_cancel(struct fills_head *h)
{
	if (h)
		head_free(h);
}

static void gone_done(void *arg, int status, const struct http_msg *m)
{
	struct fills_head *h = arg;
	struct cache_key k = {h->bucket, h->key, h->version};

	if (status == 404 && cachepath_invalidate(h->f->cp, &k) > 0)
		log_info("cache: %s/%s is gone at the origin: dropped", h->bucket, h->key);
}

void fills_confirm_gone(struct fills *f, const struct cache_key *k)
{
	struct fills_head *h;

	/* The callback reads the key from the request itself (its own copy). */
	if (fills_head(f, k, NULL, NULL, &h) == 0) {
		h->done = gone_done;
		h->arg = h;
	}
}

void fills_heads_free(struct fills *f)
{
	while (f->heads)
		head_free(f->heads);
}

/* Pre-staging: a signed HEAD with Range: bytes=0-0 asks lotad to cache the whole object
 * before it answers. The origin authorizes the HEAD as usual; lotad holds its answer
 * until a background fill (service credentials) has committed the object, then sends it
 * with x-lota-prestage: cached (or failed). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cachepath/cachepath-int.h"
#include "http.h"
#include "log.h"
#include "lotad.h"

struct prestage {
	struct cachepath *cp;
	struct bgfill_watch bgw;
	bool is_waiting;
	char *held; /* the origin's answer, held */
	size_t held_len;
};

static bool prestage_claims(struct exchange *x, void *arg)
{
	struct cachepath *cp = arg;

	return cp->bgfill && cachepath_is_prestage(x);
}

static enum route_verdict prestage_start(struct exchange *x, void *arg)
{
	struct prestage *p = calloc(1, sizeof(*p));
	struct event *ev = exchange_wake_event(x);

	if (!p || !ev) {
		free(p);
		return RT_UPSTREAM; /* relayed: the client gets the plain answer */
	}
	p->cp = arg;
	p->bgw.ev = ev;
	x->rt_priv = p;
	return RT_UPSTREAM;
}

static bool is_cached(struct cachepath *cp, const struct cache_key *k)
{
	struct cache_obj *o;

	if (cache_lookup(cp->cache, k, &o) < 0)
		return false;
	cache_obj_close(o);
	return true;
}

/* The origin authorized the HEAD: hold its answer until the object is cached. */
static enum route_verdict prestage_on_head(struct exchange *x, const struct http_msg *m,
					   const char *raw)
{
	struct prestage *p = x->rt_priv;
	struct cache_key k = cachepath_key(x);
	int r;

	if (!p || (m->status != 200 && m->status != 206))
		return RT_RELAY;
	r = bgfill_request(p->cp->bgfill, &k, m, &p->bgw);
	if (r == 1 && !is_cached(p->cp, &k))
		return RT_RELAY; /* under min-object-size, or no size: nothing to stage */
	p->held = malloc(m->head_len);
	if (!p->held) {
		bgfill_unwatch(&p->bgw);
		return RT_RELAY;
	}
	memcpy(p->held, raw, m->head_len);
	p->held_len = m->head_len;
	p->is_waiting = true;
	if (r != 0) {
		/* Cached already, or the job could not be queued: say so now, in the header
		 * lotactl prestage checks, rather than with a plain answer that hides it. */
		p->bgw.result = r > 0 ? 0 : r;
		exchange_wake(x);
	}
	return RT_WAIT;
}

static enum route_verdict prestage_on_wake(struct exchange *x)
{
	struct prestage *p = x->rt_priv;
	struct evbuffer *out = exchange_client_out(x);

	if (!p || !p->is_waiting)
		return RT_WAIT;
	p->is_waiting = false;
	evbuffer_add(out, p->held, p->held_len - 2);
	evbuffer_add_printf(out, "x-lota-prestage: %s\r\n\r\n", p->bgw.result == 0 ? "cached" : "failed");
	if (p->bgw.result < 0)
		log_warn("pre-stage of %s/%s: %s", x->s3.bucket, x->s3.key, strerror(-p->bgw.result));
	return RT_REPLIED;
}

static void prestage_end(struct exchange *x)
{
	struct prestage *p = x->rt_priv;

	if (!p)
		return;
	if (p->is_waiting)
		bgfill_unwatch(&p->bgw);
	free(p->held);
	free(p);
	x->rt_priv = NULL;
}

void prestage_route(struct cachepath *cp, struct route *rt)
{
	*rt = (struct route){
		.name = "prestage",
		.arg = cp,
		.claims = prestage_claims,
		.start = prestage_start,
		.on_head = prestage_on_head,
		.on_wake = prestage_on_wake,
		.end = prestage_end,
	};
}

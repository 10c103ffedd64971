/* Pre-staging: a signed HEAD with Range: bytes=0-0 asks lotad to cache the whole object
 * before it answers. The origin authorizes the HEAD as usual; lotad holds its answer
 * while every chunk is filled (fills.c, lotad's own GETs, a few at a time), then sends it
 * with x-lota-prestage: cached (or failed). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cachepath/cachepath-t.h"
#include "cachepath/prestage.h"
#include "cachepath/request.h"
#include "cachepath/fills.h"
#include "cachepath/objmeta.h"
#include "cachepath/young.h"
#include "chunkmap.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "range.h"

#define PRESTAGE_WINDOW 8 /* chunks asked for and followed at a time */

struct prestage {
	struct cachepath *cp;
	struct objmeta om; /* the version the origin's answer names */
	uint64_t nchunks, next;
	int tries; /* of the next chunk, when its fill ends as we ask */
	struct cache_follower *fl[PRESTAGE_WINDOW];
	int result; /* 0, or why a chunk could not be cached */
	char *held; /* the origin's answer, held */
	size_t held_len;
};

static bool prestage_claims(struct exchange *x, void *arg)
{
	struct cachepath *cp = arg;

	return cp->svc && cachepath_is_prestage(x);
}

static enum route_verdict prestage_start(struct exchange *x, void *arg)
{
	struct prestage *p = calloc(1, sizeof(*p));

	if (!p || !exchange_wake_event(x)) {
		free(p);
		return RT_UPSTREAM; /* relayed: the client gets the plain answer */
	}
	p->cp = arg;
	x->rt_priv = p;
	exchange_label(x, "prestage");
	return RT_UPSTREAM;
}

int prestage_object_size(const struct http_msg *m, uint64_t *size)
{
	const struct http_header *h = http_find(m, "content-range");
	struct content_range cr;

	if (m->status == 200) {
		*size = m->content_length;
		return 0;
	}
	if (!h || range_parse_content_range(h->value.p, h->value.n, &cr) < 0 || !cr.size_known)
		return -ENODATA;
	*size = cr.size;
	return 0;
}

static void fill_wake(void *arg)
{
	event_active(arg, EV_READ, 0);
}

/* Asks for chunks and follows the running ones, PRESTAGE_WINDOW at a time; drops the
 * followers whose fill ended. True once every chunk is committed or one failed. */
static bool advance(struct exchange *x, struct prestage *p)
{
	struct fills *f = fills_of(p->cp, exchange_worker(x));
	int busy = 0;

	for (int i = 0; i < PRESTAGE_WINDOW; i++) {
		struct cache_fill_status st;

		if (!p->fl[i])
			continue;
		cache_follower_status(p->fl[i], &st);
		if (st.state == CACHE_FILL_RUNNING) {
			busy++;
			continue;
		}
		if (st.state != CACHE_FILL_COMMITTED && !p->result)
			p->result = st.error ? st.error : -EIO;
		cache_follower_close(p->fl[i]);
		p->fl[i] = NULL;
	}
	while (!p->result && f && busy < PRESTAGE_WINDOW && p->next < p->nchunks) {
		int r = fills_want(f, &p->om.meta, p->next, FILLS_FOR_PRESTAGE);
		int slot = 0;

		if (r == FILLS_RUNNING) {
			while (p->fl[slot])
				slot++;
			r = cache_chunk_follow(p->cp->cache, &p->om.meta, (uint32_t)p->next, fill_wake,
					       exchange_wake_event(x), &p->fl[slot]);
			if (r == -ENOENT && p->tries++ < 3)
				continue; /* it ended meanwhile: ask again */
			busy += r == 0;
		}
		if (r < 0)
			p->result = r;
		p->tries = 0;
		p->next++;
	}
	return busy == 0 && (p->result || p->next == p->nchunks);
}

/* The origin authorized the HEAD: hold its answer until the object is cached. */
static enum route_verdict prestage_on_head(struct exchange *x, const struct http_msg *m,
					   const char *raw)
{
	struct prestage *p = x->rt_priv;
	struct cache_key k = cachepath_key(x);
	uint64_t size;

	if (!p || (m->status != 200 && m->status != 206) || prestage_object_size(m, &size) < 0 ||
	    size < exchange_lotad(x)->cfg.min_object_size ||
	    objmeta_from_response(&p->om, &k, size, m) < 0 || !(p->held = malloc(m->head_len)))
		return RT_RELAY; /* nothing lotad may stage: the plain answer */
	p->om.meta.chunk_size = exchange_lotad(x)->cfg.chunk_size;
	young_note(p->cp->young, &p->om.meta, m);
	p->nchunks = chunkmap_count(size, p->om.meta.chunk_size);
	memcpy(p->held, raw, m->head_len);
	p->held_len = m->head_len;
	exchange_wake(x);
	return RT_WAIT;
}

static enum route_verdict prestage_on_wake(struct exchange *x)
{
	struct prestage *p = x->rt_priv;
	struct evbuffer *out = exchange_client_out(x);

	if (!p || !p->held || !advance(x, p))
		return RT_WAIT;
	evbuffer_add(out, p->held, p->held_len - 2);
	evbuffer_add_printf(out, "x-lota-prestage: %s\r\n\r\n", p->result == 0 ? "cached" : "failed");
	if (p->result < 0)
		log_warn("pre-stage of %s/%s: %s", x->s3.bucket, x->s3.key, strerror(-p->result));
	x->resp_head_sent = true;
	return RT_REPLIED;
}

static void prestage_end(struct exchange *x)
{
	struct prestage *p = x->rt_priv;

	if (!p)
		return;
	for (int i = 0; i < PRESTAGE_WINDOW; i++)
		cache_follower_close(p->fl[i]);
	objmeta_free(&p->om);
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

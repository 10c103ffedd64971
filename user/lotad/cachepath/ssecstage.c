/* Pre-staging an SSE-C object: a signed HEAD with Range: bytes=0-0 and the reader's three
 * SSE-C fields. The origin judges the HEAD as it came (it checks the key on a HEAD: a 206
 * proves both the reader's authorization and their key); lotad then fills every chunk
 * with that key (ssecfill.c), PRESTAGE_WINDOW at a time, sealed, and answers once all are
 * committed, with x-lota-prestage: cached (or failed). Without the key the plain
 * pre-staging route relays the origin's refusal. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cache.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/objmeta.h"
#include "cachepath/request.h"
#include "cachepath/sealed.h"
#include "cachepath/ssec.h"
#include "cachepath/ssecfill.h"
#include "cachepath/prestage.h"
#include "cachepath/ssecstage.h"
#include "cachepath/upkeep.h"
#include "chunkmap.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "range.h"

#define STAGE_WINDOW 8	   /* chunks asked for and waited on at a time */
#define STAGE_BUFFER_MS 50 /* a wait for a free chunk buffer */

/* One chunk of the window: lotad's fill of it joined, or the store's fill followed. */
struct slot {
	bool is_used;
	uint64_t index;
	struct ssecfill *sf;
	struct ssecfill_waiter wt;
	struct cache_follower *fl;
};

struct ssecstage {
	struct cachepath *cp;
	struct worker *w;
	struct event *wake, *timer;
	uint8_t key[SSEC_KEY_LEN], ck[SSEC_KEY_LEN], verifier[SSEC_VERIFIER_LEN];
	struct objmeta om; /* the sealed version the origin's answer names */
	bool has_key;
	uint64_t nchunks, next;
	struct slot slot[STAGE_WINDOW];
	int result; /* 0, or why a chunk could not be cached */
	char *held; /* the origin's answer, held */
	size_t held_len;
};

static bool stage_claims(struct exchange *x, void *arg)
{
	struct cachepath *cp = arg;
	const struct http_header *f[3];

	return cp->ssec && cp->svc && cachepath_is_prestage(x) && ssec_find_fields(&x->req, f);
}

static enum route_verdict stage_start(struct exchange *x, void *arg)
{
	struct ssecstage *p = calloc(1, sizeof(*p));
	const struct http_header *f[3];

	exchange_label(x, "relay");
	if (!p)
		return RT_UPSTREAM;
	x->rt_priv = p;
	p->cp = arg;
	p->w = exchange_worker(x);
	p->wake = exchange_wake_event(x);
	if (!p->wake || ssec_has_other_bypass(&x->req) || !ssec_find_fields(&x->req, f) ||
	    ssec_parse_key(f[1]->value.p, f[1]->value.n, f[2]->value.p, f[2]->value.n, p->key) < 0)
		return RT_UPSTREAM; /* the origin's answer, as it is */
	p->has_key = true;
	exchange_label(x, "prestage");
	return RT_UPSTREAM;
}

/* The version the answer names, sealed under the key: chunks of it held under another
 * key, or plain ones, go first (else they would pass for ours). */
static int learn(struct exchange *x, struct ssecstage *p, const struct http_msg *m)
{
	struct cache_key k = cachepath_key(x);
	struct cache_object *held = NULL;
	uint64_t size;
	int r;

	if ((m->status != 200 && m->status != 206) || !ssec_is_sealed_answer(m) ||
	    prestage_object_size(m, &size) < 0 || size == 0 || size < exchange_lotad(x)->cfg.min_object_size)
		return -EPERM;
	r = ssec_version_from(p->cp->ssec, p->key, &k, size, cache_chunk_size(p->cp->cache), m,
			      &p->om, p->verifier, p->ck);
	if (r < 0)
		return r;
	if (cache_object_lookup(p->cp->cache, &k, &held) == 0 &&
	    ssec_is_other_copy(&held->meta, &p->om.meta, p->verifier))
		cachepath_invalidate(p->cp, &k);
	cache_object_release(held);
	p->nchunks = chunkmap_count(size, p->om.meta.chunk_size);
	return 0;
}

static enum route_verdict stage_on_head(struct exchange *x, const struct http_msg *m,
					const char *raw)
{
	struct ssecstage *p = x->rt_priv;

	if (!p || !p->has_key || learn(x, p, m) < 0 || !(p->held = malloc(m->head_len)))
		return RT_RELAY; /* nothing lotad may stage: the plain answer */
	memcpy(p->held, raw, m->head_len);
	p->held_len = m->head_len;
	exchange_wake(x);
	return RT_WAIT;
}

static void wake_cb(void *arg)
{
	event_active(arg, EV_READ, 0);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	wake_cb(arg);
}

static void slot_clear(struct ssecstage *p, struct slot *s)
{
	ssecfill_leave(s->sf, &s->wt);
	cache_follower_close(s->fl);
	memset(s, 0, sizeof(*s));
}

/* Where chunk s->index stands: true once it is settled (committed, or p->result set). */
static bool slot_settled(struct ssecstage *p, struct slot *s)
{
	enum cache_chunk_state cs = CACHE_CHUNK_ABSENT;
	struct cache_fill_status st;
	uint64_t avail;
	int err = 0;

	if (s->sf) {
		enum ssecfill_state fs = ssecfill_state(s->sf, &avail, &err);

		if (fs == SSECFILL_RUNNING)
			return false;
		ssecfill_leave(s->sf, &s->wt);
		s->sf = NULL;
		if (fs == SSECFILL_FAILED) {
			p->result = err ? err : -EIO;
			return true;
		}
	}
	if (s->fl) {
		cache_follower_status(s->fl, &st);
		if (st.state == CACHE_FILL_RUNNING)
			return false;
		cache_follower_close(s->fl);
		s->fl = NULL;
	}
	/* Committed, or in the store's fill (followed until it settles), or not kept. */
	for (int tries = 0; tries < 3; tries++) {
		cache_chunk_states(p->cp->cache, &p->om.meta, (uint32_t)s->index, 1, &cs);
		if (cs == CACHE_CHUNK_COMMITTED)
			return true;
		if (cs == CACHE_CHUNK_ABSENT)
			break;
		if (cache_chunk_follow(p->cp->cache, &p->om.meta, (uint32_t)s->index, wake_cb,
				       p->wake, &s->fl) == 0)
			return false; /* it settles, and wakes us */
	}
	p->result = -EIO; /* filled, but the store did not keep it (full, degraded) */
	return true;
}

/* Chunk index into slot s: lotad's fill of it joined (begun if need be), or the store's
 * followed. -EAGAIN: no chunk buffer free now. */
static int slot_begin(struct ssecstage *p, struct slot *s, uint64_t index)
{
	enum cache_chunk_state cs = CACHE_CHUNK_ABSENT;
	int r;

	memset(s, 0, sizeof(*s));
	s->is_used = true;
	s->index = index;
	s->wt.wake = p->wake;
	cache_chunk_states(p->cp->cache, &p->om.meta, (uint32_t)index, 1, &cs);
	if (cs == CACHE_CHUNK_COMMITTED)
		return 0;
	if (cs == CACHE_CHUNK_FILLING &&
	    cache_chunk_follow(p->cp->cache, &p->om.meta, (uint32_t)index, wake_cb, p->wake,
			       &s->fl) == 0)
		return 0;
	if ((s->sf = ssecfill_join(p->cp->ssec, p->verifier, index, &s->wt)))
		return 0;
	r = ssecfill_want(p->cp, p->w, &p->om.meta, p->key, p->verifier, p->ck, index,
			  FILLS_FOR_PRESTAGE);
	if (r == -ENOBUFS) {
		s->is_used = false;
		return -EAGAIN;
	}
	if (r < 0)
		return r;
	s->sf = ssecfill_join(p->cp->ssec, p->verifier, index, &s->wt);
	return 0;
}

static void wait_for_buffer(struct ssecstage *p)
{
	struct timeval tv = {0, STAGE_BUFFER_MS * 1000};

	if (!p->timer)
		p->timer = evtimer_new(p->w->base, timer_cb, p->wake);
	if (!p->timer || evtimer_add(p->timer, &tv) < 0)
		p->result = -ENOMEM;
}

/* Begins chunks into the free slots; false if it must wait for a chunk buffer. */
static bool begin_more(struct ssecstage *p)
{
	for (int i = 0; i < STAGE_WINDOW && !p->result && p->next < p->nchunks; i++) {
		int r;

		if (p->slot[i].is_used)
			continue;
		r = slot_begin(p, &p->slot[i], p->next);
		if (r == -EAGAIN) {
			wait_for_buffer(p);
			return false;
		}
		p->next++;
		if (r < 0)
			p->result = r;
	}
	return true;
}

/* Begins the next chunks and settles the window's (a chunk found committed settles at
 * once, and frees its slot for the next). True once every chunk is committed or one
 * failed, and nothing of the window runs any more. */
static bool advance(struct ssecstage *p)
{
	bool is_settling, may_begin;
	int busy;

	do {
		may_begin = begin_more(p);
		is_settling = false;
		busy = 0;
		for (int i = 0; i < STAGE_WINDOW; i++) {
			if (!p->slot[i].is_used)
				continue;
			if (slot_settled(p, &p->slot[i])) {
				slot_clear(p, &p->slot[i]);
				is_settling = true;
			} else {
				busy++;
			}
		}
	} while (is_settling && may_begin && !p->result && p->next < p->nchunks);
	return busy == 0 && (p->result || p->next == p->nchunks);
}

static enum route_verdict stage_on_wake(struct exchange *x)
{
	struct ssecstage *p = x->rt_priv;
	struct evbuffer *out = exchange_client_out(x);

	if (!p || !p->held || !advance(p))
		return RT_WAIT;
	evbuffer_add(out, p->held, p->held_len - 2);
	evbuffer_add_printf(out, "x-lota-prestage: %s\r\n\r\n",
			    p->result == 0 ? "cached" : "failed");
	if (p->result < 0)
		log_warn("pre-stage of SSE-C %s/%s: %s", x->s3.bucket, x->s3.key,
			 strerror(-p->result));
	x->resp_head_sent = true;
	return RT_REPLIED;
}

static void stage_end(struct exchange *x)
{
	struct ssecstage *p = x->rt_priv;

	if (!p)
		return;
	for (int i = 0; i < STAGE_WINDOW; i++)
		slot_clear(p, &p->slot[i]);
	if (p->timer)
		event_free(p->timer);
	ssec_wipe(p->key, sizeof(p->key));
	ssec_wipe(p->ck, sizeof(p->ck));
	objmeta_free(&p->om);
	free(p->held);
	free(p);
	x->rt_priv = NULL;
}

void ssecstage_route(struct cachepath *cp, struct route *rt)
{
	*rt = (struct route){
	    .name = "ssec-prestage",
	    .arg = cp,
	    .claims = stage_claims,
	    .start = stage_start,
	    .on_head = stage_on_head,
	    .on_wake = stage_on_wake,
	    .end = stage_end,
	};
}

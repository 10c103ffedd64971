/* lotad's own SSE-C requests (ssecfill.h). A fill reads its chunk into a buffer of its own
 * and tells its readers how far it is every SSECFILL_WAKE_BYTES; once the chunk is whole
 * it is sealed into a second buffer (its readers may still be sending from the first)
 * and stored. The table of fills is the node's, under one mutex, so that readers on every
 * worker find the one fill of a chunk; each fill's requests run on the thread of the
 * worker that began it, on that worker's idle origin connections. The request heads that
 * carry a key are built in memory of our own and wiped once sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cache.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/objmeta.h"
#include "cachepath/sealed.h"
#include "cachepath/ssecfill.h"
#include "cachepath/svccreds.h"
#include "cachepath/upkeep.h"
#include "chunkmap.h"
#include "exchange/origin.h"
#include "exchange/originpool.h"
#include "exchange/origins.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

/* Body bytes read from a fill's socket per wake at most (beyond libevent's own). */
#define READ_MORE (1024 * 1024)

/* A worker's part: its idle origin connections. */
struct ssecfill_worker {
	struct event_base *base;
	struct originpool *pool;
	uint8_t *sealed; /* where its fills seal a chunk to store it, kept for the next */
	size_t sealed_len;
};

struct ssecfill {
	/* The table's, under s->mu. */
	struct ssec *s;
	struct ssecfill *next;
	uint8_t verifier[SSEC_VERIFIER_LEN];
	uint64_t index;
	unsigned refs; /* the fetch's, each joined reader's, each of its bytes' queued */
	bool is_listed;
	enum ssecfill_state state;
	int error;
	uint64_t avail; /* bytes of buf its readers may send */
	struct ssecfill_waiter *waiters;
	/* The chunk's plaintext: written by the fetch alone, below avail never again. */
	uint8_t *buf;
	size_t len;
	/* The fetch's, on its worker's thread. */
	struct cachepath *cp;
	struct ssecfill_worker *fw;
	struct objmeta om; /* the version, its extra starting with the marker */
	uint8_t key[SSEC_KEY_LEN], ck[SSEC_KEY_LEN];
	uint64_t first, done; /* the chunk's first object byte; body bytes in buf */
	struct bufferevent *bev;
	struct event *timer; /* the back-off before the next attempt */
	unsigned attempt;
	time_t started;
	bool is_head_done, is_reused, is_keep_alive;
	enum fills_reason why;
};

/* lotad's HEAD with a reader's key: fillhead.c's, signed here. */
struct ssecfill_head {
	struct cachepath *cp;
	struct fills_head *fh;
	uint8_t ckey[SSEC_KEY_LEN];
	fills_head_fn done;
	void *arg;
};

static struct ssecfill_worker *worker_of(struct ssec *s, struct worker *w)
{
	struct ssecfill_worker *fw;

	if (w->id < 0 || w->id >= CACHEPATH_WORKERS_MAX)
		return NULL;
	if (s->workers[w->id])
		return s->workers[w->id];
	fw = calloc(1, sizeof(*fw));
	if (!fw || !(fw->pool = originpool_new(w->base))) {
		free(fw);
		return NULL;
	}
	fw->base = w->base;
	s->workers[w->id] = fw;
	return fw;
}

/* -- requests that carry a key -------------------------------------------------------- */

static void wipe_sent(const void *data, size_t len, void *arg)
{
	ssec_wipe((void *)data, len);
	free((void *)data);
}

/* Moves the head in tmp to out as a block of our own, wiped once sent; tmp is wiped. */
static int move_wiped(struct evbuffer *tmp, struct evbuffer *out)
{
	size_t n = evbuffer_get_length(tmp);
	unsigned char *p = evbuffer_pullup(tmp, -1);
	uint8_t *copy = malloc(n ? n : 1);
	int r = 0;

	if (!p || !copy) {
		r = -ENOMEM;
	} else {
		memcpy(copy, p, n);
		if (evbuffer_add_reference(out, copy, n, wipe_sent, NULL) < 0)
			r = -ENOMEM;
	}
	if (p)
		ssec_wipe(p, n);
	if (r < 0 && copy)
		wipe_sent(copy, n, NULL);
	return r;
}

/* method on k, signed with the service credentials, with more headers and the key's
 * three SSE-C fields, onto out. */
static int send_with_key(struct cachepath *cp, struct evbuffer *out, const char *method,
			 const struct origin *o, const struct cache_key *k,
			 const uint8_t key[SSEC_KEY_LEN], const struct svccreds_header *more,
			 size_t nmore)
{
	char kb[SSEC_KEY_B64_LEN + 1], mb[SSEC_MD5_B64_LEN + 1];
	struct svccreds_header h[8];
	struct evbuffer *tmp = evbuffer_new();
	size_t n = 0;
	int r = tmp ? ssec_key_fields(key, kb, mb) : -ENOMEM;

	for (size_t i = 0; i < nmore && i < 5; i++)
		h[n++] = more[i];
	h[n++] = (struct svccreds_header){OBJMETA_SSEC_PREFIX "algorithm", "AES256"};
	h[n++] = (struct svccreds_header){OBJMETA_SSEC_PREFIX "key", kb};
	h[n++] = (struct svccreds_header){OBJMETA_SSEC_PREFIX "key-MD5", mb};
	if (r == 0)
		r = svccreds_request(cp->svc, method, o, k, h, n, tmp);
	if (r == 0)
		r = move_wiped(tmp, out);
	ssec_wipe(kb, sizeof(kb));
	if (tmp) {
		size_t left = evbuffer_get_length(tmp);
		unsigned char *p = left ? evbuffer_pullup(tmp, -1) : NULL;

		if (p)
			ssec_wipe(p, left);
		evbuffer_free(tmp);
	}
	return r;
}

/* -- the table ------------------------------------------------------------------------ */

static struct ssecfill *find_locked(struct ssec *s, const uint8_t v[SSEC_VERIFIER_LEN],
				    uint64_t index)
{
	for (struct ssecfill *sf = s->fills; sf; sf = sf->next)
		if (sf->index == index && memcmp(sf->verifier, v, SSEC_VERIFIER_LEN) == 0)
			return sf;
	return NULL;
}

static void unlist_locked(struct ssec *s, struct ssecfill *sf)
{
	if (!sf->is_listed)
		return;
	for (struct ssecfill **pp = &s->fills; *pp; pp = &(*pp)->next) {
		if (*pp == sf) {
			*pp = sf->next;
			break;
		}
	}
	sf->is_listed = false;
}

/* What only the fetch uses: its connection, timer, copy of the key and the version. */
static void fetch_release(struct ssecfill *sf)
{
	if (sf->bev)
		bufferevent_free(sf->bev);
	sf->bev = NULL;
	if (sf->timer)
		event_free(sf->timer);
	sf->timer = NULL;
	ssec_wipe(sf->key, sizeof(sf->key));
	ssec_wipe(sf->ck, sizeof(sf->ck));
	objmeta_free(&sf->om);
}

static void fill_free(struct ssecfill *sf)
{
	fetch_release(sf);
	ssec_buffer_put(sf->s, sf->buf, sf->done);
	free(sf);
}

void ssecfill_hold(struct ssecfill *sf)
{
	pthread_mutex_lock(&sf->s->mu);
	sf->refs++;
	pthread_mutex_unlock(&sf->s->mu);
}

void ssecfill_release(struct ssecfill *sf)
{
	struct ssec *s = sf->s;
	bool is_last;

	pthread_mutex_lock(&s->mu);
	is_last = --sf->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (is_last)
		fill_free(sf);
}

struct ssecfill *ssecfill_join(struct ssec *s, const uint8_t v[SSEC_VERIFIER_LEN], uint64_t index,
			       struct ssecfill_waiter *wt)
{
	struct ssecfill *sf;

	pthread_mutex_lock(&s->mu);
	sf = find_locked(s, v, index);
	if (sf) {
		sf->refs++;
		wt->next = sf->waiters;
		sf->waiters = wt;
	}
	pthread_mutex_unlock(&s->mu);
	return sf;
}

enum ssecfill_state ssecfill_state(struct ssecfill *sf, uint64_t *avail, int *err)
{
	enum ssecfill_state st;

	pthread_mutex_lock(&sf->s->mu);
	st = sf->state;
	*err = sf->error;
	*avail = sf->avail;
	pthread_mutex_unlock(&sf->s->mu);
	return st;
}

const uint8_t *ssecfill_bytes(const struct ssecfill *sf)
{
	return sf->buf;
}

void ssecfill_leave(struct ssecfill *sf, struct ssecfill_waiter *wt)
{
	struct ssec *s;

	if (!sf)
		return;
	s = sf->s;
	pthread_mutex_lock(&s->mu);
	for (struct ssecfill_waiter **pp = &sf->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == wt) {
			*pp = wt->next;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	ssecfill_release(sf);
}

/* -- a fill's fetch ------------------------------------------------------------------- */

static void fetch_start(struct ssecfill *sf);

/* Its bytes up to done go to the readers; with is_end, its state too. Under the lock: a
 * waiter leaves (under it) before its event goes. */
static void publish(struct ssecfill *sf, bool is_end, int r)
{
	struct ssec *s = sf->s;

	pthread_mutex_lock(&s->mu);
	sf->avail = sf->done;
	if (is_end) {
		unlist_locked(s, sf);
		sf->state = r == 0 ? SSECFILL_READY : SSECFILL_FAILED;
		sf->error = r;
	}
	for (struct ssecfill_waiter *wt = sf->waiters; wt; wt = wt->next)
		event_active(wt->wake, EV_READ, 0);
	pthread_mutex_unlock(&s->mu);
}

/* The whole chunk, sealed into a buffer apart (readers may be sending the plaintext) and
 * stored; a store that will not keep it (full, degraded) leaves it to the readers that
 * joined. -EIO: it could not be sealed. */
static int store(struct ssecfill *sf)
{
	struct ssecfill_worker *fw = sf->fw;
	uint8_t tag[SSEC_TAG_LEN];
	int r = 0;

	if (fw->sealed_len < sf->len) {
		free(fw->sealed);
		fw->sealed_len = 0;
		fw->sealed = malloc(sf->len);
		if (fw->sealed)
			fw->sealed_len = sf->len;
		else
			r = -ENOMEM;
	}
	if (r == 0)
		r = ssec_store_chunk(sf->cp, &sf->om.meta, sf->ck, sf->index, sf->buf, fw->sealed,
				     sf->len, tag);
	if (r < 0 && r != -EEXIST && r != -EIO)
		log_warn("cache: SSE-C chunk %llu of %s/%s not stored: %s (its readers have it)",
			 (unsigned long long)sf->index, sf->om.meta.id.bucket, sf->om.meta.id.key,
			 strerror(-r));
	if (r == -ENOSPC)
		cachepath_wake_evict(sf->cp);
	return r == -EIO ? r : 0;
}

/* The fetch is over: the chunk is whole (r == 0) and stored, or not; its readers are told
 * either way. */
static void fetch_end(struct ssecfill *sf, int r)
{
	if (r == 0)
		r = store(sf);
	if (r < 0)
		metric_add(M_cache_fills_aborted, 1);
	if (r < 0 && r != -ESTALE)
		log_warn_every(LOG_EVERY_SECOND,
			       "cache: SSE-C fill of %s/%s chunk %llu abandoned: %s",
			       sf->om.meta.id.bucket, sf->om.meta.id.key,
			       (unsigned long long)sf->index, strerror(-r));
	fetch_release(sf);
	publish(sf, true, r);
	ssecfill_release(sf);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	fetch_start(arg);
}

/* Again after a random delay (full jitter) up to base * 2^attempt, within bounds. */
static void fetch_retry(struct ssecfill *sf, int err)
{
	uint64_t cap = (uint64_t)FILLS_RETRY_BASE_MS << (sf->attempt < 16 ? sf->attempt : 16);
	struct timeval tv;
	uint64_t ms;

	if (sf->bev)
		bufferevent_free(sf->bev);
	sf->bev = NULL;
	if (sf->attempt >= FILLS_RETRY_MAX || time(NULL) - sf->started > FILLS_RETRY_WINDOW_S) {
		fetch_end(sf, err);
		return;
	}
	if (cap > FILLS_RETRY_CAP_MS)
		cap = FILLS_RETRY_CAP_MS;
	ms = (uint64_t)random() % (cap + 1);
	tv = (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	sf->attempt++;
	metric_add(M_cache_fill_retries, 1);
	if (!sf->timer)
		sf->timer = event_new(sf->fw->base, -1, 0, retry_cb, sf);
	if (!sf->timer || event_add(sf->timer, &tv) < 0)
		fetch_end(sf, err);
}

/* The answer's head: 206 of exactly our range goes on; else its status (or -EPROTO). */
static int fetch_head(struct ssecfill *sf, struct evbuffer *in)
{
	static const struct http_str get = {"GET", 3};
	size_t len = evbuffer_get_length(in), want = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	struct http_msg *m = malloc(sizeof(*m));
	const struct http_header *h;
	struct content_range cr;
	int r;

	if (!m)
		return -ENOMEM;
	r = http_parse_response((const char *)evbuffer_pullup(in, (ssize_t)want), want, &get, m);
	if (r == 0 && m->status >= 100 && m->status < 200) {
		evbuffer_drain(in, m->head_len);
		free(m);
		return -EAGAIN;
	}
	if (r < 0 || m->status != 206) {
		r = r == -EAGAIN ? r : r < 0 ? -EPROTO : m->status;
		free(m);
		return r;
	}
	h = http_find(m, "content-range");
	if (!h || range_parse_content_range(h->value.p, h->value.n, &cr) < 0 || !cr.has_range ||
	    cr.first != sf->first + sf->done || cr.last != sf->first + sf->len - 1 ||
	    (cr.size_known && cr.size != sf->om.meta.size) || m->body != HTTP_BODY_LENGTH ||
	    m->content_length != sf->len - sf->done)
		r = -EPROTO;
	else
		evbuffer_drain(in, m->head_len);
	sf->is_head_done = r == 0;
	sf->is_keep_alive = r == 0 && m->keep_alive;
	free(m);
	return r;
}

/* An answer other than our 206: the version went (412 to If-Match, 404), the origin
 * faltered (5xx, a bad answer: again), or it refused lotad (400 or 403: the key or the
 * service credentials; never again for this chunk). */
static void fetch_answered(struct ssecfill *sf, int status)
{
	struct cache_key k = sf->om.meta.id;

	if (status == 412 || status == 404) {
		log_info("cache: %s/%s changed at the origin (%d to lotad's If-Match %s): dropped",
			 k.bucket, k.key, status, sf->om.meta.etag);
		cachepath_invalidate(sf->cp, &k);
		fetch_end(sf, -ESTALE);
	} else if (status >= 500 || status < 0) {
		fetch_retry(sf, status < 0 ? status : -EAGAIN);
	} else {
		log_warn("cache: SSE-C fill of %s/%s chunk %llu: the origin answered %d", k.bucket,
			 k.key, (unsigned long long)sf->index, status);
		fetch_end(sf, -EACCES);
	}
}

static void fetch_read_cb(struct bufferevent *bev, void *arg)
{
	struct ssecfill *sf = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct origin *o = origins_for(sf->cp->d, sf->om.meta.id.bucket);
	size_t n;
	int r;

	if (!sf->is_head_done) {
		r = fetch_head(sf, in);
		if (r == -EAGAIN)
			return;
		if (r != 0) {
			fetch_answered(sf, r);
			return;
		}
	}
	if (sf->len - sf->done > evbuffer_get_length(in))
		origin_read_more(o, bev, READ_MORE);
	n = evbuffer_get_length(in);
	if (n > sf->len - sf->done)
		n = sf->len - sf->done;
	if (n && evbuffer_remove(in, sf->buf + sf->done, n) != (int)n) {
		fetch_retry(sf, -EIO);
		return;
	}
	sf->done += n;
	metric_add(sf->why == FILLS_FOR_PRESTAGE ? M_bytes_from_origin_prestage
						 : M_bytes_from_origin_fill,
		   n);
	metric_add(M_bytes_from_origin, n);
	if (sf->done < sf->len)
		return;
	if (sf->is_keep_alive && !evbuffer_get_length(in)) {
		originpool_put(sf->fw->pool, o, bev);
		sf->bev = NULL;
	}
	fetch_end(sf, 0);
}

static void fetch_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ssecfill *sf = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (sf->is_reused && !sf->is_head_done &&
	    !evbuffer_get_length(bufferevent_get_input(bev))) {
		/* An idle connection the origin had closed: again at once on a new one. */
		metric_add(M_origin_retries, 1);
		bufferevent_free(sf->bev);
		sf->bev = NULL;
		fetch_start(sf);
		return;
	}
	fetch_retry(sf, (what & BEV_EVENT_TIMEOUT) ? -ETIMEDOUT : -ECONNRESET);
}

/* The rest of the chunk: Range from the byte after the last one read. */
static int fetch_send(struct ssecfill *sf)
{
	struct lotad *d = sf->cp->d;
	struct cache_key k = sf->om.meta.id;
	struct timeval tv = {.tv_sec = (time_t)d->cfg.origin_timeout};
	struct origin *o = origins_for(d, k.bucket);
	char range[64];
	struct svccreds_header h[2] = {{"Range", range}, {"If-Match", sf->om.meta.etag}};

	snprintf(range, sizeof(range), "bytes=%llu-%llu",
		 (unsigned long long)(sf->first + sf->done),
		 (unsigned long long)(sf->first + sf->len - 1));
	sf->bev = originpool_get(sf->fw->pool, o, &sf->is_reused);
	if (!sf->bev)
		return -ENOMEM;
	sf->is_head_done = sf->is_keep_alive = false;
	if (sf->is_reused)
		metric_add(M_origin_connections_reused, 1);
	bufferevent_setcb(sf->bev, fetch_read_cb, NULL, fetch_event_cb, sf);
	bufferevent_set_timeouts(sf->bev, &tv, &tv);
	metric_add(M_origin_requests, 1);
	if (send_with_key(sf->cp, bufferevent_get_output(sf->bev), "GET", o, &k, sf->key, h, 2) < 0)
		return -EINVAL;
	return bufferevent_enable(sf->bev, EV_READ | EV_WRITE) < 0 ? -ENOMEM : 0;
}

static void fetch_start(struct ssecfill *sf)
{
	int r = fetch_send(sf);

	if (r < 0)
		fetch_retry(sf, r);
}

/* A fill of chunk index of m with key (v, ck: its version's verifier and chunk key), not
 * listed yet, holding a chunk buffer. */
static int fill_new(struct cachepath *cp, struct ssecfill_worker *fw, const struct cache_meta *m,
		    const uint8_t key[SSEC_KEY_LEN], const uint8_t v[SSEC_VERIFIER_LEN],
		    const uint8_t ck[SSEC_KEY_LEN], uint64_t index, struct ssecfill **out)
{
	struct ssecfill *sf = calloc(1, sizeof(*sf));

	*out = sf;
	if (!sf)
		return -ENOMEM;
	sf->s = cp->ssec;
	sf->cp = cp;
	sf->fw = fw;
	sf->index = index;
	sf->refs = 1;
	sf->first = chunkmap_start(m->chunk_size, index);
	sf->len = (size_t)chunkmap_len(m->size, m->chunk_size, index);
	memcpy(sf->verifier, v, SSEC_VERIFIER_LEN);
	memcpy(sf->key, key, SSEC_KEY_LEN);
	memcpy(sf->ck, ck, SSEC_KEY_LEN);
	if (objmeta_copy(&sf->om, m) < 0)
		return -ENOMEM;
	sf->buf = ssec_buffer_get(cp->ssec, sf->len, 0);
	return sf->buf ? 0 : -ENOBUFS;
}

int ssecfill_want(struct cachepath *cp, struct worker *w, const struct cache_meta *m,
		  const uint8_t key[SSEC_KEY_LEN], const uint8_t v[SSEC_VERIFIER_LEN],
		  const uint8_t ck[SSEC_KEY_LEN], uint64_t index, enum fills_reason why)
{
	struct ssec *s = cp->ssec;
	struct ssecfill_worker *fw;
	struct ssecfill *sf;
	bool is_running;
	int r;

	if (!cp->svc)
		return -ENOKEY;
	if (!(fw = worker_of(s, w)))
		return -ENOMEM;
	pthread_mutex_lock(&s->mu);
	is_running = find_locked(s, v, index) != NULL;
	pthread_mutex_unlock(&s->mu);
	if (is_running)
		return 0;
	r = fill_new(cp, fw, m, key, v, ck, index, &sf);
	if (r == 0) {
		sf->why = why;
		pthread_mutex_lock(&s->mu);
		is_running =
		    find_locked(s, v, index) != NULL; /* begun by another worker meanwhile */
		if (!is_running) {
			sf->next = s->fills;
			s->fills = sf;
			sf->is_listed = true;
		}
		pthread_mutex_unlock(&s->mu);
	}
	if (r < 0 || is_running) {
		if (sf)
			fill_free(sf);
		return r;
	}
	metric_add(M_cache_chunk_fills, 1);
	metric_add(M_cache_fills_started, 1);
	sf->started = time(NULL);
	fetch_start(sf); /* may end it at once: sf is not ours to touch after */
	return 0;
}

/* -- lotad's HEAD with a key ---------------------------------------------------------- */

static void head_free(struct ssecfill_head *h)
{
	ssec_wipe(h->ckey, sizeof(h->ckey));
	free(h);
}

static int sign_with_key(void *arg, struct evbuffer *out, const char *method,
			 const struct origin *o, const struct cache_key *k)
{
	struct ssecfill_head *h = arg;

	return send_with_key(h->cp, out, method, o, k, h->ckey, NULL, 0);
}

static void head_done(void *arg, int status, const struct http_msg *m)
{
	struct ssecfill_head *h = arg;

	h->fh = NULL; /* fillhead.c frees its own */
	h->done(h->arg, status, m);
	head_free(h);
}

int ssecfill_head(struct cachepath *cp, struct worker *w, const struct cache_key *k,
		  const uint8_t key[SSEC_KEY_LEN], fills_head_fn done, void *arg,
		  struct ssecfill_head **out)
{
	struct fills *f = fills_of(cp, w);
	struct ssecfill_head *h;
	int r;

	if (!f || !(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	h->cp = cp;
	h->done = done;
	h->arg = arg;
	memcpy(h->ckey, key, SSEC_KEY_LEN);
	r = fills_head_signed(f, k, sign_with_key, h, head_done, h, &h->fh);
	if (r < 0) {
		head_free(h);
		return r;
	}
	*out = h;
	return 0;
}

void ssecfill_head_cancel(struct ssecfill_head *h)
{
	if (!h)
		return;
	fills_head_cancel(h->fh);
	head_free(h);
}

void ssecfill_free_all(struct ssec *s)
{
	while (s->fills) {
		struct ssecfill *sf = s->fills;

		s->fills = sf->next;
		fill_free(sf);
	}
	for (int i = 0; i < CACHEPATH_WORKERS_MAX; i++) {
		struct ssecfill_worker *fw = s->workers[i];

		if (!fw)
			continue;
		originpool_free(fw->pool);
		free(fw->sealed);
		free(fw);
		s->workers[i] = NULL;
	}
}

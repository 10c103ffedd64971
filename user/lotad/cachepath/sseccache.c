/* SSE-C objects in the store: the plaintext of a 200 is sealed chunk by chunk as it is
 * relayed (AES-256-GCM under a key derived from the customer key and the version, each
 * chunk's tag and the version's verifier in the chunk's header), and a read the origin
 * confirmed opens each chunk in user space, tag checked before a byte of it is sent: a
 * committed one from its file, one being filled from lotad's fill with the reader's key
 * (ssecfill.c) or from the store's fill. The store and its administrator see ciphertext,
 * tags and a keyed hash of the key; nothing decrypts without the customer key. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cache.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/hit.h"
#include "cachepath/objmeta.h"
#include "cachepath/request.h"
#include "cachepath/sealed.h"
#include "cachepath/ssecfill.h"
#include "cachepath/sseccache.h"
#include "cachepath/upkeep.h"
#include "chunkmap.h"
#include "exchange/resphead.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

/* Plaintext queued on the client's output before the next chunk is opened (besides the
 * two buffers, at most one chunk each, that a read holds). */
#define HIT_QUEUE_MAX (4 * 1024 * 1024)
#define REQUEST_ID_MAX 64
/* Sources one chunk of a read may try (a fill that ended as we came, a store's fill that
 * was aborted) before the read is cut. */
#define CHUNK_TRIES 4
/* With every chunk buffer in use a fill waits for one: this often, within the origin
 * timeout. */
#define BUFFER_WAIT_MS 20

struct ssec_tee {
	struct objmeta om; /* the version, its extra starting with the marker */
	uint8_t ck[SSEC_KEY_LEN];
	uint8_t verifier[SSEC_VERIFIER_LEN];
	uint8_t *buf; /* the chunk being gathered */
	size_t buflen;
	uint64_t fill, index, nchunks;
};

struct ssec_hit;

/* One of a read's two chunk buffers: its plaintext is queued by reference, so that it is
 * copied once (into the socket), and is free again once the socket has taken it. */
struct hit_buf {
	struct ssec_hit *h;
	uint8_t *p;
	bool is_queued;
	bool is_used; /* it held plaintext: wiped at the end (an unused one is never touched) */
};

struct ssec_hit {
	struct cachepath *cp;
	struct worker *w;
	struct event *wake; /* the exchange's */
	struct objmeta om;  /* the version, its extra starting with the marker */
	uint8_t ck[SSEC_KEY_LEN];
	uint8_t verifier[SSEC_VERIFIER_LEN];
	uint8_t key[SSEC_KEY_LEN]; /* the reader's, for fills: wiped with the rest */
	bool can_fill;
	struct hit_buf bufs[2];
	size_t buflen;
	unsigned queued; /* buffers the client's output still references */
	bool is_ended;	 /* the mover is done with it: freed once nothing is queued */
	uint64_t pos, last, index;
	uint64_t asked;	     /* chunks below it were asked for ahead */
	unsigned tries;	     /* sources tried for chunk index */
	bool is_missed;	     /* chunk index was not committed when the read came to it */
	struct ssecfill *sf; /* lotad's fill of chunk index, joined */
	struct ssecfill_waiter wt;
	struct cache_follower *fl; /* the store's fill of chunk index, followed */
	struct event *timer;	   /* waiting for a chunk buffer */
	unsigned buffer_waits;
};

/* -- the tee: a 200 sealed into chunks as it is relayed ------------------------------- */

/* May this 200 be cached sealed? A whole body of known length, big enough, that the
 * origin decrypted with AES256 (it says so), with an ETag. */
static bool is_teeable(const struct exchange *x, const struct http_msg *m)
{
	return m->body == HTTP_BODY_LENGTH &&
	       m->content_length >= exchange_lotad(x)->cfg.min_object_size &&
	       m->content_length > 0 && ssec_is_sealed_answer(m);
}

void ssec_tee_begin(struct exchange *x, struct ssecread *o, const struct http_msg *m)
{
	struct cache_key k = cachepath_key(x);
	struct ssec_tee *t;
	uint64_t cs = cache_chunk_size(o->cp->cache);

	if (!is_teeable(x, m) || !(t = calloc(1, sizeof(*t))))
		return;
	o->tee = t;
	if (ssec_version_from(o->cp->ssec, o->key, &k, m->content_length, cs, m, &t->om,
			      t->verifier, t->ck) < 0)
		goto fail;
	t->buflen = (size_t)(m->content_length < cs ? m->content_length : cs);
	t->nchunks = chunkmap_count(m->content_length, cs);
	if (!(t->buf = ssec_buffer_get(o->cp->ssec, t->buflen, SSEC_BUFFERS_FILLS)))
		goto fail;
	/* Chunks of this version sealed under another key, or plain ones, go first (another
	 * version goes when ours begins: one version per key). */
	if (o->held && ssec_is_other_copy(&o->held->meta, &t->om.meta, t->verifier))
		cachepath_invalidate(o->cp, &k);
	log_info("cache: %s/%s is an SSE-C object: cached sealed under the reader's key",
		 x->s3.bucket, x->s3.key);
	return;
fail:
	ssec_tee_end(o);
}

void ssec_tee_body(struct exchange *x, struct ssecread *o, struct evbuffer *src, size_t n)
{
	struct ssec_tee *t = o->tee;
	struct evbuffer_ptr p;
	uint8_t tag[SSEC_TAG_LEN];
	size_t done = 0;

	while (done < n && t->index < t->nchunks) {
		uint64_t len = chunkmap_len(t->om.meta.size, t->om.meta.chunk_size, t->index);
		size_t take =
		    (size_t)(len - t->fill) < n - done ? (size_t)(len - t->fill) : n - done;

		if (evbuffer_ptr_set(src, &p, done, EVBUFFER_PTR_SET) < 0 ||
		    evbuffer_copyout_from(src, &p, t->buf + t->fill, take) != (ssize_t)take) {
			t->index = t->nchunks; /* store nothing more */
			return;
		}
		t->fill += take;
		done += take;
		if (t->fill == len) {
			/* Not stored (another fill has it, the store refuses): the client has
			 * its bytes from the relay either way. */
			ssec_store_chunk(o->cp, &t->om.meta, t->ck, t->index, t->buf, t->buf,
					 (size_t)len, tag);
			t->index++;
			t->fill = 0;
		}
	}
}

void ssec_tee_end(struct ssecread *o)
{
	struct ssec_tee *t = o->tee;

	if (!t)
		return;
	ssec_buffer_put(o->cp->ssec, t->buf, t->buflen);
	ssec_wipe(t->ck, sizeof(t->ck));
	objmeta_free(&t->om);
	free(t);
	o->tee = NULL;
}

/* -- a read's chunk sources ----------------------------------------------------------- */

static void wake_cb(void *arg)
{
	event_active(arg, EV_READ, 0);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	wake_cb(arg);
}

/* From the store's fill, followed, once it has written the whole chunk. -ENOENT: it was
 * aborted (try another source). */
static int from_follower(struct ssec_hit *h, uint8_t *buf, uint64_t *len)
{
	struct cache_fill_status st;
	int r;

	cache_follower_status(h->fl, &st);
	if (st.state == CACHE_FILL_RUNNING && st.written < st.size)
		return -EAGAIN;
	r = st.written == st.size
		? ssec_read_followed(h->fl, h->verifier, h->ck, h->index, buf, h->buflen, len)
		: -ENOENT;
	cache_follower_close(h->fl);
	h->fl = NULL;
	return r;
}

/* Every chunk buffer is in use: a fill can begin only once one is free. */
static int wait_for_buffer(struct ssec_hit *h)
{
	struct timeval tv = {0, BUFFER_WAIT_MS * 1000};
	uint64_t most = h->cp->d->cfg.origin_timeout * 1000 / BUFFER_WAIT_MS;

	if (h->buffer_waits++ >= most)
		return -ENOBUFS;
	if (!h->timer)
		h->timer = evtimer_new(h->w->base, timer_cb, h->wake);
	if (!h->timer || evtimer_add(h->timer, &tv) < 0)
		return -ENOMEM;
	h->tries--; /* waiting is not a try */
	return -EAGAIN;
}

/* Chunk h->index is not committed: follow the store's fill, join lotad's, or begin one
 * with the reader's key. 0: a source to read (or gone: look again), -EAGAIN, -errno. */
static int find_source(struct ssec_hit *h)
{
	const struct cache_meta *m = &h->om.meta;
	int r;

	h->is_missed = true;
	if (cache_chunk_follow(h->cp->cache, m, (uint32_t)h->index, wake_cb, h->wake, &h->fl) == 0)
		return 0;
	if (!h->can_fill)
		return -ENOENT; /* evicted since the read was validated */
	h->wt.wake = h->wake;
	h->sf = ssecfill_join(h->cp->ssec, h->verifier, h->index, &h->wt);
	if (h->sf)
		return 0;
	r = ssecfill_want(h->cp, h->w, m, h->key, h->verifier, h->ck, h->index, FILLS_FOR_READ);
	if (r == -ENOBUFS)
		return wait_for_buffer(h);
	if (r < 0)
		return r;
	h->sf = ssecfill_join(h->cp->ssec, h->verifier, h->index, &h->wt);
	return 0;
}

/* Chunk h->index, opened into buf. -EINPROGRESS: it comes from lotad's fill, joined (sent
 * as it arrives: stream_fill); -EAGAIN: wait (the read is woken); -EBADMSG: a chunk here
 * is not intact or not ours. */
static int get_chunk(struct ssec_hit *h, uint8_t *buf, uint64_t *len)
{
	for (;;) {
		int r;

		if (h->sf)
			return -EINPROGRESS;
		if (h->fl)
			r = from_follower(h, buf, len);
		else
			r = ssec_read_committed(h->cp, &h->om.meta, h->verifier, h->ck, h->index,
						buf, h->buflen, len);
		if (r != -ENOENT)
			return r;
		if (++h->tries > CHUNK_TRIES)
			return -EIO;
		r = find_source(h);
		if (r < 0)
			return r;
	}
}

/* Asks for the chunks after index, up to fill-parallelism of them, once each. */
static void read_ahead(struct ssec_hit *h)
{
	const struct cache_meta *m = &h->om.meta;
	uint64_t depth = h->cp->d->cfg.fill_parallelism, last = h->last / m->chunk_size;

	if (!h->can_fill)
		return;
	if (h->asked <= h->index)
		h->asked = h->index + 1;
	while (h->asked <= last && h->asked < h->index + (depth ? depth : 1)) {
		enum cache_chunk_state st = CACHE_CHUNK_ABSENT;

		/* -ENOENT (the store holds no chunk of it yet) leaves st ABSENT too */
		if (cache_chunk_states(h->cp->cache, m, (uint32_t)h->asked, 1, &st) == -ERANGE)
			return;
		if (st == CACHE_CHUNK_ABSENT &&
		    ssecfill_want(h->cp, h->w, m, h->key, h->verifier, h->ck, h->asked,
				  FILLS_FOR_READ) == -ENOBUFS)
			return; /* asked again when the read moves on */
		h->asked++;
	}
}

/* -- a read served from sealed chunks, and from lotad's fills ------------------------- */

static void hit_release(struct ssec_hit *h)
{
	for (int i = 0; i < 2; i++)
		if (h->bufs[i].p)
			ssec_buffer_put(h->cp->ssec, h->bufs[i].p,
					h->bufs[i].is_used ? h->buflen : 0);
	ssec_wipe(h->ck, sizeof(h->ck));
	ssec_wipe(h->key, sizeof(h->key));
	objmeta_free(&h->om);
	free(h);
}

/* libevent is done with a buffer's bytes (sent, or the connection went away). */
static void buf_unqueued(const void *data, size_t len, void *arg)
{
	struct hit_buf *b = arg;
	struct ssec_hit *h = b->h;

	b->is_queued = false;
	if (--h->queued == 0 && h->is_ended)
		hit_release(h);
}

static struct hit_buf *free_buf(struct ssec_hit *h)
{
	for (int i = 0; i < 2; i++)
		if (!h->bufs[i].is_queued)
			return &h->bufs[i];
	return NULL;
}

/* libevent is done with bytes of a fill (sent, or the connection went away). */
static void fill_unqueued(const void *data, size_t len, void *arg)
{
	ssecfill_release((struct ssecfill *)arg);
}

static enum mover_result chunk_failed(struct exchange *x, struct ssec_hit *h, int r)
{
	struct cache_key k = h->om.meta.id;

	if (r == -ESTALE) {
		x->cut_why = "the object changed at the origin mid-read";
		return MOVER_CUT;
	}
	if (r == -EACCES) {
		x->cut_why = "the origin refused lotad's fill with the key";
		return MOVER_CUT;
	}
	log_warn("cache: %s/%s: SSE-C chunk %llu cannot be had: %s", k.bucket, k.key,
		 (unsigned long long)h->index, strerror(-r));
	if (r == -EBADMSG)
		cachepath_invalidate(h->cp, &k);
	x->cut_why = "a sealed chunk cannot be opened";
	return MOVER_CUT;
}

static void next_chunk(struct ssec_hit *h)
{
	metric_add(h->is_missed ? M_cache_chunk_misses : M_cache_chunk_hits, 1);
	h->index++;
	h->tries = 0;
	h->buffer_waits = 0;
	h->is_missed = false;
}

/* The bytes of the joined fill that are there, up to the end of the read's part of the
 * chunk, queued by reference (each queued piece holds the fill). MOVER_DONE once the part
 * is queued; MOVER_WAIT for more bytes or for the client. */
static enum mover_result stream_fill(struct exchange *x, struct ssec_hit *h, struct evbuffer *out)
{
	const struct cache_meta *m = &h->om.meta;
	uint64_t start = chunkmap_start(m->chunk_size, h->index), avail, upto;
	uint64_t end = start + chunkmap_len(m->size, m->chunk_size, h->index);
	int err = 0;
	enum ssecfill_state st = ssecfill_state(h->sf, &avail, &err);

	if (end > h->last + 1)
		end = h->last + 1;
	upto = start + avail < end ? start + avail : end;
	while (h->pos < upto && evbuffer_get_length(out) < HIT_QUEUE_MAX) {
		size_t n = (size_t)(upto - h->pos);

		ssecfill_hold(h->sf);
		if (evbuffer_add_reference(out, ssecfill_bytes(h->sf) + (h->pos - start), n,
					   fill_unqueued, h->sf) < 0) {
			ssecfill_release(h->sf);
			return MOVER_CUT;
		}
		h->pos += n;
		exchange_count_out(x, n);
		metric_add(M_cache_bytes_served, n);
	}
	if (h->pos == end) {
		ssecfill_leave(h->sf, &h->wt);
		h->sf = NULL;
		return MOVER_DONE;
	}
	if (st == SSECFILL_FAILED && h->pos == upto)
		return chunk_failed(x, h, err ? err : -EIO);
	return MOVER_WAIT; /* woken by the fill's next bytes, or by the client's output */
}

/* Chunk h->index, opened into b (len bytes): the read's part of it, queued by reference. */
static int queue_opened(struct exchange *x, struct ssec_hit *h, struct hit_buf *b, uint64_t len)
{
	uint64_t start = chunkmap_start(h->om.meta.chunk_size, h->index);
	uint64_t end = start + len - 1 < h->last ? start + len - 1 : h->last, n = end - h->pos + 1;

	if (evbuffer_add_reference(exchange_client_out(x), b->p + (h->pos - start), (size_t)n,
				   buf_unqueued, b) < 0)
		return -ENOMEM;
	b->is_queued = true;
	h->queued++;
	h->pos += n;
	exchange_count_out(x, n);
	metric_add(M_cache_bytes_served, n);
	next_chunk(h);
	return 0;
}

static enum mover_result hit_pump(struct exchange *x, void *state)
{
	struct ssec_hit *h = state;
	struct evbuffer *out = exchange_client_out(x);
	struct hit_buf *b;

	while (h->pos <= h->last) {
		enum mover_result v;
		uint64_t len = 0;
		int r;

		if (evbuffer_get_length(out) >= HIT_QUEUE_MAX)
			return MOVER_WAIT; /* the client's output wakes us as it drains */
		if (h->sf) {
			v = stream_fill(x, h, out);
			if (v != MOVER_DONE)
				return v;
			next_chunk(h);
			continue;
		}
		if (!(b = free_buf(h)))
			return MOVER_WAIT;
		b->is_used = true;
		r = get_chunk(h, b->p, &len);
		read_ahead(h);
		if (r == -EINPROGRESS)
			continue;
		if (r == -EAGAIN)
			return MOVER_WAIT;
		if (r < 0)
			return chunk_failed(x, h, r);
		if (queue_opened(x, h, b, len) < 0)
			return MOVER_CUT;
	}
	return MOVER_DONE;
}

/* The mover is done: nothing of the read may wake the exchange after this. */
static void hit_free(void *state)
{
	struct ssec_hit *h = state;

	if (!h || !h->cp) {
		free(h);
		return;
	}
	ssecfill_leave(h->sf, &h->wt);
	h->sf = NULL;
	cache_follower_close(h->fl);
	h->fl = NULL;
	if (h->timer)
		event_free(h->timer);
	h->timer = NULL;
	h->is_ended = true;
	if (h->queued == 0)
		hit_release(h);
}

static const struct mover_ops hit_ops = {hit_pump, hit_free};

/* The head the origin would send: the stored one without the marker, and the SSE-C
 * fields the origin answers with, from the reader's own request. */
static void write_head(struct exchange *x, struct ssecread *o, const struct cache_meta *m,
		       const struct range *rg, const struct http_msg *m304, const char *label)
{
	struct evbuffer *out = exchange_client_out(x);
	char cr[RANGE_CONTENT_RANGE_MAX], reqid[REQUEST_ID_MAX];

	hit_request_id(m304, reqid, sizeof(reqid));
	resphead_start(out, x->status);
	if (reqid[0])
		evbuffer_add_printf(out, "x-amz-request-id: %s\r\n", reqid);
	if (m->last_modified[0])
		evbuffer_add_printf(out, "Last-Modified: %s\r\n", m->last_modified);
	evbuffer_add_printf(out, "ETag: %s\r\nAccept-Ranges: bytes\r\n", m->etag);
	if (m->content_type[0])
		evbuffer_add_printf(out, "Content-Type: %s\r\n", m->content_type);
	if (rg && range_format(rg, m->size, cr, sizeof(cr)) == 0)
		evbuffer_add_printf(out, "Content-Range: %s\r\n", cr);
	evbuffer_add(out, (const char *)m->extra + SSEC_MARKER_LEN, m->extra_len - SSEC_MARKER_LEN);
	evbuffer_add_printf(out, "x-amz-server-side-encryption-customer-algorithm: AES256\r\n");
	evbuffer_add_printf(out, "x-amz-server-side-encryption-customer-key-md5: %.*s\r\n",
			    (int)o->md5->value.n, o->md5->value.p);
	evbuffer_add_printf(out, "x-lota-cache: %s\r\n", label);
	resphead_end(out, rg ? rg->last - rg->first + 1 : m->size, !x->req.keep_alive);
}

/* The 304 answered our condition, but the copy cannot be served now (no buffer): the
 * client's request again, as it came. */
static enum route_verdict redo(struct exchange *x, struct ssecread *o)
{
	o->redone = true;
	o->is_ours_inm = false;
	exchange_set_extra(x, NULL);
	exchange_label(x, "relay");
	return RT_REDO;
}

static int hit_new(struct exchange *x, struct ssecread *o, const struct cache_meta *m,
		   struct ssec_hit **out)
{
	struct ssec_hit *h = calloc(1, sizeof(*h));

	*out = h;
	if (!h)
		return -ENOMEM;
	h->cp = o->cp;
	h->w = exchange_worker(x);
	if (!(h->wake = exchange_wake_event(x)))
		return -ENOMEM;
	if (objmeta_copy(&h->om, m) < 0)
		return -ENOMEM;
	h->buflen = (size_t)(m->size < m->chunk_size ? m->size : m->chunk_size);
	for (int i = 0; i < 2; i++) {
		h->bufs[i].h = h;
		if (!(h->bufs[i].p = ssec_buffer_get(o->cp->ssec, h->buflen, SSEC_BUFFERS_FILLS)))
			return -ENOBUFS;
	}
	h->can_fill = o->cp->svc != NULL;
	if (h->can_fill)
		memcpy(h->key, o->key, sizeof(h->key));
	return ssec_version_keys(o->cp->ssec, o->key, m, h->verifier, h->ck);
}

enum route_verdict ssec_serve_hit(struct exchange *x, struct ssecread *o,
				  const struct cache_meta *m, const struct http_msg *m304)
{
	const struct http_header *rh = http_find(&x->req, "range");
	struct range rg = {0, m->size - 1};
	enum range_result rr = RANGE_WHOLE;
	struct ssec_hit *h = NULL;
	const char *label;

	if (rh)
		rr = range_parse(rh->value.p, rh->value.n, m->size, &rg);
	if (rr == RANGE_UNSATISFIABLE || !ssec_is_sealed(m) || m->extra_len < SSEC_MARKER_LEN ||
	    hit_new(x, o, m, &h) < 0)
		goto fail;
	h->pos = rg.first;
	h->last = rg.last;
	h->index = rg.first / m->chunk_size;
	label = ssec_is_committed(o->cp, m, rg.first, rg.last) ? "hit" : "miss";
	x->status = rr == RANGE_PARTIAL ? 206 : 200;
	write_head(x, o, m, rh ? &rg : NULL, m304, label);
	exchange_serve(x, &hit_ops, h);
	exchange_label(x, label);
	metric_add(label[0] == 'h' ? M_cache_hits : M_cache_misses, 1);
	return RT_SERVE;
fail:
	hit_free(h);
	return redo(x, o);
}

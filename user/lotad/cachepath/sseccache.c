/* SSE-C objects in the store: the plaintext of a 200 is sealed chunk by chunk as it is
 * relayed (AES-256-GCM under a key derived from the customer key and the version, each
 * chunk's tag and the version's verifier in the chunk's header), and a hit opens each
 * chunk in user space, tag checked before a byte of it is sent. The store and its
 * administrator see ciphertext, tags and a keyed hash of the key; nothing decrypts
 * without the customer key. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "cache.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/committer.h"
#include "cachepath/hit.h"
#include "cachepath/objmeta.h"
#include "cachepath/request.h"
#include "cachepath/sseccache.h"
#include "cachepath/upkeep.h"
#include "chunkmap.h"
#include "exchange/resphead.h"
#include "hex.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

/* "x-lota-ssec: 1 <verifier hex> <tag hex>\r\n": the first line of a sealed chunk's extra
 * field. The origin's headers follow it (those the origin sends about SSE-C excluded: a
 * hit writes them from the reader's own request). */
#define MARKER_PREFIX "x-lota-ssec: 1 "
#define MARKER_PREFIX_LEN (sizeof(MARKER_PREFIX) - 1)
#define MARKER_LEN (MARKER_PREFIX_LEN + 2 * SSEC_VERIFIER_LEN + 1 + 2 * SSEC_TAG_LEN + 2)
/* Plaintext queued on the client's output before the next chunk is opened (besides the
 * two buffers, at most one chunk each, that a hit holds). */
#define HIT_QUEUE_MAX (4 * 1024 * 1024)
#define REQUEST_ID_MAX 64

struct ssec_tee {
	struct objmeta om; /* the version, without the marker */
	uint8_t ck[SSEC_KEY_LEN];
	uint8_t verifier[SSEC_VERIFIER_LEN];
	uint8_t *buf; /* the chunk being gathered */
	size_t buflen;
	uint64_t fill, index, nchunks;
};

struct ssec_hit;

/* One of a hit's two chunk buffers: its plaintext is queued by reference, so that it is
 * copied once (into the socket), and is free again once the socket has taken it. */
struct hit_buf {
	struct ssec_hit *h;
	uint8_t *p;
	bool is_queued;
};

struct ssec_hit {
	struct cachepath *cp;
	struct objmeta om;
	uint8_t ck[SSEC_KEY_LEN];
	uint8_t verifier[SSEC_VERIFIER_LEN];
	struct hit_buf bufs[2];
	size_t buflen;
	unsigned queued; /* buffers the client's output still references */
	bool is_ended;	 /* the mover is done with it: freed once nothing is queued */
	uint64_t pos, last, index;
	char exbuf[CACHE_EXTRA_MAX];
};

/* -- buffers, marker, keys ------------------------------------------------------------ */

static uint8_t *buffer_get(struct ssec *s, size_t len)
{
	uint8_t *b;

	if (atomic_fetch_add(&s->buffers, 1) >= SSEC_BUFFERS_MAX) {
		atomic_fetch_sub(&s->buffers, 1);
		return NULL;
	}
	b = malloc(len ? len : 1);
	if (!b)
		atomic_fetch_sub(&s->buffers, 1);
	return b;
}

static void buffer_put(struct ssec *s, uint8_t *b, size_t len)
{
	if (!b)
		return;
	ssec_wipe(b, len); /* it held plaintext */
	free(b);
	atomic_fetch_sub(&s->buffers, 1);
}

bool ssec_is_sealed(const struct cache_meta *m)
{
	return m->extra_len >= MARKER_PREFIX_LEN &&
	       memcmp(m->extra, MARKER_PREFIX, MARKER_PREFIX_LEN) == 0;
}

int ssec_marker_parse(const void *extra, size_t len, struct ssec_marker *mk)
{
	const char *p = extra;
	const char *v = p + MARKER_PREFIX_LEN, *t = v + 2 * SSEC_VERIFIER_LEN + 1;

	if (len < MARKER_LEN || memcmp(p, MARKER_PREFIX, MARKER_PREFIX_LEN) != 0 || t[-1] != ' ' ||
	    memcmp(p + MARKER_LEN - 2, "\r\n", 2) != 0 ||
	    hex_decode(v, mk->verifier, SSEC_VERIFIER_LEN) < 0 || hex_decode(t, mk->tag, SSEC_TAG_LEN) < 0)
		return -EINVAL;
	return 0;
}

static void marker_format(const uint8_t v[SSEC_VERIFIER_LEN], const uint8_t tag[SSEC_TAG_LEN],
			  char out[MARKER_LEN + 1])
{
	memcpy(out, MARKER_PREFIX, MARKER_PREFIX_LEN);
	hex_encode(v, SSEC_VERIFIER_LEN, out + MARKER_PREFIX_LEN);
	out[MARKER_PREFIX_LEN + 2 * SSEC_VERIFIER_LEN] = ' ';
	hex_encode(tag, SSEC_TAG_LEN, out + MARKER_PREFIX_LEN + 2 * SSEC_VERIFIER_LEN + 1);
	memcpy(out + MARKER_LEN - 2, "\r\n", 3);
}

static int identity(const struct cache_meta *m, char *buf, size_t cap)
{
	return ssec_identity(m->id.bucket, m->id.key, m->id.version, m->etag, m->size,
			     m->chunk_size, buf, cap);
}

int ssec_version_verifier(const struct ssec *s, const uint8_t key[SSEC_KEY_LEN],
			  const struct cache_meta *m, uint8_t v[SSEC_VERIFIER_LEN])
{
	char id[SSEC_IDENT_MAX];
	int n = identity(m, id, sizeof(id));

	return n < 0 ? n : ssec_verifier(s->secret, key, id, (size_t)n, v);
}

/* The version's verifier and chunk key for key. */
static int version_keys(const struct ssec *s, const uint8_t key[SSEC_KEY_LEN],
			const struct cache_meta *m, uint8_t v[SSEC_VERIFIER_LEN],
			uint8_t ck[SSEC_KEY_LEN])
{
	char id[SSEC_IDENT_MAX];
	int n = identity(m, id, sizeof(id));

	if (n < 0)
		return n;
	if (ssec_verifier(s->secret, key, id, (size_t)n, v) < 0)
		return -EIO;
	return ssec_chunk_key(key, id, (size_t)n, ck);
}

/* -- the tee: a 200 sealed into chunks as it is relayed ------------------------------- */

/* The origin's head without its SSE-C fields (the reader's own are written on a hit) and
 * without anything named like our marker. */
static int version_of(const struct exchange *x, const struct http_msg *m, struct objmeta *om)
{
	struct http_msg *c = malloc(sizeof(*c));
	struct cache_key k = cachepath_key(x);
	int r;

	memset(om, 0, sizeof(*om));
	if (!c)
		return -ENOMEM;
	*c = *m;
	c->nheaders = 0;
	for (size_t i = 0; i < m->nheaders; i++)
		if (!http_name_has_prefix(&m->headers[i].name, OBJMETA_SSEC_PREFIX) &&
		    !http_name_has_prefix(&m->headers[i].name, "x-lota-"))
			c->headers[c->nheaders++] = m->headers[i];
	r = objmeta_from_response(om, &k, m->content_length, c);
	free(c);
	if (r == 0 && om->meta.extra_len + MARKER_LEN > CACHE_EXTRA_MAX)
		r = -E2BIG;
	return r;
}

/* May this 200 be cached sealed? A whole body of known length, big enough, that the
 * origin decrypted with AES256 (it says so), with an ETag. */
static bool is_teeable(const struct exchange *x, const struct http_msg *m)
{
	const struct http_header *alg = http_find(m, OBJMETA_SSEC_PREFIX "algorithm");

	return m->body == HTTP_BODY_LENGTH &&
	       m->content_length >= exchange_lotad(x)->cfg.min_object_size &&
	       m->content_length > 0 && alg && http_str_eq(&alg->value, "AES256") &&
	       http_find(m, "etag");
}

/* A version held that this one must not mix with: another version, a plain one, or one
 * sealed under another key. It goes first (the store keeps one version per key, but the
 * same ETag would otherwise keep the old chunks). */
static void drop_other(struct exchange *x, struct ssecread *o, const struct ssec_tee *t)
{
	struct ssec_marker mk;
	const struct cache_meta *h = o->held ? &o->held->meta : NULL;
	struct cache_key k = cachepath_key(x);

	if (!h)
		return;
	if (ssec_is_sealed(h) && !strcmp(h->etag, t->om.meta.etag) && h->size == t->om.meta.size &&
	    h->chunk_size == t->om.meta.chunk_size &&
	    ssec_marker_parse(h->extra, h->extra_len, &mk) == 0 &&
	    ssec_equal(mk.verifier, t->verifier, sizeof(mk.verifier)))
		return;
	cachepath_invalidate(o->cp, &k);
}

void ssec_tee_begin(struct exchange *x, struct ssecread *o, const struct http_msg *m)
{
	struct ssec_tee *t;
	uint64_t cs = cache_chunk_size(o->cp->cache);

	if (!is_teeable(x, m) || !(t = calloc(1, sizeof(*t))))
		return;
	if (version_of(x, m, &t->om) < 0)
		goto fail;
	t->om.meta.chunk_size = cs;
	t->buflen = (size_t)(m->content_length < cs ? m->content_length : cs);
	t->nchunks = chunkmap_count(m->content_length, cs);
	if (version_keys(o->cp->ssec, o->key, &t->om.meta, t->verifier, t->ck) < 0 ||
	    !(t->buf = buffer_get(o->cp->ssec, t->buflen)))
		goto fail;
	drop_other(x, o, t);
	o->tee = t;
	log_info("cache: %s/%s is an SSE-C object: cached sealed under the reader's key",
		 x->s3.bucket, x->s3.key);
	return;
fail:
	o->tee = t;
	ssec_tee_end(o);
}

/* The gathered chunk t->index is whole: sealed in place, then written and committed. A
 * chunk another fill has, or the store refuses, is not stored (the client has its bytes
 * from the relay either way). */
static void store_chunk(struct exchange *x, struct ssecread *o, struct ssec_tee *t)
{
	uint64_t len = chunkmap_len(t->om.meta.size, t->om.meta.chunk_size, t->index);
	struct cache_meta meta = t->om.meta;
	uint8_t tag[SSEC_TAG_LEN];
	char *ex = malloc(MARKER_LEN + 1 + t->om.meta.extra_len);
	struct cache_fill *f;
	char label[128];
	int r;

	if (!ex || ssec_seal(t->ck, t->index, t->buf, (size_t)len, tag) < 0)
		goto out;
	marker_format(t->verifier, tag, ex);
	memcpy(ex + MARKER_LEN, t->om.meta.extra, t->om.meta.extra_len);
	meta.extra = ex;
	meta.extra_len = MARKER_LEN + t->om.meta.extra_len;
	r = cache_chunk_begin(o->cp->cache, &meta, (uint32_t)t->index, &f);
	if (r != CACHE_BEGIN_FILL)
		goto out;
	r = cache_fill_write(f, t->buf, (size_t)len);
	if (r < 0) {
		cache_fill_abort(f, r);
		goto out;
	}
	snprintf(label, sizeof(label), "%s/%s", x->s3.bucket, x->s3.key);
	committer_commit(o->cp->committer, f, label);
out:
	free(ex);
}

void ssec_tee_body(struct exchange *x, struct ssecread *o, struct evbuffer *src, size_t n)
{
	struct ssec_tee *t = o->tee;
	struct evbuffer_ptr p;
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
			store_chunk(x, o, t);
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
	buffer_put(o->cp->ssec, t->buf, t->buflen);
	ssec_wipe(t->ck, sizeof(t->ck));
	objmeta_free(&t->om);
	free(t);
	o->tee = NULL;
}

/* -- a hit ---------------------------------------------------------------------------- */

/* Chunk h->index, opened: CRC verified (the store's), the marker of its own header naming
 * our verifier, every byte read and its tag checked. -EBADMSG: do not serve it. */
static int open_chunk(struct ssec_hit *h, uint8_t *buf, uint64_t *len)
{
	struct cache_chunk *ch;
	struct ssec_marker mk;
	size_t exlen = 0, got = 0;
	int r = cache_chunk_open(h->cp->cache, &h->om.meta, (uint32_t)h->index, &ch);

	if (r < 0)
		return r;
	r = cache_chunk_verify(ch);
	if (r == 0)
		r = cache_chunk_extra(ch, h->exbuf, sizeof(h->exbuf), &exlen);
	if (r == 0 &&
	    (ssec_marker_parse(h->exbuf, exlen, &mk) < 0 ||
	     !ssec_equal(mk.verifier, h->verifier, sizeof(mk.verifier)) || ch->len > h->buflen))
		r = -EBADMSG;
	while (r == 0 && got < ch->len) {
		ssize_t n = pread(ch->fd, buf + got, ch->len - got, (off_t)(ch->body_offset + got));

		if (n <= 0)
			r = n < 0 ? -errno : -EBADMSG;
		got += n > 0 ? (size_t)n : 0;
	}
	if (r == 0)
		r = ssec_open(h->ck, h->index, buf, (size_t)ch->len, mk.tag);
	*len = ch->len;
	cache_chunk_close(ch);
	return r;
}

static void hit_release(struct ssec_hit *h)
{
	for (int i = 0; i < 2; i++)
		if (h->bufs[i].p)
			buffer_put(h->cp->ssec, h->bufs[i].p, h->buflen);
	ssec_wipe(h->ck, sizeof(h->ck));
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

static enum mover_result hit_pump(struct exchange *x, void *state)
{
	struct ssec_hit *h = state;
	struct evbuffer *out = exchange_client_out(x);
	struct hit_buf *b;

	while (h->pos <= h->last) {
		uint64_t start = chunkmap_start(h->om.meta.chunk_size, h->index), len, end, n;
		int r;

		if (evbuffer_get_length(out) >= HIT_QUEUE_MAX || !(b = free_buf(h)))
			return MOVER_WAIT; /* the client's output wakes us as it drains */
		r = open_chunk(h, b->p, &len);
		if (r < 0) {
			struct cache_key k = h->om.meta.id;

			log_warn("cache: %s/%s: SSE-C chunk %llu cannot be opened: %s", k.bucket,
				 k.key, (unsigned long long)h->index, strerror(-r));
			if (r == -EBADMSG)
				cachepath_invalidate(h->cp, &k);
			x->cut_why = "a sealed chunk cannot be opened";
			return MOVER_CUT;
		}
		end = start + len - 1 < h->last ? start + len - 1 : h->last;
		n = end - h->pos + 1;
		if (evbuffer_add_reference(out, b->p + (h->pos - start), (size_t)n, buf_unqueued,
					   b) < 0)
			return MOVER_CUT;
		b->is_queued = true;
		h->queued++;
		h->pos += n;
		h->index++;
		exchange_count_out(x, n);
		metric_add(M_cache_bytes_served, n);
	}
	return MOVER_DONE;
}

static void hit_free(void *state)
{
	struct ssec_hit *h = state;

	if (!h)
		return;
	h->is_ended = true;
	if (h->queued == 0)
		hit_release(h);
}

static const struct mover_ops hit_ops = {hit_pump, hit_free};

/* The head the origin would send: the stored one without the marker, and the SSE-C
 * fields the origin answers with, from the reader's own request. */
static void write_head(struct exchange *x, struct ssecread *o, const struct cache_meta *m,
		       const struct range *rg, const struct http_msg *m304)
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
	evbuffer_add(out, (const char *)m->extra + MARKER_LEN, m->extra_len - MARKER_LEN);
	evbuffer_add_printf(out, "x-amz-server-side-encryption-customer-algorithm: AES256\r\n");
	evbuffer_add_printf(out, "x-amz-server-side-encryption-customer-key-md5: %.*s\r\n",
			    (int)o->md5->value.n, o->md5->value.p);
	evbuffer_add_printf(out, "x-lota-cache: hit\r\n");
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

enum route_verdict ssec_serve_hit(struct exchange *x, struct ssecread *o,
				  const struct http_msg *m304)
{
	const struct cache_meta *m = &o->held->meta;
	const struct http_header *rh = http_find(&x->req, "range");
	struct range rg = {0, m->size - 1};
	enum range_result rr = RANGE_WHOLE;
	struct ssec_hit *h = calloc(1, sizeof(*h));

	if (rh)
		rr = range_parse(rh->value.p, rh->value.n, m->size, &rg);
	if (!h || rr == RANGE_UNSATISFIABLE || !ssec_is_sealed(m) || m->extra_len < MARKER_LEN)
		goto fail;
	h->cp = o->cp;
	if (objmeta_copy(&h->om, m) < 0)
		goto fail;
	h->cp = o->cp;
	h->buflen = (size_t)(m->size < m->chunk_size ? m->size : m->chunk_size);
	for (int i = 0; i < 2; i++) {
		h->bufs[i].h = h;
		if (!(h->bufs[i].p = buffer_get(o->cp->ssec, h->buflen)))
			goto fail;
	}
	if (version_keys(o->cp->ssec, o->key, m, h->verifier, h->ck) < 0)
		goto fail;
	h->pos = rg.first;
	h->last = rg.last;
	h->index = rg.first / m->chunk_size;
	x->status = rr == RANGE_PARTIAL ? 206 : 200;
	write_head(x, o, m, rh ? &rg : NULL, m304);
	exchange_serve(x, &hit_ops, h);
	exchange_label(x, "hit");
	metric_add(M_cache_hits, 1);
	return RT_SERVE;
fail:
	hit_free(h);
	return redo(x, o);
}

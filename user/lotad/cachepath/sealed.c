/* Sealed chunks (sealed.h): the marker that makes a chunk's header name the verifier of
 * its version and its own GCM tag, the keys of a version, the node's chunk buffers, and a
 * chunk's way into the store (sealed, then begun, written, committed) and out of it
 * (read, tag checked, opened). The store sees ciphertext only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/committer.h"
#include "cachepath/objmeta.h"
#include "cachepath/sealed.h"
#include "chunkmap.h"
#include "hex.h"
#include "http.h"

/* "x-lota-ssec: 1 <verifier hex> <tag hex>\r\n": the first line of a sealed chunk's extra
 * field. The origin's headers follow it (those the origin sends about SSE-C excluded: a
 * hit writes them from the reader's own request). */
#define MARKER_PREFIX "x-lota-ssec: 1 "
#define MARKER_PREFIX_LEN (sizeof(MARKER_PREFIX) - 1)
_Static_assert(MARKER_PREFIX_LEN == 15, "SSEC_MARKER_LEN counts the prefix as 15 bytes");

/* -- marker and keys ------------------------------------------------------------------ */

bool ssec_is_sealed(const struct cache_meta *m)
{
	return m->extra_len >= MARKER_PREFIX_LEN &&
	       memcmp(m->extra, MARKER_PREFIX, MARKER_PREFIX_LEN) == 0;
}

int ssec_marker_parse(const void *extra, size_t len, struct ssec_marker *mk)
{
	const char *p = extra;
	const char *v = p + MARKER_PREFIX_LEN, *t = v + 2 * SSEC_VERIFIER_LEN + 1;

	if (len < SSEC_MARKER_LEN || memcmp(p, MARKER_PREFIX, MARKER_PREFIX_LEN) != 0 ||
	    t[-1] != ' ' || memcmp(p + SSEC_MARKER_LEN - 2, "\r\n", 2) != 0 ||
	    hex_decode(v, mk->verifier, SSEC_VERIFIER_LEN) < 0 ||
	    hex_decode(t, mk->tag, SSEC_TAG_LEN) < 0)
		return -EINVAL;
	return 0;
}

/* Writes the marker into out[0, SSEC_MARKER_LEN) (no NUL). */
static void marker_format(const uint8_t v[SSEC_VERIFIER_LEN], const uint8_t tag[SSEC_TAG_LEN],
			  char *out)
{
	char hex[2 * SSEC_VERIFIER_LEN + 1];

	memcpy(out, MARKER_PREFIX, MARKER_PREFIX_LEN);
	hex_encode(v, SSEC_VERIFIER_LEN, hex);
	memcpy(out + MARKER_PREFIX_LEN, hex, 2 * SSEC_VERIFIER_LEN);
	out[MARKER_PREFIX_LEN + 2 * SSEC_VERIFIER_LEN] = ' ';
	hex_encode(tag, SSEC_TAG_LEN, hex);
	memcpy(out + MARKER_PREFIX_LEN + 2 * SSEC_VERIFIER_LEN + 1, hex, 2 * SSEC_TAG_LEN);
	memcpy(out + SSEC_MARKER_LEN - 2, "\r\n", 2);
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

int ssec_version_keys(const struct ssec *s, const uint8_t key[SSEC_KEY_LEN],
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

/* m's headers but the SSE-C fields and anything named like our marker, into om. */
static int headers_of(const struct cache_key *k, uint64_t size, const struct http_msg *m,
		      struct objmeta *om)
{
	struct http_msg *c = malloc(sizeof(*c));
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
	r = objmeta_from_response(om, k, size, c);
	free(c);
	return r;
}

int ssec_version_from(const struct ssec *s, const uint8_t key[SSEC_KEY_LEN],
		      const struct cache_key *k, uint64_t size, uint64_t chunk_size,
		      const struct http_msg *m, struct objmeta *om, uint8_t v[SSEC_VERIFIER_LEN],
		      uint8_t ck[SSEC_KEY_LEN])
{
	static const uint8_t no_tag[SSEC_TAG_LEN];
	int r = headers_of(k, size, m, om);

	if (r < 0)
		return r;
	if (om->meta.extra_len + SSEC_MARKER_LEN > CACHE_EXTRA_MAX)
		return -E2BIG;
	/* objmeta's extra buffer holds OBJMETA_EXTRA_MAX bytes: room for the marker. */
	memmove(om->extra + SSEC_MARKER_LEN, om->extra, om->meta.extra_len);
	om->meta.extra_len += SSEC_MARKER_LEN;
	om->meta.chunk_size = chunk_size;
	r = ssec_version_keys(s, key, &om->meta, v, ck);
	if (r == 0)
		marker_format(v, no_tag, om->extra);
	return r;
}

bool ssec_is_sealed_answer(const struct http_msg *m)
{
	const struct http_header *alg = http_find(m, OBJMETA_SSEC_PREFIX "algorithm");

	return alg && http_str_eq(&alg->value, "AES256") && http_find(m, "etag");
}

bool ssec_is_other_copy(const struct cache_meta *h, const struct cache_meta *m,
			const uint8_t v[SSEC_VERIFIER_LEN])
{
	struct ssec_marker mk;

	if (strcmp(h->etag, m->etag) || h->size != m->size || h->chunk_size != m->chunk_size)
		return false; /* another version: the store drops it when ours begins */
	return ssec_marker_parse(h->extra, h->extra_len, &mk) < 0 ||
	       !ssec_equal(mk.verifier, v, SSEC_VERIFIER_LEN);
}

bool ssec_is_committed(struct cachepath *cp, const struct cache_meta *m, uint64_t first,
		       uint64_t last)
{
	uint64_t from, to;
	enum cache_chunk_state st;

	chunkmap_span(m->size, m->chunk_size, first, last, &from, &to);
	for (uint64_t i = from; i <= to; i++)
		if (cache_chunk_states(cp->cache, m, (uint32_t)i, 1, &st) < 0 ||
		    st != CACHE_CHUNK_COMMITTED)
			return false;
	return true;
}

/* -- buffers -------------------------------------------------------------------------- */

uint8_t *ssec_buffer_get(struct ssec *s, size_t len, unsigned spare)
{
	uint8_t *b;

	if (atomic_fetch_add(&s->buffers, 1) >= SSEC_BUFFERS_MAX - spare) {
		atomic_fetch_sub(&s->buffers, 1);
		return NULL;
	}
	b = malloc(len ? len : 1);
	if (!b)
		atomic_fetch_sub(&s->buffers, 1);
	return b;
}

void ssec_buffer_put(struct ssec *s, uint8_t *b, size_t wipe)
{
	if (!b)
		return;
	ssec_wipe(b, wipe);
	free(b);
	atomic_fetch_sub(&s->buffers, 1);
}

/* -- into the store ------------------------------------------------------------------- */

int ssec_store_chunk(struct cachepath *cp, const struct cache_meta *m,
		     const uint8_t ck[SSEC_KEY_LEN], uint64_t index, const uint8_t *plain,
		     uint8_t *sealed, size_t len, uint8_t tag[SSEC_TAG_LEN])
{
	struct cache_meta meta = *m;
	struct ssec_marker mk;
	char *ex = malloc(m->extra_len ? m->extra_len : 1);
	char label[CACHE_BUCKET_MAX + CACHE_KEY_MAX + 32];
	struct cache_fill *f;
	int r;

	if (!ex || ssec_marker_parse(m->extra, m->extra_len, &mk) < 0 ||
	    (plain == sealed ? ssec_seal(ck, index, sealed, len, tag)
			     : ssec_seal_copy(ck, index, plain, sealed, len, tag)) < 0) {
		free(ex);
		return -EIO;
	}
	memcpy(ex, m->extra, m->extra_len);
	marker_format(mk.verifier, tag, ex);
	meta.extra = ex;
	r = cache_chunk_begin(cp->cache, &meta, (uint32_t)index, &f);
	free(ex);
	if (r == CACHE_BEGIN_FOLLOW || r == CACHE_BEGIN_COMMITTED)
		return -EEXIST;
	if (r < 0)
		return r;
	r = cache_fill_write(f, sealed, len);
	if (r < 0) {
		cache_fill_abort(f, r);
		return r;
	}
	snprintf(label, sizeof(label), "%s/%s chunk %llu", m->id.bucket, m->id.key,
		 (unsigned long long)index);
	committer_commit(cp->committer, f, label);
	return 0;
}

/* -- out of it ------------------------------------------------------------------------ */

/* The marker of a chunk's own header, which must name v. */
static int marker_of(const void *extra, size_t len, const uint8_t v[SSEC_VERIFIER_LEN],
		     struct ssec_marker *mk)
{
	if (ssec_marker_parse(extra, len, mk) < 0 ||
	    !ssec_equal(mk->verifier, v, SSEC_VERIFIER_LEN))
		return -EBADMSG;
	return 0;
}

static int pread_all(int fd, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));

		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG;
		got += (uint64_t)n;
	}
	return 0;
}

int ssec_read_committed(struct cachepath *cp, const struct cache_meta *m,
			const uint8_t v[SSEC_VERIFIER_LEN], const uint8_t ck[SSEC_KEY_LEN],
			uint64_t index, uint8_t *buf, size_t cap, uint64_t *len)
{
	char *ex = malloc(CACHE_EXTRA_MAX);
	struct cache_chunk *ch = NULL;
	struct ssec_marker mk;
	size_t exlen = 0;
	int r = ex ? cache_chunk_open(cp->cache, m, (uint32_t)index, &ch) : -ENOMEM;

	if (r == 0)
		r = cache_chunk_verify(ch);
	if (r == 0)
		r = cache_chunk_extra(ch, ex, CACHE_EXTRA_MAX, &exlen);
	if (r == 0 && (marker_of(ex, exlen, v, &mk) < 0 || ch->len > cap))
		r = -EBADMSG;
	if (r == 0)
		r = pread_all(ch->fd, buf, ch->len, ch->body_offset);
	if (r == 0)
		r = ssec_open(ck, index, buf, (size_t)ch->len, mk.tag);
	if (ch)
		*len = ch->len;
	cache_chunk_close(ch);
	free(ex);
	return r;
}

int ssec_read_followed(struct cache_follower *fl, const uint8_t v[SSEC_VERIFIER_LEN],
		       const uint8_t ck[SSEC_KEY_LEN], uint64_t index, uint8_t *buf, size_t cap,
		       uint64_t *len)
{
	const struct cache_meta *m = cache_follower_meta(fl);
	struct cache_fill_status st;
	struct ssec_marker mk;
	uint64_t off;
	int fd = cache_follower_fd(fl, &off), r;

	cache_follower_status(fl, &st);
	if (st.written != st.size || st.size > cap || fd < 0)
		return -EBADMSG;
	r = marker_of(m->extra, m->extra_len, v, &mk);
	if (r == 0)
		r = pread_all(fd, buf, st.size, off);
	if (r == 0)
		r = ssec_open(ck, index, buf, (size_t)st.size, mk.tag);
	*len = st.size;
	return r;
}

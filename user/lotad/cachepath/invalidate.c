/* Write invalidation: once the origin accepts a write to a key (PUT, copy, DELETE,
 * completion of a multipart upload), the cached entry of that key is stale and is
 * dropped here, before the client sees the origin's answer. A fill of the key running
 * at that moment completes for its readers but is not committed (cache_invalidate). */
#include <stdbool.h>
#include <string.h>

#include "cache.h"
#include "exchange/conn.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "xmlkeys.h"

#include <event2/buffer.h>

/* True if the query string q (n bytes, after the '?') has a parameter named name. */
static bool has_param(const char *q, size_t n, const char *name)
{
	size_t len = strlen(name), i = 0;

	while (i < n) {
		const char *amp = memchr(q + i, '&', n - i);
		size_t end = amp ? (size_t)(amp - q) : n;

		if (end - i >= len && memcmp(q + i, name, len) == 0 &&
		    (end - i == len || q[i + len] == '='))
			return true;
		i = end + 1;
	}
	return false;
}

/* Starting a multipart upload, uploading a part and aborting leave the object as it was
 * until CompleteMultipartUpload (POST ?uploadId=), so those writes keep the entry; every
 * other successful write may change the key. */
static bool changes_object(const struct exchange *x)
{
	const struct http_str *t = &x->req.target;
	const char *q = memchr(t->p, '?', t->n);
	size_t qn = q ? t->n - (size_t)(q + 1 - t->p) : 0;

	if (!q)
		return true;
	if (http_str_eq(&x->req.method, "POST") && has_param(q + 1, qn, "uploads"))
		return false;
	if (has_param(q + 1, qn, "uploadId"))
		return http_str_eq(&x->req.method, "POST");
	return true;
}

void invalidate_on_write(struct conn *c)
{
	struct exchange *x = c->x;
	struct cache *cache = c->w->d->cache;
	struct cache_key k;
	int n;

	if (!cache || !x || x->s3.op != S3_OBJECT_WRITE || x->status < 200 || x->status > 299)
		return;
	if (!changes_object(x))
		return;
	k = (struct cache_key){x->s3.bucket, x->s3.key, x->s3.version_id};
	if (c->w->d->peers)
		peerfwd_invalidate(c->w, &k); /* the owner holds the key, if it is another node */
	n = cache_invalidate(cache, &k);
	if (n > 0) {
		metric_add(M_cache_invalidations, (uint64_t)n);
		log_info("cache: %.*s %s/%s: dropped %d entr%s", (int)x->req.method.n, x->req.method.p,
			 x->s3.bucket, x->s3.key, n, n == 1 ? "y" : "ies");
	}
}

struct multi {
	struct conn *c;
	int dropped;
};

static void drop_one(void *arg, const char *key, const char *version)
{
	struct multi *m = arg;
	struct conn *c = m->c;
	struct cache_key k = {c->x->s3.bucket, key, version};
	int n;

	if (c->w->d->peers)
		peerfwd_invalidate(c->w, &k);
	n = cache_invalidate(c->w->d->cache, &k);
	if (n > 0)
		m->dropped += n;
}

/* DeleteObjects: every key the request named may be gone (S3 answers per key, but a
 * key it failed to delete is only dropped from the cache: the next read refills it). */
void invalidate_multi_delete(struct conn *c)
{
	struct exchange *x = c->x;
	struct multi m = {c, 0};
	size_t n = evbuffer_get_length(x->capture);
	int r;

	if (x->status < 200 || x->status > 299 || !x->req_body_done)
		return;
	r = xmlkeys_each((const char *)evbuffer_pullup(x->capture, -1), n, drop_one, &m);
	if (r < 0)
		log_warn("cache: DeleteObjects on %s: body not understood; its keys stay cached "
			 "until a read sees them changed", x->s3.bucket);
	if (m.dropped > 0) {
		metric_add(M_cache_invalidations, (uint64_t)m.dropped);
		log_info("cache: DeleteObjects on %s: dropped %d entr%s", x->s3.bucket, m.dropped,
			 m.dropped == 1 ? "y" : "ies");
	}
}

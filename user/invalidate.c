/* Write invalidation: once the origin accepts a write to a key (PUT, copy, DELETE,
 * completion of a multipart upload), the cached entry of that key is stale and is
 * dropped here, before the client sees the origin's answer. A fill of the key running
 * at that moment completes for its readers but is not committed (cache_invalidate). */
#include <stdbool.h>
#include <string.h>

#include "cache.h"
#include "conn.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"

/* Uploading or aborting a part leaves the object as it was until the upload completes,
 * so those writes keep the entry; every other successful write may change the key. */
static bool changes_object(const struct exchange *x)
{
	const struct http_str *t = &x->req.target;
	const char *q = memchr(t->p, '?', t->n);
	bool has_upload_id = false;

	for (size_t i = q ? (size_t)(q - t->p) : t->n; i + 9 <= t->n; i++) {
		if ((t->p[i] == '?' || t->p[i] == '&') && memcmp(t->p + i + 1, "uploadId", 8) == 0 &&
		    (i + 9 == t->n || t->p[i + 9] == '=' || t->p[i + 9] == '&')) {
			has_upload_id = true;
			break;
		}
	}
	if (!has_upload_id)
		return true;
	return http_str_eq(&x->req.method, "POST"); /* CompleteMultipartUpload */
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
	n = cache_invalidate(cache, &k);
	if (n > 0) {
		metric_add(M_cache_invalidations, (uint64_t)n);
		log_info("cache: %.*s %s/%s: dropped %d entr%s", (int)x->req.method.n, x->req.method.p,
			 x->s3.bucket, x->s3.key, n, n == 1 ? "y" : "ies");
	}
}

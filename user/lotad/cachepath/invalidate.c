/* Write invalidation: once the origin accepts a write to a key (PUT, copy, DELETE,
 * completion of a multipart upload), the cached entry of that key is stale and is
 * dropped here, before the client sees the origin's answer. A fill of the key running
 * at that moment completes for its readers but is not committed (cache_invalidate). */
#include <stdbool.h>
#include <string.h>

#include <event2/buffer.h>

#include "cache.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/invalidate.h"
#include "cachepath/request.h"
#include "cachepath/upkeep.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "xmlkeys.h"

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

static void drop_written(struct exchange *x, struct cachepath *cp)
{
	struct cache_key k = cachepath_key(x);
	int n;

	if (!changes_object(x))
		return;
	n = cachepath_drop(cp, exchange_worker(x), &k);
	if (n > 0)
		log_info("cache: %.*s %s/%s: dropped %d entr%s", (int)x->req.method.n, x->req.method.p,
			 x->s3.bucket, x->s3.key, n, n == 1 ? "y" : "ies");
}

struct multi {
	struct exchange *x;
	struct cachepath *cp;
	int dropped;
};

static void drop_one(void *arg, const char *key, const char *version)
{
	struct multi *m = arg;
	struct cache_key k = {m->x->s3.bucket, key, version};
	int n = cachepath_drop(m->cp, exchange_worker(m->x), &k);

	if (n > 0)
		m->dropped += n;
}

/* DeleteObjects: every key the request named may be gone (S3 answers per key, but a
 * key it failed to delete is only dropped from the cache: the next read refills it). */
static void drop_deleted(struct exchange *x, struct cachepath *cp)
{
	struct evbuffer *body = exchange_request_body(x);
	struct multi m = {x, cp, 0};
	int r;

	if (!body)
		return;
	r = xmlkeys_each((const char *)evbuffer_pullup(body, -1), evbuffer_get_length(body),
			 drop_one, &m);
	if (r < 0)
		log_warn("cache: DeleteObjects on %s: body not understood; its keys stay cached "
			 "until a read sees them changed", x->s3.bucket);
	if (m.dropped > 0)
		log_info("cache: DeleteObjects on %s: dropped %d entr%s", x->s3.bucket, m.dropped,
			 m.dropped == 1 ? "y" : "ies");
}

static bool write_claims(struct exchange *x, void *arg)
{
	return x->s3.op == S3_OBJECT_WRITE || x->s3.is_multi_delete;
}

static enum route_verdict write_start(struct exchange *x, void *arg)
{
	/* DeleteObjects names its keys in its body: keep a copy to drop them once done. */
	if (x->s3.is_multi_delete)
		exchange_keep_request_body(x, MULTI_DELETE_BODY_MAX);
	exchange_label(x, x->s3.op == S3_OBJECT_WRITE ? "write" : "relay");
	return RT_UPSTREAM;
}

/* Before the origin's answer reaches the client, so that its next read sees the change. */
static enum route_verdict write_on_head(struct exchange *x, const struct http_msg *m,
					const char *raw)
{
	if (x->status < 200 || x->status > 299)
		return RT_RELAY;
	if (x->s3.op == S3_OBJECT_WRITE)
		drop_written(x, x->rt->arg);
	else
		drop_deleted(x, x->rt->arg);
	return RT_RELAY;
}

void invalidate_route(struct cachepath *cp, struct route *rt)
{
	*rt = (struct route){
		.name = "write",
		.arg = cp,
		.claims = write_claims,
		.start = write_start,
		.on_head = write_on_head,
	};
}

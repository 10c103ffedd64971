/* What a request asks of the cache: its key, and whether the cache may serve and store
 * it (no If-Range, no SSE-C, no no-store, a plain GET), or
 * pre-stage it. */
#include <stdbool.h>

#include "cachepath/cachepath-t.h"
#include "cachepath/request.h"
#include "cachepath/objmeta.h"
#include "http.h"

struct cache_key cachepath_key(const struct exchange *x)
{
	return (struct cache_key){x->s3.bucket, x->s3.key, x->s3.version_id};
}

/* Request headers that make a read unsuitable for the cache: If-Range (whose answer is
 * a 200 or a 206 by a rule of the origin's), SSE-C (the origin must see and check the
 * customer key for every read), in any spelling the origin accepts; and a second Range
 * field, which the origin may read otherwise. The client's other conditions are combined
 * with lotad's own (objread.c). */
static bool has_bypass_header(const struct http_msg *m)
{
	static const char *const names[] = {"if-range"};
	int ranges = 0;

	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http_str *n = &m->headers[i].name;

		for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++)
			if (http_name_eq(n, names[j]))
				return true;
		if (http_name_has_prefix(n, OBJMETA_SSEC_PREFIX))
			return true;
		if (http_name_eq(n, "range") && ++ranges > 1)
			return true;
	}
	return false;
}

static bool has_cache_control(const struct exchange *x, const char *token)
{
	const struct http_header *h = http_find(&x->req, "cache-control");

	return h && http_has_token(&h->value, token);
}

bool cachepath_has_no_cache(const struct exchange *x)
{
	return has_cache_control(x, "no-cache");
}

bool cachepath_has_body(const struct exchange *x)
{
	return x->req.body == HTTP_BODY_CHUNKED ||
	       (x->req.body == HTTP_BODY_LENGTH && x->req.content_length > 0);
}

/* HEAD with Range: bytes=0-0 asks us to cache the object before we answer. */
bool cachepath_is_prestage(const struct exchange *x)
{
	const struct http_header *h = http_find(&x->req, "range");

	return x->s3.op == S3_OBJECT_READ && x->s3.is_head && h &&
	       http_str_eq(&h->value, "bytes=0-0") && !has_cache_control(x, "no-store") &&
	       !cachepath_has_body(x);
}

bool cachepath_is_cacheable_read(const struct exchange *x)
{
	return x->s3.op == S3_OBJECT_READ && !x->s3.is_head && !x->s3.part_number &&
	       !has_cache_control(x, "no-store") && !has_bypass_header(&x->req) &&
	       !cachepath_has_body(x);
}

bool cachepath_would_serve(const struct cachepath *cp, const struct exchange *x)
{
	return cp->cache && (cachepath_is_cacheable_read(x) || cachepath_is_prestage(x));
}

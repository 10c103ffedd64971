/* s3region.h: the region an S3 answer names, read from its head or the start of its
 * error body. The body is scanned as bytes (no XML parser): an element is found by its
 * exact tags, and a name is kept only if it looks like one (letters, digits, '-', '_',
 * '.'), so that nothing an origin sends ends up in a log line or a lookup unchecked. */
#include <string.h>

#include "http.h"
#include "s3region.h"

#define CODE_MALFORMED "<Code>AuthorizationHeaderMalformed</Code>"

static int copy_name(const char *p, size_t n, char *out, size_t cap)
{
	if (n == 0 || n >= cap)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return -1;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

enum s3region_verdict s3region_of_head(const struct http_msg *m, char *region, size_t cap)
{
	const struct http_header *h;

	region[0] = '\0';
	if (m->status != 301 && m->status != 400)
		return S3REGION_NONE;
	h = http_find(m, "x-amz-bucket-region");
	if (h && copy_name(h->value.p, h->value.n, region, cap) == 0)
		return S3REGION_NAMED;
	if (m->status == 301)
		return S3REGION_MOVED;
	/* A 400 says more only in an error body that fits what is looked at. */
	if (m->body == HTTP_BODY_CHUNKED || (m->body == HTTP_BODY_LENGTH && m->content_length > 0 &&
					     m->content_length <= S3REGION_BODY_MAX))
		return S3REGION_BODY;
	return S3REGION_NONE;
}

/* The text between <tag> and </tag> in [p, p + n), tag given as "<Tag>" and "</Tag>". */
static const char *element(const char *p, size_t n, const char *open, const char *close,
			   size_t *len)
{
	const char *v = memmem(p, n, open, strlen(open)), *e;

	if (!v)
		return NULL;
	v += strlen(open);
	e = memmem(v, n - (size_t)(v - p), close, strlen(close));
	if (!e)
		return NULL;
	*len = (size_t)(e - v);
	return v;
}

enum s3region_verdict s3region_of_body(const char *body, size_t n, char *region, size_t cap)
{
	const char *err, *v;
	size_t len;

	region[0] = '\0';
	if (n > S3REGION_BODY_MAX)
		n = S3REGION_BODY_MAX;
	err = memmem(body, n, "<Error>", 7);
	if (!err)
		return S3REGION_NONE;
	n -= (size_t)(err - body);
	if (!memmem(err, n, CODE_MALFORMED, strlen(CODE_MALFORMED)))
		return S3REGION_NONE;
	/* Without a region it is some other fault of the header (a missing key id, a bad
	 * date): nothing about where the bucket lives. */
	v = element(err, n, "<Region>", "</Region>", &len);
	if (!v || copy_name(v, len, region, cap) < 0)
		return S3REGION_NONE;
	return S3REGION_NAMED;
}

/* Building cache metadata from a response head. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "cachepath/objmeta.h"

/* Everything but hop-by-hop headers, the ones a hit writes itself, and per-request
 * identifiers is replayed. Not the x-amz-checksum-* fields either: they describe the
 * whole object and come only to a request with x-amz-checksum-mode, so replayed on a
 * ranged hit they would make the client reject a good body as corrupt. */
static bool is_replayed_header(const struct http_str *n)
{
	static const char *const skip[] = {
		"date", "connection", "keep-alive", "content-length", "content-range",
		"transfer-encoding", "x-amz-request-id", "x-amz-id-2", "server", "accept-ranges",
		"etag", "last-modified", "content-type", "te", "trailer", "upgrade",
		"proxy-authenticate", "set-cookie"};

	if (http_name_has_prefix(n, "x-amz-checksum-"))
		return false;
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (http_name_eq(n, skip[i]))
			return false;
	return true;
}

static char *header_value(const struct http_msg *m, const char *name)
{
	const struct http_header *h = http_find(m, name);

	return h ? strndup(h->value.p, h->value.n) : strdup("");
}

static int extra_headers(const struct http_msg *m, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		if (!is_replayed_header(&h->name))
			continue;
		if (n + h->name.n + h->value.n + 4 > cap)
			return -E2BIG;
		memcpy(buf + n, h->name.p, h->name.n);
		n += h->name.n;
		memcpy(buf + n, ": ", 2);
		memcpy(buf + n + 2, h->value.p, h->value.n);
		n += 2 + h->value.n;
		memcpy(buf + n, "\r\n", 2);
		n += 2;
	}
	*len = n;
	return 0;
}

static bool is_ssec_response(const struct http_msg *m)
{
	for (size_t i = 0; i < m->nheaders; i++)
		if (http_name_has_prefix(&m->headers[i].name, OBJMETA_SSEC_PREFIX))
			return true;
	return false;
}

int objmeta_from_response(struct objmeta *om, const struct cache_key *k, uint64_t size,
			  const struct http_msg *m)
{
	memset(om, 0, sizeof(*om));
	if (is_ssec_response(m))
		return -EPERM;
	if (size == 0)
		return -ENODATA; /* nothing to cache, and no chunk to serve it from */
	om->etag = header_value(m, "etag");
	om->last_modified = header_value(m, "last-modified");
	om->content_type = header_value(m, "content-type");
	om->extra = malloc(OBJMETA_EXTRA_MAX);
	if (!om->etag || !om->last_modified || !om->content_type || !om->extra)
		return -ENOMEM;
	if (!om->etag[0])
		return -ENODATA;
	om->meta.id = *k;
	om->meta.size = size;
	om->meta.etag = om->etag;
	om->meta.last_modified = om->last_modified;
	om->meta.content_type = om->content_type;
	om->meta.extra = om->extra;
	return extra_headers(m, om->extra, OBJMETA_EXTRA_MAX, &om->meta.extra_len);
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

int objmeta_copy(struct objmeta *om, const struct cache_meta *src)
{
	memset(om, 0, sizeof(*om));
	om->meta = *src;
	om->bucket = dup_or_empty(src->id.bucket);
	om->key = dup_or_empty(src->id.key);
	om->version = dup_or_empty(src->id.version);
	om->etag = dup_or_empty(src->etag);
	om->last_modified = dup_or_empty(src->last_modified);
	om->content_type = dup_or_empty(src->content_type);
	om->extra = malloc(src->extra_len + 1);
	if (!om->bucket || !om->key || !om->version || !om->etag || !om->last_modified ||
	    !om->content_type || !om->extra)
		return -ENOMEM;
	memcpy(om->extra, src->extra, src->extra_len);
	om->meta.id = (struct cache_key){om->bucket, om->key, om->version};
	om->meta.etag = om->etag;
	om->meta.last_modified = om->last_modified;
	om->meta.content_type = om->content_type;
	om->meta.extra = om->extra;
	return 0;
}

void objmeta_free(struct objmeta *om)
{
	free(om->bucket);
	free(om->key);
	free(om->version);
	free(om->etag);
	free(om->last_modified);
	free(om->content_type);
	free(om->extra);
	memset(om, 0, sizeof(*om));
}

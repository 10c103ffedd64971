/* The wire form of lota's peer requests (chunkwire.h): building and signing their heads,
 * and reading their targets and version lines back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "cache.h"
#include "cachepath/objmeta.h"
#include "cluster/chunkwire.h"
#include "http.h"
#include "peerauth.h"
#include "s3.h"
#include "sigv4.h"

#define TARGET_MAX (3 * (S3_BUCKET_MAX + S3_KEY_MAX + S3_VERSION_MAX) + 128)

/* "&name=" and the percent-encoded value, at the end of out. */
static int add_param(char *out, size_t cap, const char *name, const char *value)
{
	size_t n = strlen(out);

	n += (size_t)snprintf(out + n, cap - n, "%c%s=", strchr(out, '?') ? '&' : '?', name);
	if (n >= cap)
		return -E2BIG;
	return sigv4_uri_encode(value, strlen(value), false, out + n, cap - n) < 0 ? -E2BIG : 0;
}

static int make_target(char *out, size_t cap, const char *path, const struct cache_key *k,
		       const struct chunkwire_span *span)
{
	char num[3][24];
	int r;

	snprintf(out, cap, "%s", path);
	r = add_param(out, cap, "bucket", k->bucket);
	if (r == 0)
		r = add_param(out, cap, "key", k->key);
	if (r == 0 && k->version && k->version[0])
		r = add_param(out, cap, "version", k->version);
	if (r < 0 || !span)
		return r;
	snprintf(num[0], sizeof(num[0]), "%llu", (unsigned long long)span->index);
	snprintf(num[1], sizeof(num[1]), "%llu", (unsigned long long)span->first);
	snprintf(num[2], sizeof(num[2]), "%llu", (unsigned long long)span->last);
	r = add_param(out, cap, "index", num[0]);
	if (r == 0)
		r = add_param(out, cap, "first", num[1]);
	return r == 0 ? add_param(out, cap, "last", num[2]) : r;
}

void chunkwire_meta_lines(struct evbuffer *out, const struct cache_meta *m)
{
	evbuffer_add_printf(
	    out, "ETag: %s\r\n" CHUNKWIRE_SIZE ": %llu\r\n" CHUNKWIRE_CHUNK_SIZE ": %llu\r\n",
	    m->etag, (unsigned long long)m->size, (unsigned long long)m->chunk_size);
	if (m->last_modified && m->last_modified[0])
		evbuffer_add_printf(out, "Last-Modified: %s\r\n", m->last_modified);
	if (m->content_type && m->content_type[0])
		evbuffer_add_printf(out, "Content-Type: %s\r\n", m->content_type);
	evbuffer_add(out, m->extra, m->extra_len);
}

/* The head in b (ending in the empty line) gets its signature before that line. */
static int sign_into(struct peerauth *pa, const char *self, struct evbuffer *b,
		     struct evbuffer *out)
{
	char line[PEERAUTH_LINE_MAX];
	size_t n = evbuffer_get_length(b);
	const char *head;
	int r;

	if (n > HTTP_HEAD_MAX - sizeof(line))
		return -E2BIG;
	head = (const char *)evbuffer_pullup(b, -1);
	r = peerauth_sign_head(pa, head, n, self, time(NULL), line, sizeof(line));
	if (r < 0)
		return r;
	evbuffer_add(out, head, n - 2);
	evbuffer_add_printf(out, "%s\r\n", line);
	return 0;
}

int chunkwire_request(const struct chunkwire_from *from, const char *method, const char *path,
		      const char *host, const struct cache_key *k, const struct cache_meta *m,
		      const struct chunkwire_span *span, struct evbuffer *out)
{
	char *target = malloc(TARGET_MAX);
	struct evbuffer *b = evbuffer_new();
	int r = target && b ? make_target(target, TARGET_MAX, path, k, span) : -ENOMEM;

	if (r == 0) {
		evbuffer_add_printf(b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host);
		if (m)
			chunkwire_meta_lines(b, m);
		evbuffer_add_printf(b, "Content-Length: 0\r\n%s\r\n",
				    from->is_keep_alive ? "" : "Connection: close\r\n");
		r = sign_into(from->auth, from->self, b, out);
	}
	if (b)
		evbuffer_free(b);
	free(target);
	return r;
}

/* -- the receiving side ---------------------------------------------------------------- */

int chunkwire_query(const struct http_str *t, const char *name, char *out, size_t cap)
{
	const char *q = memchr(t->p, '?', t->n), *end = t->p + t->n;
	size_t nl = strlen(name);

	while (q && q < end) {
		const char *p = q + 1, *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;

		if ((size_t)(stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
			return s3_pct_decode(p + nl + 1, (size_t)(stop - p - nl - 1), out, cap,
					     false);
		q = amp;
	}
	return -ENOENT;
}

/* A decimal number of at most 19 digits: no sign, no blanks. */
static int parse_u64(const char *s, size_t n, uint64_t *v)
{
	*v = 0;
	if (n == 0 || n > 19)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	return 0;
}

static int query_u64(const struct http_str *t, const char *name, uint64_t *v)
{
	char buf[24];

	if (chunkwire_query(t, name, buf, sizeof(buf)) < 0)
		return -EINVAL;
	return parse_u64(buf, strlen(buf), v);
}

int chunkwire_key(const struct http_str *t, struct cache_key *k, char **buf)
{
	char *b = malloc(S3_BUCKET_MAX + S3_KEY_MAX + S3_VERSION_MAX);
	char *key = b + S3_BUCKET_MAX, *version = key + S3_KEY_MAX;
	int r;

	*buf = b;
	if (!b)
		return -ENOMEM;
	version[0] = '\0';
	if (chunkwire_query(t, "bucket", b, S3_BUCKET_MAX) < 0 || !b[0] ||
	    chunkwire_query(t, "key", key, S3_KEY_MAX) < 0 || !key[0])
		return -EINVAL;
	r = chunkwire_query(t, "version", version, S3_VERSION_MAX);
	if (r < 0 && r != -ENOENT)
		return -EINVAL;
	*k = (struct cache_key){b, key, version};
	return 0;
}

int chunkwire_span(const struct http_str *t, struct chunkwire_span *s)
{
	if (query_u64(t, "index", &s->index) < 0 || query_u64(t, "first", &s->first) < 0 ||
	    query_u64(t, "last", &s->last) < 0 || s->first > s->last)
		return -EINVAL;
	return 0;
}

static int header_u64(const struct http_msg *m, const char *name, uint64_t *v)
{
	const struct http_header *h = http_find(m, name);

	return h ? parse_u64(h->value.p, h->value.n, v) : -EINVAL;
}

/* Lines a version is not made of: the head's own and ours. */
static bool is_framing(const struct http_str *n)
{
	return http_name_eq(n, "host") || http_name_eq(n, "connection") ||
	       http_name_eq(n, "content-length") || http_name_has_prefix(n, "x-lota-");
}

int chunkwire_meta(const struct http_msg *m, const struct cache_key *k, struct objmeta *om)
{
	struct http_msg *lines;
	struct objmeta tmp = {0};
	uint64_t size, cs;
	int r;

	memset(om, 0, sizeof(*om));
	if (header_u64(m, CHUNKWIRE_SIZE, &size) < 0 ||
	    header_u64(m, CHUNKWIRE_CHUNK_SIZE, &cs) < 0 || cs == 0)
		return -EINVAL;
	lines = calloc(1, sizeof(*lines));
	if (!lines)
		return -ENOMEM;
	for (size_t i = 0; i < m->nheaders; i++)
		if (!is_framing(&m->headers[i].name))
			lines->headers[lines->nheaders++] = m->headers[i];
	r = objmeta_from_response(&tmp, k, size, lines);
	free(lines);
	if (r == 0) {
		tmp.meta.chunk_size = cs;
		r = objmeta_copy(om, &tmp.meta);
	}
	objmeta_free(&tmp);
	return r;
}

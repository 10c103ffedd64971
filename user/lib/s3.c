/* Tells apart what the cache may serve (plain object reads) from everything that is
 * only relayed. Anything unusual is classified as "other" so it goes to the origin. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "hex.h"
#include "s3.h"

int s3_pct_decode(const char *src, size_t n, char *dst, size_t cap, bool plus_is_space)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -EINVAL;
			hi = hex_value(src[i + 1]);
			lo = hex_value(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi * 16 + lo);
			i += 2;
			/* A NUL would cut the name short here but not at the origin. */
			if (c == '\0')
				return -EINVAL;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		if (o + 1 >= cap)
			return -EINVAL;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

/* n bytes of s name one of the comma-separated hosts (case-insensitive, as DNS). */
static bool is_listed_host(const char *s, size_t n, const char *hosts)
{
	while (*hosts) {
		size_t ln = strcspn(hosts, ",");
		const char *h = hosts;

		while (ln && *h == ' ') {
			h++;
			ln--;
		}
		while (ln && h[ln - 1] == ' ')
			ln--;
		if (ln == n && strncasecmp(s, h, n) == 0)
			return true;
		hosts += strcspn(hosts, ",");
		if (*hosts == ',')
			hosts++;
	}
	return false;
}

static bool is_ip_literal(const char *s, size_t n)
{
	char buf[64];
	unsigned char addr[16];
	bool v6 = n >= 2 && s[0] == '[' && s[n - 1] == ']';

	if (v6) {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(v6 ? AF_INET6 : AF_INET, buf, addr) == 1;
}

/* A virtual-hosted bucket label as the origin would take it: [A-Za-z0-9._-], neither
 * starting nor ending with a dot, no empty label. */
static bool is_bucket_label(const char *s, size_t n)
{
	if (n == 0 || n >= S3_BUCKET_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
		if (c == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

int s3_check_host(const struct http_str *hv, const char *hosts)
{
	const char *h = hv->p;
	size_t n = hv->n, hn = n;
	const char *colon = NULL;

	if (n == 0)
		return 0; /* HTTP/1.0 without Host, or an empty one: path-style at the origin */
	if (h[0] == '[') {
		const char *end = memchr(h, ']', n);

		if (!end)
			return -EINVAL;
		hn = (size_t)(end - h) + 1;
		if (hn < n && h[hn] != ':')
			return -EINVAL;
		colon = hn < n ? h + hn : NULL;
	} else if ((colon = memchr(h, ':', n)) != NULL) {
		hn = (size_t)(colon - h);
	}
	if (colon) {
		size_t pn = n - hn - 1;

		if (pn == 0 || pn > 5)
			return -EINVAL;
		for (size_t i = 1; i <= pn; i++)
			if (colon[i] < '0' || colon[i] > '9')
				return -EINVAL;
	}
	if (is_ip_literal(h, hn) || is_listed_host(h, hn, hosts))
		return 0;
	for (size_t i = 1; i + 1 < hn; i++)
		if (h[i] == '.' && is_listed_host(h + i + 1, hn - i - 1, hosts))
			return is_bucket_label(h, i) ? 0 : -EINVAL;
	return -EINVAL;
}

/* The Host value without its port, and whether it is virtual-hosted "B.<host>". */
static int match_host(const struct http_str *hv, const char *hosts, struct s3_req *r)
{
	size_t hn = hv->n;
	const char *h = hv->p, *list = hosts;

	if (hn && h[0] != '[') {
		const char *colon = memchr(h, ':', hn);

		if (colon)
			hn = (size_t)(colon - h);
	}
	while (*list) {
		size_t ln = strcspn(list, ",");

		while (ln && *list == ' ') {
			list++;
			ln--;
		}
		if (ln && hn > ln + 1 && strncasecmp(h + hn - ln, list, ln) == 0 && h[hn - ln - 1] == '.') {
			size_t bn = hn - ln - 1;

			if (bn >= S3_BUCKET_MAX)
				return -EINVAL;
			memcpy(r->bucket, h, bn);
			r->bucket[bn] = '\0';
			r->is_virtual_host = true;
			return 0;
		}
		list += ln;
		if (*list == ',')
			list++;
	}
	return 0;
}

/* Query parameters that do not change what an object GET returns. */
static bool is_read_neutral(const char *k, size_t n)
{
	static const char *const ok[] = {"versionId", "partNumber", "x-id", "AWSAccessKeyId",
					 "Signature", "Expires"};

	if (n > 6 && strncasecmp(k, "X-Amz-", 6) == 0)
		return true;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strlen(ok[i]) == n && memcmp(ok[i], k, n) == 0)
			return true;
	return false;
}

static int query_param(struct s3_req *r, const char *k, size_t kn, const char *v, size_t vn,
		       bool *neutral)
{
	char num[16];

	if (!is_read_neutral(k, kn))
		*neutral = false;
	if (kn == 15 && memcmp(k, "X-Amz-Signature", 15) == 0)
		r->is_presigned = true;
	if (kn == 9 && memcmp(k, "versionId", 9) == 0)
		return s3_pct_decode(v, vn, r->version_id, sizeof(r->version_id), false);
	if (kn == 8 && memcmp(k, "uploadId", 8) == 0)
		r->is_multipart_complete = true;
	if (kn == 6 && memcmp(k, "delete", 6) == 0)
		r->is_multi_delete = true;
	if (kn == 10 && memcmp(k, "partNumber", 10) == 0) {
		if (vn == 0 || vn >= sizeof(num) || s3_pct_decode(v, vn, num, sizeof(num), false) < 0)
			return -EINVAL;
		r->part_number = (unsigned)strtoul(num, NULL, 10);
	}
	return 0;
}

static int parse_query(struct s3_req *r, const char *q, size_t n, bool *neutral)
{
	size_t i = 0;

	while (i < n) {
		size_t s = i, eq = 0;

		while (i < n && q[i] != '&') {
			if (q[i] == '=' && !eq)
				eq = i;
			i++;
		}
		if (i > s) {
			size_t kn = eq ? eq - s : i - s;
			const char *v = eq ? q + eq + 1 : q + i;
			size_t vn = eq ? i - eq - 1 : 0;

			if (query_param(r, q + s, kn, v, vn, neutral) < 0)
				return -EINVAL;
		}
		i++;
	}
	return 0;
}

static int split_path(struct s3_req *r, const char *path, size_t n)
{
	const char *p = path + 1; /* the target always starts with '/' */
	size_t rest = n - 1;

	if (!r->is_virtual_host) {
		const char *slash = memchr(p, '/', rest);
		size_t bn = slash ? (size_t)(slash - p) : rest;

		if (s3_pct_decode(p, bn, r->bucket, sizeof(r->bucket), false) < 0)
			return -EINVAL;
		p += bn;
		rest -= bn;
		if (rest) {
			p++;
			rest--;
		}
	}
	return s3_pct_decode(p, rest, r->key, sizeof(r->key), false);
}

static enum s3_op object_op(const struct http_str *method, bool neutral, struct s3_req *r)
{
	if (http_str_eq(method, "GET") || http_str_eq(method, "HEAD")) {
		r->is_head = http_str_eq(method, "HEAD");
		return neutral ? S3_OBJECT_READ : S3_OBJECT_OTHER;
	}
	if (http_str_eq(method, "PUT") || http_str_eq(method, "POST") || http_str_eq(method, "DELETE"))
		return S3_OBJECT_WRITE;
	return S3_OBJECT_OTHER;
}

int s3_classify(const struct http_msg *m, const char *hosts, struct s3_req *r)
{
	const struct http_header *host = http_find(m, "host");
	const char *t = m->target.p, *qm = memchr(t, '?', m->target.n);
	size_t pn = qm ? (size_t)(qm - t) : m->target.n;
	bool neutral = true;

	memset(r, 0, sizeof(*r));
	if (host && match_host(&host->value, hosts, r) < 0)
		return -EINVAL;
	if (split_path(r, t, pn) < 0)
		return -EINVAL;
	if (qm && parse_query(r, qm + 1, m->target.n - pn - 1, &neutral) < 0)
		return -EINVAL;
	if (!r->bucket[0])
		r->op = S3_SERVICE;
	else if (!r->key[0])
		r->op = S3_BUCKET;
	else
		r->op = object_op(&m->method, neutral, r);
	if (r->op != S3_OBJECT_WRITE)
		r->is_multipart_complete = false;
	if (r->op != S3_BUCKET || !http_str_eq(&m->method, "POST"))
		r->is_multi_delete = false;
	return 0;
}

const char *s3_op_name(enum s3_op op)
{
	static const char *const names[] = {"service", "bucket", "read", "write", "object"};

	return op <= S3_OBJECT_OTHER ? names[op] : "?";
}

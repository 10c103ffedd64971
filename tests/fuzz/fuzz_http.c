/* libFuzzer target for user/http.c: the request and response head parsers and the
 * chunked scanner, the latter fed the same bytes whole and in random splits. Checks the
 * invariants the proxy relies on: a parsed head lies inside the buffer, every string
 * points into it, the framing is one of the known kinds, and the chunked scanner's
 * verdict does not depend on how the bytes were split. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static void check_str(const struct http_str *s, const char *buf, size_t len)
{
	if (s->n && (s->p < buf || s->p + s->n > buf + len))
		abort();
}

static void check_msg(const struct http_msg *m, const char *buf, size_t len, bool is_req)
{
	if (m->head_len == 0 || m->head_len > len || m->head_len > HTTP_HEAD_MAX)
		abort();
	if (m->nheaders > HTTP_HEADERS_MAX)
		abort();
	for (size_t i = 0; i < m->nheaders; i++) {
		check_str(&m->headers[i].name, buf, m->head_len);
		check_str(&m->headers[i].value, buf, m->head_len);
		if (m->headers[i].name.n == 0)
			abort();
	}
	if (m->body > HTTP_BODY_CLOSE)
		abort();
	if (is_req) {
		check_str(&m->method, buf, m->head_len);
		check_str(&m->target, buf, m->head_len);
		if (m->method.n == 0 || m->target.n == 0 || m->target.p[0] != '/')
			abort();
		if (m->body == HTTP_BODY_CLOSE) /* a request is never close-delimited */
			abort();
	} else {
		check_str(&m->reason, buf, m->head_len);
		if (m->status < 100 || m->status > 599)
			abort();
	}
	if (m->body == HTTP_BODY_LENGTH && m->content_length == 0)
		abort();
	/* the head ends with an empty line */
	if (m->head_len < 4 || memcmp(buf + m->head_len - 4, "\r\n\r\n", 4) != 0)
		abort();
}

/* Scans buf in pieces whose sizes come from the seed; returns the verdict and the
 * total of bytes the scanner said belong to the body. */
static int scan_split(const char *buf, size_t len, unsigned seed, size_t *consumed)
{
	struct http_chunked c;
	size_t off = 0;
	int r = 0;

	http_chunked_init(&c);
	*consumed = 0;
	while (off < len) {
		size_t n = seed ? 1 + (seed % 7) * (seed % 13) : len - off, used = 0;

		seed = seed * 1103515245u + 12345u;
		if (n > len - off)
			n = len - off;
		r = http_chunked_scan(&c, buf + off, n, &used);
		if (used > n)
			abort();
		*consumed += used;
		if (r != 0)
			return r;
		if (used != n) /* 0 means more is needed: everything given was taken */
			abort();
		off += n;
	}
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_str get = {"GET", 3}, head = {"HEAD", 4};
	struct http_msg *m = malloc(sizeof(*m));
	char *buf = malloc(size ? size : 1);
	size_t whole_used, split_used;
	int whole, split, r;

	if (!m || !buf)
		abort();
	memcpy(buf, data, size); /* exactly size bytes: ASan sees any read past the end */
	r = http_parse_request(buf, size, m);
	if (r == 0)
		check_msg(m, buf, size, true);
	else if (http_error_status(r) < 400 && r != -EAGAIN)
		abort();
	r = http_parse_response(buf, size, size & 1 ? &head : &get, m);
	if (r == 0) {
		check_msg(m, buf, size, false);
		if ((size & 1) && m->body != HTTP_BODY_NONE)
			abort();
	}
	whole = scan_split(buf, size, 0, &whole_used);
	split = scan_split(buf, size, size ? (unsigned)data[0] * 2654435761u | 1 : 1, &split_used);
	if ((whole < 0) != (split < 0) || (whole == 1 && (split != 1 || split_used != whole_used)))
		abort();
	if (whole == 0 && split != 0)
		abort();
	free(buf);
	free(m);
	return 0;
}

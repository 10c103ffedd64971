/* Unit tests for user/http.c: request and response heads, every error class, framing and
 * keep-alive rules, the chunked scanner whole, byte by byte and in random splits. */
#include "unit.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static struct http_msg m;
static const struct http_str GET = {"GET", 3}, HEAD = {"HEAD", 4};

static int req(const char *s)
{
	return http_parse_request(s, strlen(s), &m);
}

static int resp(const char *s, const struct http_str *method)
{
	return http_parse_response(s, strlen(s), method, &m);
}

static void expect_req(const char *s, int want)
{
	int r = req(s);

	if (r != want)
		fprintf(stderr, "\n%d, want %d: '%s'\n", r, want, s);
	CU_ASSERT_EQUAL(r, want);
}

static void test_request_ok(void)
{
	const char *s = "GET /bkt/key?versionId=3 HTTP/1.1\r\nHost: cwlota.com\r\n"
			"X-Amz-Date:\t20250101T000000Z \r\nRange: bytes=0-9\r\n\r\nBODY";

	CU_ASSERT_EQUAL(req(s), 0);
	CU_ASSERT_EQUAL(m.head_len, strlen(s) - 4);
	CU_ASSERT(http_str_eq(&m.method, "GET"));
	CU_ASSERT(http_str_eq(&m.target, "/bkt/key?versionId=3"));
	CU_ASSERT_EQUAL(m.version_minor, 1);
	CU_ASSERT_EQUAL(m.nheaders, 3);
	CU_ASSERT(http_str_eq(&m.headers[1].value, "20250101T000000Z")); /* OWS trimmed */
	CU_ASSERT(http_str_eq(&http_find(&m, "RANGE")->value, "bytes=0-9"));
	CU_ASSERT_PTR_NULL(http_find(&m, "content-length"));
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_NONE);
	CU_ASSERT(m.keep_alive);
	CU_ASSERT(!m.expect_continue);
	/* up to four empty lines before the request line are ignored */
	expect_req("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0);
	expect_req("GET / HTTP/1.1\r\nHost:\r\n\r\n", 0); /* empty Host is allowed */
	expect_req("GET / HTTP/1.0\r\n\r\n", 0);	    /* 1.0 needs no Host */
	expect_req("GET / HTTP/1.9\r\nHost: h\r\n\r\n", 0);
	expect_req("M-SEARCH /a%20b HTTP/1.1\r\nHost: h\r\n\r\n", 0);
}

static void test_request_incomplete(void)
{
	const char *s = "PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n";

	for (size_t i = 0; i < strlen(s); i++)
		CU_ASSERT_EQUAL(http_parse_request(s, i, &m), -EAGAIN);
	CU_ASSERT_EQUAL(req(s), 0);
}

static void test_request_line_errors(void)
{
	expect_req("GET /\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET / http/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.10\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/2.0\r\nHost: h\r\n\r\n", -EPROTONOSUPPORT);
	expect_req("GET / HTTP/0.9\r\nHost: h\r\n\r\n", -EPROTONOSUPPORT);
	expect_req("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", -EBADMSG);
	CU_ASSERT_EQUAL(http_parse_request("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 31, &m), -EBADMSG);
}

static void test_line_endings_and_fields(void)
{
	expect_req("GET / HTTP/1.1\nHost: h\n\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\n\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\rX\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\nA: b\rc\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n c\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\tc\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost : h\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\nA: \x01\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\nA: \x7f\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\nA: caf\xc3\xa9\r\n\r\n", 0); /* obs-text */
}

/* Names compare as the origin compares them: case-insensitive, '_' the same as '-'. */
static void test_header_names(void)
{
	static const char req[] = "GET /b/k HTTP/1.1\r\nHost: h\r\n"
				  "x_amz_server_side_encryption_customer_key: AAAA\r\n"
				  "IF_NONE_MATCH: \"e\"\r\n\r\n";
	struct http_str a = {"X_Amz-Meta_A", 12};
	const struct http_header *h;

	CU_ASSERT(http_name_eq(&a, "x-amz-meta-a"));
	CU_ASSERT(!http_name_eq(&a, "x-amz-meta-b"));
	CU_ASSERT(!http_name_eq(&a, "x-amz-meta-"));
	CU_ASSERT(http_name_has_prefix(&a, "x-amz-meta-"));
	CU_ASSERT(!http_name_has_prefix(&a, "x-amz-meta-ab"));
	CU_ASSERT_EQUAL_FATAL(http_parse_request(req, sizeof(req) - 1, &m), 0);
	h = http_find(&m, "x-amz-server-side-encryption-customer-key");
	CU_ASSERT_PTR_NOT_NULL(h);
	CU_ASSERT(h && http_str_eq(&h->value, "AAAA"));
	CU_ASSERT_PTR_NOT_NULL(http_find(&m, "if-none-match"));
	/* framing fields spelled with '_' are ambiguous: the HTTP layer and the origin would
	 * disagree on the body */
	expect_req("PUT /b/k HTTP/1.1\r\nHost: h\r\nContent_Length: 5\r\n\r\n", -EBADMSG);
	expect_req("PUT /b/k HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\n\r\n", -EBADMSG);
	expect_req("PUT /b/k HTTP/1.1\r\nHost: h\r\nx_amz_meta_a: 1\r\n\r\n", 0);
}

static void test_dates(void)
{
	time_t t = 0;

	CU_ASSERT_EQUAL(http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t), 0);
	CU_ASSERT_EQUAL(t, 784111777);
	CU_ASSERT_EQUAL(http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t), 0);
	CU_ASSERT_EQUAL(t, 784111777);
	CU_ASSERT_EQUAL(http_parse_date("Sun Nov  6 08:49:37 1994", 24, &t), 0);
	CU_ASSERT_EQUAL(t, 784111777);
	CU_ASSERT_EQUAL(http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT junk", 34, &t), -EINVAL);
	CU_ASSERT_EQUAL(http_parse_date("yesterday", 9, &t), -EINVAL);
	CU_ASSERT_EQUAL(http_parse_date("", 0, &t), -EINVAL);
}

/* A response may carry far more fields than a request usually does (x-amz-meta-*). */
static void test_many_response_fields(void)
{
	static const struct http_str get = {"GET", 3};
	char *s = malloc(64 * 1024), *p = s;

	p += sprintf(p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
	for (int i = 0; i < 400; i++)
		p += sprintf(p, "x-amz-meta-f%03d: %d\r\n", i, i);
	p += sprintf(p, "\r\n");
	CU_ASSERT_EQUAL(http_parse_response(s, (size_t)(p - s), &get, &m), 0);
	CU_ASSERT_EQUAL(m.nheaders, 401);
	free(s);
}

static char *repeat_headers(size_t n, size_t vlen)
{
	char *s = malloc(64 + n * (vlen + 16)), *p = s;

	p += sprintf(p, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (size_t i = 0; i < n; i++) {
		p += sprintf(p, "X-%05zu: ", i);
		memset(p, 'v', vlen);
		p += vlen;
		p += sprintf(p, "\r\n");
	}
	sprintf(p, "\r\n");
	return s;
}

static void test_bounds(void)
{
	char *s = repeat_headers(HTTP_HEADERS_MAX - 1, 1); /* with Host: exactly the max */

	expect_req(s, 0);
	free(s);
	s = repeat_headers(HTTP_HEADERS_MAX, 1);
	expect_req(s, -EMSGSIZE);
	free(s);
	s = repeat_headers(70, 1000);
	expect_req(s, -EMSGSIZE);
	free(s);
	s = repeat_headers(1, 70 * 1024);
	expect_req(s, -EMSGSIZE);
	free(s);
	/* a head over the bound without its end yet is already too big */
	s = repeat_headers(100, 1000);
	CU_ASSERT_EQUAL(http_parse_request(s, HTTP_HEAD_MAX + 1, &m), -EMSGSIZE);
	free(s);
	s = malloc(HTTP_LINE_MAX + 64);
	memset(s, 'a', HTTP_LINE_MAX + 64);
	memcpy(s, "GET /", 5);
	CU_ASSERT_EQUAL(http_parse_request(s, HTTP_LINE_MAX + 64, &m), -ENAMETOOLONG);
	strcpy(s + HTTP_LINE_MAX + 10, " HTTP/1.1\r\n");
	CU_ASSERT_EQUAL(http_parse_request(s, strlen(s), &m), -ENAMETOOLONG);
	free(s);
	CU_ASSERT_EQUAL(http_error_status(-EMSGSIZE), 431);
	CU_ASSERT_EQUAL(http_error_status(-ENAMETOOLONG), 414);
	CU_ASSERT_EQUAL(http_error_status(-EPROTONOSUPPORT), 505);
	CU_ASSERT_EQUAL(http_error_status(-ENOTSUP), 501);
	CU_ASSERT_EQUAL(http_error_status(-EBADMSG), 400);
}

static void test_host_rules(void)
{
	expect_req("GET / HTTP/1.1\r\nA: b\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", -EBADMSG);
	expect_req("GET / HTTP/1.0\r\nHost: h\r\nhost: x\r\n\r\n", -EBADMSG);
}

#define PUT "PUT /b/k HTTP/1.1\r\nHost: h\r\n"

static void test_request_framing(void)
{
	CU_ASSERT_EQUAL(req(PUT "Content-Length: 10\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_LENGTH);
	CU_ASSERT_EQUAL(m.content_length, 10);
	CU_ASSERT_EQUAL(req(PUT "Content-Length: 0\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_NONE);
	CU_ASSERT_EQUAL(req(PUT "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(m.content_length, 5);
	CU_ASSERT_EQUAL(req(PUT "Content-Length: 5, 5\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(req(PUT "Content-Length: 18446744073709551615\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(m.content_length, UINT64_MAX);
	CU_ASSERT_EQUAL(req(PUT "Transfer-Encoding: chunked\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_CHUNKED);
	CU_ASSERT_EQUAL(req(PUT "Transfer-Encoding: gzip, CHUNKED\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_CHUNKED);
	CU_ASSERT_EQUAL(req(PUT "Expect: 100-continue\r\nContent-Length: 1\r\n\r\n"), 0);
	CU_ASSERT(m.expect_continue);

	expect_req(PUT "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: 5, 6\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: 5,\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: ,5\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: -1\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: +1\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: abc\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: 1 2\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: 18446744073709551616\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: 99999999999999999999\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length:\r\n\r\n", -EBADMSG);
	expect_req(PUT "Content-Length: 5\r\nContent-Length: \r\n\r\n", -EBADMSG);
	expect_req(PUT "Transfer-Encoding: gzip\r\n\r\n", -ENOTSUP);
	expect_req(PUT "Transfer-Encoding: chunked, gzip\r\n\r\n", -ENOTSUP);
	expect_req(PUT "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", -ENOTSUP);
	expect_req(PUT "Transfer-Encoding: chunked, chunked\r\n\r\n", -EBADMSG);
	expect_req(PUT "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -EBADMSG);
	expect_req("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -EBADMSG);
}

static void test_keep_alive(void)
{
	CU_ASSERT_EQUAL(req("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), 0);
	CU_ASSERT(!m.keep_alive);
	CU_ASSERT_EQUAL(req("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n"), 0);
	CU_ASSERT(!m.keep_alive);
	CU_ASSERT_EQUAL(req("GET / HTTP/1.0\r\n\r\n"), 0);
	CU_ASSERT(!m.keep_alive);
	CU_ASSERT_EQUAL(req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
	CU_ASSERT(m.keep_alive);
	CU_ASSERT_EQUAL(req("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), 0);
	CU_ASSERT(!m.keep_alive);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &GET), 0);
	CU_ASSERT(m.keep_alive);
	CU_ASSERT_EQUAL(resp("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &GET), 0);
	CU_ASSERT(!m.keep_alive);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\r\n\r\n", &GET), 0); /* close-delimited */
	CU_ASSERT(!m.keep_alive);
}

static void test_response(void)
{
	CU_ASSERT_EQUAL(resp("HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n\r\n", &GET), 0);
	CU_ASSERT_EQUAL(m.status, 206);
	CU_ASSERT(http_str_eq(&m.reason, "Partial Content"));
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_LENGTH);
	CU_ASSERT_EQUAL(m.content_length, 10);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200\r\n\r\n", &GET), 0); /* no reason phrase */
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_CLOSE);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", &HEAD), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_NONE);
	CU_ASSERT_EQUAL(m.content_length, 10);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", &GET), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_NONE);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 204 No Content\r\n\r\n", &GET), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_NONE);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 100 Continue\r\n\r\n", &GET), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_NONE);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &GET), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_CHUNKED);
	/* CL and TE on a response: chunked wins and the connection is not reused */
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
			     &GET), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_CHUNKED);
	CU_ASSERT(!m.keep_alive);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &GET), 0);
	CU_ASSERT_EQUAL(m.body, HTTP_BODY_CLOSE);

	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", &GET), -EAGAIN);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 2000 OK\r\n\r\n", &GET), -EBADMSG);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 600 OK\r\n\r\n", &GET), -EBADMSG);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 20 OK\r\n\r\n", &GET), -EBADMSG);
	CU_ASSERT_EQUAL(resp("HTTP/1.1  200 OK\r\n\r\n", &GET), -EBADMSG);
	CU_ASSERT_EQUAL(resp("HTTP/2.0 200 OK\r\n\r\n", &GET), -EPROTONOSUPPORT);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\nContent-Length: 0\n\n", &GET), -EBADMSG);
	CU_ASSERT_EQUAL(resp("garbage\r\n\r\n", &GET), -EBADMSG);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &GET),
			-EBADMSG);
	CU_ASSERT_EQUAL(resp("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", &GET), -EBADMSG);
}

static void test_has_token(void)
{
	struct http_str v = {"keep-alive, Upgrade ,\tclose\t", 28};
	struct http_str e = {"", 0}, c = {",,  ,", 5}, p = {"closed, xclose", 14};

	CU_ASSERT(http_has_token(&v, "close"));
	CU_ASSERT(http_has_token(&v, "upgrade"));
	CU_ASSERT(http_has_token(&v, "KEEP-ALIVE"));
	CU_ASSERT(!http_has_token(&v, "keep"));
	CU_ASSERT(!http_has_token(&e, "close"));
	CU_ASSERT(!http_has_token(&c, "close"));
	CU_ASSERT(!http_has_token(&p, "close"));
	CU_ASSERT(http_str_ieq(&(struct http_str){"HoSt", 4}, "host"));
	CU_ASSERT(!http_str_eq(&(struct http_str){"HoSt", 4}, "host"));
	CU_ASSERT_STRING_EQUAL(http_reason(431), "Request Header Fields Too Large");
}

/* Scans s in pieces of `step` bytes (0: whole); returns the verdict, *used the total. */
static int scan(const char *s, size_t n, size_t step, size_t *total)
{
	struct http_chunked c;
	size_t off = 0;
	int r = 0;

	http_chunked_init(&c);
	*total = 0;
	while (off < n) {
		size_t k = step && step < n - off ? step : n - off, used;

		r = http_chunked_scan(&c, s + off, k, &used);
		*total += used;
		if (r)
			return r;
		CU_ASSERT_EQUAL(used, k);
		off += k;
	}
	return r;
}

static void expect_chunked(const char *s, int want, size_t want_used)
{
	size_t n = strlen(s), used;

	for (size_t step = 0; step <= 7; step++) {
		int r = scan(s, n, step, &used);

		if (r != want)
			fprintf(stderr, "\nstep %zu: %d, want %d: '%s'\n", step, r, want, s);
		CU_ASSERT_EQUAL(r, want);
		if (want == 1)
			CU_ASSERT_EQUAL(used, want_used);
	}
}

static void test_chunked_valid(void)
{
	const char *body = "5\r\nhello\r\n1A;ext=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
	char buf[256];

	expect_chunked(body, 1, strlen(body));
	snprintf(buf, sizeof(buf), "%sGET / HTTP/1.1\r\n", body); /* the next request follows */
	expect_chunked(buf, 1, strlen(body));
	expect_chunked("0\r\n\r\n", 1, 5);
	expect_chunked("0\r\nX-Amz-Checksum-Crc32: AAAA\r\nA:\r\n\r\n", 1, 37);
	expect_chunked("3 ;a\r\nabc\r\n0 \t\r\n\r\n", 1, 18);
	expect_chunked("5;chunk-signature=00ff\r\nhello\r\n0;chunk-signature=ab\r\n\r\n", 1, 55);
	expect_chunked("5\r\nhel", 0, 0);
	expect_chunked("5\r\nhello\r\n0\r\n", 0, 0);
}

static void test_chunked_invalid(void)
{
	char big[HTTP_TRAILER_MAX + 64];

	expect_chunked("zz\r\nhello\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("\r\nhello\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("-5\r\nhello\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("0x5\r\nhello\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("10000000000000000\r\n", -EBADMSG, 0);
	expect_chunked("5 6\r\nhello\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("5\nhello\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("5\rhello\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("5\r\nhelloX\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("5\r\nhello\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("5;a\x01\r\nhello\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("5;a\nhello\r\n0\r\n\r\n", -EBADMSG, 0);
	expect_chunked("0\r\nno colon\r\n\r\n", -EBADMSG, 0);
	expect_chunked("0\r\n: v\r\n\r\n", -EBADMSG, 0);
	expect_chunked("0\r\nA : v\r\n\r\n", -EBADMSG, 0);
	expect_chunked("0\r\nA: v\r\n c\r\n\r\n", -EBADMSG, 0);
	expect_chunked("0\r\nA: v\n\r\n", -EBADMSG, 0);
	expect_chunked("0\r\nA: \x01\r\n\r\n", -EBADMSG, 0);
	expect_chunked("0\r\n\r\r", -EBADMSG, 0);
	memset(big, 'a', sizeof(big));
	memcpy(big, "0\r\nA: ", 6);
	big[sizeof(big) - 1] = '\0';
	expect_chunked(big, -EBADMSG, 0);
	memset(big, 'e', HTTP_CHUNK_LINE_MAX + 10);
	memcpy(big, "1;", 2);
	big[HTTP_CHUNK_LINE_MAX + 10] = '\0';
	expect_chunked(big, -EBADMSG, 0);
}

/* A long valid body split at random points gives the same result as one pass. */
static void test_chunked_random_splits(void)
{
	char *s = malloc(1 << 20);
	size_t n = 0, whole;

	srandom(42);
	for (int i = 0; i < 200; i++) {
		size_t len = (size_t)(random() % 3000) + 1;

		n += (size_t)sprintf(s + n, "%zx%s\r\n", len, i % 3 ? "" : ";e=1");
		memset(s + n, "\r\n0;x"[i % 5], len);
		n += len;
		n += (size_t)sprintf(s + n, "\r\n");
	}
	n += (size_t)sprintf(s + n, "0\r\nT: v\r\n\r\n");
	CU_ASSERT_EQUAL(scan(s, n, 0, &whole), 1);
	CU_ASSERT_EQUAL(whole, n);
	for (int round = 0; round < 50; round++) {
		struct http_chunked c;
		size_t off = 0, total = 0, used;
		int r = 0;

		http_chunked_init(&c);
		while (off < n && r == 0) {
			size_t k = (size_t)(random() % 9000) + 1;

			if (k > n - off)
				k = n - off;
			r = http_chunked_scan(&c, s + off, k, &used);
			total += used;
			off += k;
		}
		CU_ASSERT_EQUAL(r, 1);
		CU_ASSERT_EQUAL(total, n);
	}
	free(s);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"request ok", test_request_ok},
	    {"request incomplete", test_request_incomplete},
	    {"request line errors", test_request_line_errors},
	    {"line endings and fields", test_line_endings_and_fields},
	    {"bounds 431/414", test_bounds},
	    {"header names", test_header_names},
	    {"many response fields", test_many_response_fields},
	    {"dates", test_dates},
	    {"host rules", test_host_rules},
	    {"request framing", test_request_framing},
	    {"keep-alive", test_keep_alive},
	    {"response", test_response},
	    {"has_token", test_has_token},
	    {"chunked valid", test_chunked_valid},
	    {"chunked invalid", test_chunked_invalid},
	    {"chunked random splits", test_chunked_random_splits},
	};

	return UNIT_RUN("http", NULL, NULL, tests);
}

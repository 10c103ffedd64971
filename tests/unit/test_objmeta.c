/* objmeta: what a cache entry keeps of an origin's response head. */
#include "unit.h"
#include <errno.h>
#include <string.h>

#include "http.h"
#include "cachepath/objmeta.h"

static const char resp[] = "HTTP/1.1 200 OK\r\n"
			   "Content-Length: 10\r\n"
			   "ETag: \"abc\"\r\n"
			   "Last-Modified: Sun, 22 Nov 2026 00:00:00 GMT\r\n"
			   "Content-Type: application/octet-stream\r\n"
			   "x-amz-meta-owner: alice\r\n"
			   "x-amz-request-id: tx000\r\n"
			   "Date: Sun, 22 Nov 2026 00:00:01 GMT\r\n"
			   "Connection: Keep-Alive\r\n"
			   "Content-Encoding: gzip\r\n"
			   "Accept-Ranges: bytes\r\n"
			   "x-amz-checksum-crc32: AAAAAA==\r\n"
			   "X-Amz-Checksum-Type: FULL_OBJECT\r\n"
			   "\r\n";

static void parse(struct http_msg *m, const char *text)
{
	static const struct http_str get = {"GET", 3};

	CU_ASSERT_EQUAL_FATAL(http_parse_response(text, strlen(text), &get, m), 0);
}

static void test_fields_and_replayed_headers(void)
{
	struct cache_key k = {"bkt", "key", ""};
	struct http_msg m;
	struct objmeta om;
	char extra[OBJMETA_EXTRA_MAX + 1];

	parse(&m, resp);
	CU_ASSERT_EQUAL(objmeta_from_response(&om, &k, 10, &m), 0);
	CU_ASSERT_STRING_EQUAL(om.meta.etag, "\"abc\"");
	CU_ASSERT_STRING_EQUAL(om.meta.last_modified, "Sun, 22 Nov 2026 00:00:00 GMT");
	CU_ASSERT_STRING_EQUAL(om.meta.content_type, "application/octet-stream");
	CU_ASSERT_EQUAL(om.meta.size, 10);
	memcpy(extra, om.meta.extra, om.meta.extra_len);
	extra[om.meta.extra_len] = '\0';
	/* Replayed: the object's own headers; not: per-request and hop-by-hop ones, nor the
	 * whole object's checksums (a ranged hit would carry them). */
	CU_ASSERT_STRING_EQUAL(extra, "x-amz-meta-owner: alice\r\nContent-Encoding: gzip\r\n");
	objmeta_free(&om);
}

static void test_no_etag_is_refused(void)
{
	struct cache_key k = {"bkt", "key", ""};
	struct http_msg m;
	struct objmeta om;

	parse(&m, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");
	CU_ASSERT_EQUAL(objmeta_from_response(&om, &k, 1, &m), -ENODATA);
	objmeta_free(&om);
}

static void test_oversize_headers_are_refused(void)
{
	static char big[HTTP_HEAD_MAX];
	struct cache_key k = {"bkt", "key", ""};
	struct http_msg m;
	struct objmeta om;
	size_t n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nETag: \"e\"\r\n");

	for (int i = 0; i < 17; i++) {
		n += (size_t)snprintf(big + n, sizeof(big) - n, "x-amz-meta-f%d: ", i);
		memset(big + n, 'v', 1000);
		n += 1000;
		n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
	}
	snprintf(big + n, sizeof(big) - n, "Content-Length: 1\r\n\r\n");
	parse(&m, big);
	CU_ASSERT_EQUAL(objmeta_from_response(&om, &k, 1, &m), -E2BIG);
	objmeta_free(&om);
}

/* An SSE-C object's plaintext is never stored, in any spelling of the fields. */
static void test_ssec_response_is_refused(void)
{
	static const char *const spellings[] = {
	    "x-amz-server-side-encryption-customer-algorithm: AES256\r\n",
	    "X-Amz-Server-Side-Encryption-Customer-Key-MD5: AAAA\r\n",
	    "x_amz_server_side_encryption_customer_algorithm: AES256\r\n"};
	struct cache_key k = {"bkt", "key", ""};
	struct http_msg m;
	struct objmeta om;
	char text[512];

	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\nETag: \"e\"\r\n%sContent-Length: 1\r\n\r\n",
			 spellings[i]);
		parse(&m, text);
		CU_ASSERT_EQUAL(objmeta_from_response(&om, &k, 1, &m), -EPERM);
		objmeta_free(&om);
	}
	/* SSE with keys the origin holds (SSE-S3, SSE-KMS) is not SSE-C */
	parse(&m, "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nx-amz-server-side-encryption: AES256\r\n"
		  "Content-Length: 1\r\n\r\n");
	CU_ASSERT_EQUAL(objmeta_from_response(&om, &k, 1, &m), 0);
	objmeta_free(&om);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"fields and replayed headers", test_fields_and_replayed_headers},
	    {"no ETag: not cached", test_no_etag_is_refused},
	    {"oversize replayed headers: not cached", test_oversize_headers_are_refused},
	    {"SSE-C responses: not cached", test_ssec_response_is_refused},
	};

	return UNIT_RUN("objmeta", NULL, NULL, tests);
}

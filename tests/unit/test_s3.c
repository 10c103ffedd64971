/* Unit tests for user/s3.c: bucket and key from path-style and virtual-hosted requests,
 * percent-decoding, and which requests are plain object reads the cache may serve. */
#include "unit.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "s3.h"

#define HOSTS "cwlota.com, s3.local"

static struct s3_req r;

/* Classifies "METHOD TARGET" with the given Host header (NULL: none). */
static int classify(const char *method, const char *target, const char *host)
{
	static char buf[8192];
	static struct http_msg m;
	int n;

	if (host)
		n = snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", method, target, host);
	else
		n = snprintf(buf, sizeof(buf), "%s %s HTTP/1.0\r\n\r\n", method, target);
	CU_ASSERT_EQUAL_FATAL(http_parse_request(buf, (size_t)n, &m), 0);
	return s3_classify(&m, HOSTS, &r);
}

static void expect(const char *method, const char *target, const char *host, enum s3_op op,
		   const char *bucket, const char *key)
{
	int rc = classify(method, target, host);

	if (rc || r.op != op || strcmp(r.bucket, bucket) || strcmp(r.key, key))
		fprintf(stderr, "\n%s %s (%s): rc %d op %s bucket '%s' key '%s'\n", method, target,
			host ? host : "-", rc, s3_op_name(r.op), r.bucket, r.key);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(r.op, op);
	CU_ASSERT_STRING_EQUAL(r.bucket, bucket);
	CU_ASSERT_STRING_EQUAL(r.key, key);
}

static void test_path_style(void)
{
	expect("GET", "/", "cwlota.com", S3_SERVICE, "", "");
	expect("GET", "/bkt", "cwlota.com", S3_BUCKET, "bkt", "");
	expect("GET", "/bkt/", "cwlota.com", S3_BUCKET, "bkt", "");
	expect("GET", "/bkt?list-type=2&prefix=a", "cwlota.com", S3_BUCKET, "bkt", "");
	expect("GET", "/bkt/a/b/c.bin", "cwlota.com", S3_OBJECT_READ, "bkt", "a/b/c.bin");
	expect("GET", "/bkt/dir/", "cwlota.com", S3_OBJECT_READ, "bkt", "dir/");
	expect("GET", "/bkt//double", "cwlota.com", S3_OBJECT_READ, "bkt", "/double");
	CU_ASSERT(!r.is_virtual_host);
	/* an IP:port or another name is path-style too */
	expect("GET", "/bkt/k", "127.0.0.1:8080", S3_OBJECT_READ, "bkt", "k");
	expect("GET", "/bkt/k", "other.example", S3_OBJECT_READ, "bkt", "k");
	expect("GET", "/bkt/k", "[::1]:8080", S3_OBJECT_READ, "bkt", "k");
	expect("GET", "/bkt/k", NULL, S3_OBJECT_READ, "bkt", "k");
	expect("GET", "/bkt/k", "cwlota.com:80", S3_OBJECT_READ, "bkt", "k");
	CU_ASSERT(!r.is_virtual_host);
}

static void test_virtual_hosted(void)
{
	expect("GET", "/k.bin", "bkt.cwlota.com", S3_OBJECT_READ, "bkt", "k.bin");
	CU_ASSERT(r.is_virtual_host);
	expect("GET", "/a/b", "my.dotted.bkt.cwlota.com:8080", S3_OBJECT_READ, "my.dotted.bkt", "a/b");
	expect("GET", "/", "bkt.CWLOTA.COM", S3_BUCKET, "bkt", "");
	expect("PUT", "/", "bkt.s3.local", S3_BUCKET, "bkt", ""); /* second name in the list */
	expect("GET", "/x", "bktcwlota.com", S3_BUCKET, "x", ""); /* no dot: path-style */
	CU_ASSERT(!r.is_virtual_host);
	expect("GET", "/k", "cwlota.com.evil.example", S3_BUCKET, "k", "");
	CU_ASSERT(!r.is_virtual_host);
	{
		char host[128];

		memset(host, 'b', 70);
		strcpy(host + 70, ".cwlota.com");
		CU_ASSERT_EQUAL(classify("GET", "/k", host), -EINVAL); /* bucket too long */
	}
}

static void test_percent_decoding(void)
{
	char out[16];

	expect("GET", "/bkt/with%20space", "cwlota.com", S3_OBJECT_READ, "bkt", "with space");
	expect("GET", "/bkt/a%2Fb/c", "cwlota.com", S3_OBJECT_READ, "bkt", "a/b/c");
	expect("GET", "/bkt/%e9%8d%b5", "cwlota.com", S3_OBJECT_READ, "bkt", "\xe9\x8d\xb5");
	expect("GET", "/bkt/a+b", "cwlota.com", S3_OBJECT_READ, "bkt", "a+b"); /* '+' stays in paths */
	expect("GET", "/b%6Bt/k", "cwlota.com", S3_OBJECT_READ, "bkt", "k");
	CU_ASSERT_EQUAL(classify("GET", "/bkt/bad%zz", "cwlota.com"), -EINVAL);
	CU_ASSERT_EQUAL(classify("GET", "/bkt/bad%2", "cwlota.com"), -EINVAL);
	CU_ASSERT_EQUAL(classify("GET", "/bkt/bad%", "cwlota.com"), -EINVAL);
	CU_ASSERT_EQUAL(classify("GET", "/bkt/k?versionId=%G1", "cwlota.com"), -EINVAL);
	/* a NUL would cut the key short here but not at the origin */
	CU_ASSERT_EQUAL(classify("GET", "/bkt/secret/a.bin%00x", "cwlota.com"), -EINVAL);
	CU_ASSERT_EQUAL(classify("GET", "/bk%00t/k", "cwlota.com"), -EINVAL);
	CU_ASSERT_EQUAL(classify("GET", "/bkt/k?versionId=a%00", "cwlota.com"), -EINVAL);
	CU_ASSERT_EQUAL(s3_pct_decode("a%00", 4, out, sizeof(out), false), -EINVAL);

	CU_ASSERT_EQUAL(s3_pct_decode("a+b%21", 6, out, sizeof(out), true), 0);
	CU_ASSERT_STRING_EQUAL(out, "a b!");
	CU_ASSERT_EQUAL(s3_pct_decode("%41", 3, out, sizeof(out), false), 0);
	CU_ASSERT_STRING_EQUAL(out, "A");
	CU_ASSERT_EQUAL(s3_pct_decode("%4", 2, out, sizeof(out), false), -EINVAL);
	CU_ASSERT_EQUAL(s3_pct_decode("0123456789abcdef", 16, out, sizeof(out), false), -EINVAL);
	CU_ASSERT_EQUAL(s3_pct_decode("0123456789abcde", 15, out, sizeof(out), false), 0);
	CU_ASSERT_EQUAL(s3_pct_decode("", 0, out, sizeof(out), false), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
}

static void test_long_names(void)
{
	static char target[4096];

	memset(target, 'k', sizeof(target));
	memcpy(target, "/bkt/", 5);
	target[5 + 1024] = '\0';
	expect("GET", target, "cwlota.com", S3_OBJECT_READ, "bkt", target + 5);
	target[5 + 1024] = 'k';
	target[5 + 1025] = '\0';
	CU_ASSERT_EQUAL(classify("GET", target, "cwlota.com"), -EINVAL);
}

static void test_read_classification(void)
{
	expect("GET", "/b/k?versionId=abc%2B1", "cwlota.com", S3_OBJECT_READ, "b", "k");
	CU_ASSERT_STRING_EQUAL(r.version_id, "abc+1");
	expect("HEAD", "/b/k?partNumber=3", "cwlota.com", S3_OBJECT_READ, "b", "k");
	CU_ASSERT(r.is_head);
	CU_ASSERT_EQUAL(r.part_number, 3);
	expect("GET", "/b/k?x-id=GetObject", "cwlota.com", S3_OBJECT_READ, "b", "k");
	expect("GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20250101"
		      "&X-Amz-Date=20250101T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host"
		      "&X-Amz-Signature=abcd", "cwlota.com", S3_OBJECT_READ, "b", "k");
	CU_ASSERT(r.is_presigned);
	expect("GET", "/b/k?AWSAccessKeyId=a&Expires=1&Signature=s", "cwlota.com",
	       S3_OBJECT_READ, "b", "k");
	CU_ASSERT(!r.is_presigned);
	expect("GET", "/b/k?&&", "cwlota.com", S3_OBJECT_READ, "b", "k");
	CU_ASSERT_EQUAL(classify("GET", "/b/k?partNumber=", "cwlota.com"), -EINVAL);
	CU_ASSERT_EQUAL(classify("GET", "/b/k?partNumber=12345678901234567", "cwlota.com"), -EINVAL);
}

static void test_not_plain_reads(void)
{
	static const char *const queries[] = {
		"acl", "tagging", "uploads", "uploadId=u", "attributes", "legal-hold", "retention",
		"torrent", "response-content-type=text/plain", "response-content-disposition=x",
		"response-cache-control=no", "versionid=1" /* case matters */, "X-Amz-", "select&select-type=2",
	};
	char target[128];

	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		snprintf(target, sizeof(target), "/b/k?%s", queries[i]);
		expect("GET", target, "cwlota.com", S3_OBJECT_OTHER, "b", "k");
		snprintf(target, sizeof(target), "/b/k?versionId=1&%s", queries[i]);
		expect("HEAD", target, "cwlota.com", S3_OBJECT_OTHER, "b", "k");
	}
	expect("OPTIONS", "/b/k", "cwlota.com", S3_OBJECT_OTHER, "b", "k");
	expect("PATCH", "/b/k", "cwlota.com", S3_OBJECT_OTHER, "b", "k");
}

static void test_writes(void)
{
	expect("PUT", "/b/k", "cwlota.com", S3_OBJECT_WRITE, "b", "k");
	CU_ASSERT(!r.is_multipart_complete);
	expect("PUT", "/b/k?partNumber=2&uploadId=u", "cwlota.com", S3_OBJECT_WRITE, "b", "k");
	expect("POST", "/b/k?uploads", "cwlota.com", S3_OBJECT_WRITE, "b", "k");
	CU_ASSERT(!r.is_multipart_complete);
	expect("POST", "/b/k?uploadId=u", "cwlota.com", S3_OBJECT_WRITE, "b", "k");
	CU_ASSERT(r.is_multipart_complete);
	expect("DELETE", "/b/k?uploadId=u", "cwlota.com", S3_OBJECT_WRITE, "b", "k");
	expect("DELETE", "/b/k?versionId=1", "cwlota.com", S3_OBJECT_WRITE, "b", "k");
	expect("PUT", "/b/k?tagging", "cwlota.com", S3_OBJECT_WRITE, "b", "k");
	expect("GET", "/b/k?uploadId=u", "cwlota.com", S3_OBJECT_OTHER, "b", "k");
	CU_ASSERT(!r.is_multipart_complete); /* only writes complete uploads */
	expect("PUT", "/b", "cwlota.com", S3_BUCKET, "b", "");
	expect("DELETE", "/", "b.cwlota.com", S3_BUCKET, "b", "");
	expect("POST", "/?delete", "b.cwlota.com", S3_BUCKET, "b", "");
	CU_ASSERT(r.is_multi_delete);
	expect("POST", "/b?delete=", "cwlota.com", S3_BUCKET, "b", "");
	CU_ASSERT(r.is_multi_delete);
	expect("GET", "/b?delete", "cwlota.com", S3_BUCKET, "b", "");
	CU_ASSERT(!r.is_multi_delete); /* only POST deletes */
	expect("POST", "/b/k?delete", "cwlota.com", S3_OBJECT_WRITE, "b", "k");
	CU_ASSERT(!r.is_multi_delete); /* DeleteObjects is a bucket request */
	CU_ASSERT_STRING_EQUAL(s3_op_name(S3_OBJECT_READ), "read");
	CU_ASSERT_STRING_EQUAL(s3_op_name(S3_OBJECT_WRITE), "write");
	CU_ASSERT_STRING_EQUAL(s3_op_name((enum s3_op)99), "?");
}

static int check_host(const char *v)
{
	struct http_str h = {v, strlen(v)};

	return s3_check_host(&h, HOSTS);
}

/* Hosts the origin reads as lotad does pass; the rest (measured against radosgw: it takes
 * any other name for a bucket of its own) are refused. */
static void test_check_host(void)
{
	static const char *const ok[] = {
	    "", "cwlota.com", "CWLOTA.COM", "Cwlota.Com", "cwlota.com:80", "s3.local:8080",
	    "bkt.cwlota.com", "BKT.cwlota.com", "bkt.CWLOTA.COM", "x.bkt.cwlota.com",
	    "my-bucket_1.s3.local", "127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:8080",
	    "cwlota.com.cwlota.com"};
	static const char *const bad[] = {
	    "cwlota.com.", "CWLOTA.COM.", ".cwlota.com", "cwlota.com.:80", "bkt.cwlota.com.",
	    "bkt..cwlota.com", ".bkt.cwlota.com", "localhost", "other.example", "cwlota.com,x",
	    "cwlota.com:", "cwlota.com:abc", "cwlota.com:123456", "cwlota.comx", "xcwlota.com",
	    "999.1.1.1", "[::1", "[::1]x", "[zz]", "b/k.cwlota.com", "b k.cwlota.com",
	    "cwlota.com:80:80"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (check_host(ok[i]) != 0)
			fprintf(stderr, "\nhost '%s' refused\n", ok[i]);
		CU_ASSERT_EQUAL(check_host(ok[i]), 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (check_host(bad[i]) != -EINVAL)
			fprintf(stderr, "\nhost '%s' accepted\n", bad[i]);
		CU_ASSERT_EQUAL(check_host(bad[i]), -EINVAL);
	}
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"path style", test_path_style},
	    {"virtual hosted", test_virtual_hosted},
	    {"percent decoding", test_percent_decoding},
	    {"long names", test_long_names},
	    {"plain reads", test_read_classification},
	    {"not plain reads", test_not_plain_reads},
	    {"writes", test_writes},
	    {"host check", test_check_host},
	};

	return UNIT_RUN("s3", NULL, NULL, tests);
}

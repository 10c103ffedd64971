/* Unit tests for user/peerauth.c: sign and verify, every way a signature can be wrong,
 * the skew window, secret files (blanks, bounds) and reload with a grace for the old. */
#include "unit.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "peerauth.h"

#define NOW 1800000000
#define SECRET "0123456789abcdef-cluster-secret"

static char dir[64], path[128], err[256];

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static struct peerauth *open_with(const char *secret)
{
	struct peerauth *pa = NULL;

	write_file(path, secret);
	CU_ASSERT_EQUAL_FATAL(peerauth_open(path, &pa, err, sizeof(err)), 0);
	return pa;
}

static struct peerauth_req req(const char *method, const char *target, const char *host)
{
	return (struct peerauth_req){
	    {method, strlen(method)}, {target, strlen(target)}, {host, strlen(host)}};
}

/* The value part of a signed header line, as the receiver's parser would see it. */
static struct http_str value_of(char *line)
{
	char *v = line + strlen(PEERAUTH_HEADER ": ");

	CU_ASSERT_FATAL(strncmp(line, PEERAUTH_HEADER ": ", strlen(PEERAUTH_HEADER ": ")) == 0);
	CU_ASSERT_FATAL(strcmp(line + strlen(line) - 2, "\r\n") == 0);
	return (struct http_str){v, strlen(v) - 2};
}

static void test_roundtrip(void)
{
	struct peerauth *pa = open_with(SECRET "\n");
	struct peerauth_req r = req("GET", "/bkt/some/key?versionId=3", "cwlota.com");
	char line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX];
	struct http_str v;

	CU_ASSERT_EQUAL_FATAL(peerauth_sign(pa, &r, "10.0.0.1:8081", NOW, line, sizeof(line)), 0);
	v = value_of(line);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW, node, sizeof(node)), 0);
	CU_ASSERT_STRING_EQUAL(node, "10.0.0.1:8081");
	/* the skew window, both ways */
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW + PEERAUTH_SKEW_S, node, sizeof(node)), 0);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW - PEERAUTH_SKEW_S, node, sizeof(node)), 0);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW + PEERAUTH_SKEW_S + 1, node, sizeof(node)),
			-ETIME);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW - PEERAUTH_SKEW_S - 1, node, sizeof(node)),
			-ETIME);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, NULL, NOW, node, sizeof(node)), -ENOENT);
	/* IPv6 ids as addr_str() writes them */
	CU_ASSERT_EQUAL(peerauth_sign(pa, &r, "[fd00::1]:8081", NOW, line, sizeof(line)), 0);
	v = value_of(line);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW, node, sizeof(node)), 0);
	CU_ASSERT_STRING_EQUAL(node, "[fd00::1]:8081");
	CU_ASSERT_EQUAL(peerauth_sign(pa, &r, "bad node", NOW, line, sizeof(line)), -EINVAL);
	CU_ASSERT_EQUAL(peerauth_sign(pa, &r, "10.0.0.1:8081", NOW, line, 40), -ENOSPC);
	peerauth_free(pa);
}

/* Change one thing the signature covers: it no longer verifies. */
static void test_tampering(void)
{
	struct peerauth *pa = open_with(SECRET);
	struct peerauth_req r = req("GET", "/bkt/key", "cwlota.com"), o;
	char line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX], forged[PEERAUTH_LINE_MAX];
	struct http_str v;
	char *p;

	CU_ASSERT_EQUAL_FATAL(peerauth_sign(pa, &r, "10.0.0.1:8081", NOW, line, sizeof(line)), 0);
	v = value_of(line);
	o = req("HEAD", "/bkt/key", "cwlota.com");
	CU_ASSERT_EQUAL(peerauth_verify(pa, &o, &v, NOW, node, sizeof(node)), -EPERM);
	o = req("GET", "/bkt/key2", "cwlota.com");
	CU_ASSERT_EQUAL(peerauth_verify(pa, &o, &v, NOW, node, sizeof(node)), -EPERM);
	o = req("GET", "/bkt/key", "bkt.cwlota.com");
	CU_ASSERT_EQUAL(peerauth_verify(pa, &o, &v, NOW, node, sizeof(node)), -EPERM);

	/* another node id, another timestamp, one flipped signature digit */
	strcpy(forged, line);
	forged[strlen(PEERAUTH_HEADER ": v1 node=10.0.0.")] = '2';
	v = value_of(forged);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW, node, sizeof(node)), -EPERM);
	strcpy(forged, line);
	p = strstr(forged, ",ts=") + 4 + 9;
	*p = *p == '0' ? '1' : '0';
	v = value_of(forged);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW, node, sizeof(node)), -EPERM);
	strcpy(forged, line);
	p = strstr(forged, "sig=") + 4 + 20;
	*p = *p == 'a' ? 'b' : 'a';
	v = value_of(forged);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW, node, sizeof(node)), -EPERM);
	peerauth_free(pa);

	/* the right format under another secret */
	pa = open_with("another-secret-of-enough-length");
	v = value_of(line);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW, node, sizeof(node)), -EPERM);
	peerauth_free(pa);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
	    "",
	    "v2 node=a,ts=1800000000,sig=00",
	    "v1 "
	    "node=,ts=1800000000,sig="
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    "v1 node=a "
	    "b,ts=1800000000,sig=0000000000000000000000000000000000000000000000000000000000000000",
	    "v1 node=a,ts=,sig=0000000000000000000000000000000000000000000000000000000000000000",
	    "v1 node=a,ts=-5,sig=0000000000000000000000000000000000000000000000000000000000000000",
	    "v1 "
	    "node=a,ts=18000000000000000000000,sig="
	    "000000000000000000000000000000000000000000000000000000000000000",
	    "v1 "
	    "node=a,ts=1800000000,sig="
	    "000000000000000000000000000000000000000000000000000000000000000",
	    "v1 "
	    "node=a,ts=1800000000,sig="
	    "00000000000000000000000000000000000000000000000000000000000000000",
	    "v1 "
	    "node=a,ts=1800000000,sig="
	    "000000000000000000000000000000000000000000000000000000000000000G",
	    "v1 "
	    "node=a,ts=1800000000,sig="
	    "000000000000000000000000000000000000000000000000000000000000000A",
	    "v1 "
	    "ts=1800000000,node=a,sig="
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    "v1 "
	    "node=a,ts=1800000000,sig="
	    "0000000000000000000000000000000000000000000000000000000000000000,",
	};
	struct peerauth *pa = open_with(SECRET);
	struct peerauth_req r = req("GET", "/bkt/key", "cwlota.com");
	char node[PEERAUTH_NODE_MAX];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_str v = {bad[i], strlen(bad[i])};

		CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW, node, sizeof(node)), -EBADMSG);
	}
	peerauth_free(pa);
}

static void test_secret_files(void)
{
	struct peerauth *a = open_with(SECRET "\r\n  \n"), *b = NULL, *pa = NULL;
	struct peerauth_req r = req("GET", "/k", "");
	char line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX], big[PEERAUTH_SECRET_MAX + 10];
	struct http_str v;

	/* trailing blanks do not count: a file written with or without newline interoperates */
	b = open_with(SECRET);
	CU_ASSERT_EQUAL_FATAL(peerauth_sign(a, &r, "n1", NOW, line, sizeof(line)), 0);
	v = value_of(line);
	CU_ASSERT_EQUAL(peerauth_verify(b, &r, &v, NOW, node, sizeof(node)), 0);
	peerauth_free(a);
	peerauth_free(b);

	write_file(path, "short\n");
	CU_ASSERT_EQUAL(peerauth_open(path, &pa, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "at least 16"));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file(path, big);
	CU_ASSERT_EQUAL(peerauth_open(path, &pa, err, sizeof(err)), -E2BIG);
	CU_ASSERT_EQUAL(peerauth_open("/nonexistent/secret", &pa, err, sizeof(err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/secret"));
}

static void test_reload(void)
{
	struct peerauth *pa = open_with(SECRET);
	struct peerauth_req r = req("GET", "/bkt/key", "cwlota.com");
	char old[PEERAUTH_LINE_MAX], line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX];
	struct http_str v;

	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(peerauth_sign(pa, &r, "n1", NOW, old, sizeof(old)), 0);

	/* a file that cannot be used keeps the secret in use */
	write_file(path, "tiny");
	CU_ASSERT(peerauth_reload(pa, NOW, err, sizeof(err)) < 0);
	v = value_of(old);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW, node, sizeof(node)), 0);

	/* rotation: new signatures use the new secret, the old one verifies for a grace */
	write_file(path, "rotated-secret-0123456789\n");
	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(peerauth_sign(pa, &r, "n1", NOW, line, sizeof(line)), 0);
	CU_ASSERT_STRING_NOT_EQUAL(line, old);
	v = value_of(line);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW, node, sizeof(node)), 0);
	v = value_of(old);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, &v, NOW + 30, node, sizeof(node)), 0);
	peerauth_free(pa);

	/* after the grace the old secret is refused */
	pa = open_with(SECRET);
	CU_ASSERT_EQUAL_FATAL(
	    peerauth_sign(pa, &r, "n1", NOW + PEERAUTH_PREV_GRACE_S + 1, old, sizeof(old)), 0);
	write_file(path, "rotated-secret-0123456789-longer\n");
	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 1);
	v = value_of(old);
	CU_ASSERT_EQUAL(
	    peerauth_verify(pa, &r, &v, NOW + PEERAUTH_PREV_GRACE_S + 1, node, sizeof(node)),
	    -EPERM);
	/* the same secret written again is no rotation */
	write_file(path, "rotated-secret-0123456789-longer");
	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 0);
	peerauth_free(pa);
}

/* What the peer listener will do: parse the forwarded head, find the header, verify. */
static void test_parsed_request(void)
{
	struct peerauth *pa = open_with(SECRET);
	const char *client = "GET /bkt/obj HTTP/1.1\r\nHost: cwlota.com\r\nRange: bytes=0-9\r\n";
	char line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX], head[1024];
	struct peerauth_req r;
	const struct http_str *v;
	struct http_msg m;

	CU_ASSERT_EQUAL_FATAL(http_parse_request(client, strlen(client), &m), -EAGAIN);
	snprintf(head, sizeof(head), "%s\r\n", client);
	CU_ASSERT_EQUAL_FATAL(http_parse_request(head, strlen(head), &m), 0);
	CU_ASSERT_EQUAL_FATAL(peerauth_req_of(&m, &r, &v), 0);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, v, NOW, node, sizeof(node)), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(peerauth_sign(pa, &r, "10.0.0.1:8081", NOW, line, sizeof(line)), 0);

	snprintf(head, sizeof(head), "%s%s\r\n", client, line);
	CU_ASSERT_EQUAL_FATAL(http_parse_request(head, strlen(head), &m), 0);
	CU_ASSERT_EQUAL_FATAL(peerauth_req_of(&m, &r, &v), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, v, NOW, node, sizeof(node)), 0);

	snprintf(head, sizeof(head), "%s%s%s\r\n", client, line, line);
	CU_ASSERT_EQUAL_FATAL(http_parse_request(head, strlen(head), &m), 0);
	CU_ASSERT_EQUAL(peerauth_req_of(&m, &r, &v), -EBADMSG);
	peerauth_free(pa);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"sign and verify, skew window", test_roundtrip},
	    {"tampered parts and wrong secret", test_tampering},
	    {"malformed values", test_malformed},
	    {"secret files", test_secret_files},
	    {"reload and rotation grace", test_reload},
	    {"parsed request heads", test_parsed_request},
	};
	int r;

	snprintf(dir, sizeof(dir), "/tmp/test_peerauth.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/secret", dir);
	r = UNIT_RUN("peerauth", NULL, NULL, tests);
	unlink(path);
	rmdir(dir);
	return r;
}

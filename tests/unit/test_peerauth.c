/* Unit tests for user/peerauth.c: sign and verify whole request heads, every way a signed
 * head can be changed, the skew window, replays and the bounded replay cache, secret
 * files (blanks, bounds) and reload with a grace for the old. */
#include "unit.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "peerauth.h"

#define NOW 1800000000
#define SECRET "0123456789abcdef-cluster-secret"
#define NODE "10.0.0.1:8081"

/* A client's signed ranged GET, as a non-owner forwards it (request line, header lines). */
#define REQ_LINE "GET /bkt/some/key?versionId=3 HTTP/1.1\r\n"
#define HOST "Host: cwlota.com\r\n"
#define AUTH                                                                                       \
	"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/s3/"            \
	"aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "                 \
	"Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7\r\n"
#define RANGE "Range: bytes=0-1048575\r\n"
#define DATE "x-amz-date: 20261122T011815Z\r\n"
#define SHA "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"
#define CLIENT REQ_LINE HOST AUTH RANGE DATE SHA

static char dir[64], path[128], err[256];
static char headbuf[4096];
static struct http_msg msg;

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

/* Parses lines (request line and header lines), then the signed line if any, then the
 * empty line, as the receiving node's parser does; r and *v point into the one buffer. */
static void parse(const char *lines, const char *signed_line, struct peerauth_req *r,
		  const struct http_str **v)
{
	snprintf(headbuf, sizeof(headbuf), "%s%s\r\n", lines, signed_line ? signed_line : "");
	CU_ASSERT_EQUAL_FATAL(http_parse_request(headbuf, strlen(headbuf), &msg), 0);
	CU_ASSERT_EQUAL_FATAL(peerauth_req_of(&msg, r, v), 0);
}

/* What the sending node does: sign the head it forwards. */
static int sign(struct peerauth *pa, const char *lines, const char *node, time_t now, char *line)
{
	struct peerauth_req r;
	const struct http_str *v;

	parse(lines, NULL, &r, &v);
	CU_ASSERT_PTR_NULL(v);
	return peerauth_sign(pa, &r, node, now, line, PEERAUTH_LINE_MAX);
}

/* What the owner does with the head it received: lines plus the signed line. */
static int verify(struct peerauth *pa, const char *lines, const char *line, time_t now, char *node)
{
	struct peerauth_req r;
	const struct http_str *v;

	parse(lines, line, &r, &v);
	return peerauth_verify(pa, &r, v, now, node, PEERAUTH_NODE_MAX);
}

static void test_roundtrip(void)
{
	struct peerauth *pa = open_with(SECRET "\n");
	char line[PEERAUTH_LINE_MAX], other[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX];

	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW, line), 0);
	CU_ASSERT(strncmp(line, PEERAUTH_HEADER ": v2 node=" NODE ",ts=1800000000,nonce=",
			  strlen(PEERAUTH_HEADER ": v2 node=" NODE ",ts=1800000000,nonce=")) == 0);
	CU_ASSERT(strcmp(line + strlen(line) - 2, "\r\n") == 0);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW, node), 0);
	CU_ASSERT_STRING_EQUAL(node, NODE);
	/* the same request signed again: another nonce, so another line */
	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW, other), 0);
	CU_ASSERT_STRING_NOT_EQUAL(line, other);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, other, NOW, node), 0);
	/* IPv6 ids as addr_str() writes them */
	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, "[fd00::1]:8081", NOW, line), 0);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW, node), 0);
	CU_ASSERT_STRING_EQUAL(node, "[fd00::1]:8081");
	CU_ASSERT_EQUAL(verify(pa, CLIENT, NULL, NOW, node), -ENOENT);
	CU_ASSERT_EQUAL(sign(pa, CLIENT, "bad node", NOW, line), -EINVAL);
	{
		struct peerauth_req r;
		const struct http_str *v;

		parse(CLIENT, NULL, &r, &v);
		CU_ASSERT_EQUAL(peerauth_sign(pa, &r, NODE, NOW, line, 100), -ENOSPC);
	}
	peerauth_free(pa);
}

/* A fresh signature made at NOW, checked at NOW + off (a verified one is spent). */
static int check_at(struct peerauth *pa, long off)
{
	char line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX];

	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW, line), 0);
	return verify(pa, CLIENT, line, NOW + off, node);
}

/* The window is what clock skew needs, both ways. */
static void test_window(void)
{
	struct peerauth *pa = open_with(SECRET);

	CU_ASSERT(PEERAUTH_SKEW_S >= 5 && PEERAUTH_SKEW_S <= 15);
	CU_ASSERT_EQUAL(check_at(pa, PEERAUTH_SKEW_S), 0);
	CU_ASSERT_EQUAL(check_at(pa, -PEERAUTH_SKEW_S), 0);
	CU_ASSERT_EQUAL(check_at(pa, PEERAUTH_SKEW_S + 1), -ETIME);
	CU_ASSERT_EQUAL(check_at(pa, -PEERAUTH_SKEW_S - 1), -ETIME);
	CU_ASSERT_EQUAL(check_at(pa, 30), -ETIME); /* inside v1's 60 s */
	CU_ASSERT_EQUAL(check_at(pa, -600), -ETIME);
	peerauth_free(pa);
}

/* Each head differs from CLIENT in one thing the signature covers. */
static const char *const changed_heads[] = {
    /* another Authorization (another client's credentials) */
    REQ_LINE HOST
    "Authorization: AWS4-HMAC-SHA256 Credential=BOBEXAMPLE/20261122/us-east-1/s3/aws4_request, "
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
    "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7\r\n" RANGE DATE SHA,
    /* another Range, none, a second one */
    REQ_LINE HOST AUTH "Range: bytes=0-1048576\r\n" DATE SHA,
    REQ_LINE HOST AUTH DATE SHA,
    REQ_LINE HOST AUTH RANGE RANGE DATE SHA,
    /* another value of any header, a header added, removed, renamed, moved */
    REQ_LINE "Host: bkt.cwlota.com\r\n" AUTH RANGE DATE SHA,
    REQ_LINE HOST AUTH RANGE "x-amz-date: 20261122T011816Z\r\n" SHA,
    REQ_LINE HOST AUTH RANGE DATE "x-amz-content-sha256: UNSIGNED-PAYLOAx\r\n",
    CLIENT "If-None-Match: \"abc\"\r\n",
    REQ_LINE HOST "x-amz-server-side-encryption-customer-key: AAAA\r\n" AUTH RANGE DATE SHA,
    REQ_LINE HOST AUTH RANGE DATE,
    REQ_LINE AUTH RANGE HOST DATE SHA,
    REQ_LINE HOST AUTH "Rang: bytes=0-1048575\r\n" DATE SHA,
    REQ_LINE HOST AUTH RANGE SHA DATE,
    /* another method, another target */
    "HEAD /bkt/some/key?versionId=3 HTTP/1.1\r\n" HOST AUTH RANGE DATE SHA,
    "GET /bkt/some/key?versionId=4 HTTP/1.1\r\n" HOST AUTH RANGE DATE SHA,
    "GET /bkt/some/key HTTP/1.1\r\n" HOST AUTH RANGE DATE SHA,
};

static void test_changed_head(void)
{
	struct peerauth *pa = open_with(SECRET);
	char line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX];

	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW, line), 0);
	for (size_t i = 0; i < sizeof(changed_heads) / sizeof(changed_heads[0]); i++) {
		if (verify(pa, changed_heads[i], line, NOW, node) != -EPERM)
			CU_FAIL_FATAL(changed_heads[i]);
	}
	/* refusals spend nothing: the unchanged head still verifies, once */
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW, node), 0);
	peerauth_free(pa);
}

/* Swaps one byte at the position after `after` in a copy of line. */
static void flip_after(const char *line, const char *after, size_t skip, char *out)
{
	char *p;

	strcpy(out, line);
	p = strstr(out, after);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	p += strlen(after) + skip;
	*p = *p == '0' ? '1' : '0';
}

static void test_changed_value(void)
{
	struct peerauth *pa = open_with(SECRET);
	char line[PEERAUTH_LINE_MAX], forged[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX];

	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW, line), 0);
	/* another node id, another time (still inside the window), nonce, signature */
	flip_after(line, "node=10.0.0.", 0, forged);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, forged, NOW, node), -EPERM);
	flip_after(line, ",ts=", 9, forged);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, forged, NOW, node), -EPERM);
	flip_after(line, ",nonce=", 7, forged);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, forged, NOW, node), -EPERM);
	flip_after(line, ",sig=", 20, forged);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, forged, NOW, node), -EPERM);
	peerauth_free(pa);

	/* the right format under another secret */
	pa = open_with("another-secret-of-enough-length");
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW, node), -EPERM);
	peerauth_free(pa);
}

#define Z64 "0000000000000000000000000000000000000000000000000000000000000000"
#define Z32 "00000000000000000000000000000000"

static void test_malformed(void)
{
	static const char *const bad[] = {
	    "",
	    "v2",
	    "v2 ",
	    "v2 node=a,ts=1800000000,nonce=" Z32 ",sig=00",
	    "v2 node=,ts=1800000000,nonce=" Z32 ",sig=" Z64,
	    "v2 node=a b,ts=1800000000,nonce=" Z32 ",sig=" Z64,
	    "v2 node=a,ts=,nonce=" Z32 ",sig=" Z64,
	    "v2 node=a,ts=-5,nonce=" Z32 ",sig=" Z64,
	    "v2 node=a,ts=01800000000,nonce=" Z32 ",sig=" Z64,
	    "v2 node=a,ts=9223372036854775808,nonce=" Z32 ",sig=" Z64,
	    "v2 node=a,ts=18000000000000000000000,nonce=" Z32 ",sig=" Z64,
	    "v2 node=a,ts=1800000000,sig=" Z64,
	    "v2 node=a,ts=1800000000,nonce=0000000000000000000000000000000,sig=" Z64,
	    "v2 node=a,ts=1800000000,nonce=" Z32 "0,sig=" Z64,
	    "v2 node=a,ts=1800000000,nonce=0000000000000000000000000000000A,sig=" Z64,
	    "v2 node=a,ts=1800000000,nonce=" Z32 ",sig=" Z64 "0",
	    "v2 node=a,ts=1800000000,nonce=" Z32 ",sig=" Z64 ",",
	    "v2 node=a,ts=1800000000,nonce=" Z32
	    ",sig=000000000000000000000000000000000000000000000000000000000000000G",
	    "v2 ts=1800000000,node=a,nonce=" Z32 ",sig=" Z64,
	    "v2 node=a,ts=1800000000,sig=" Z64 ",nonce=" Z32,
	    "V2 node=a,ts=1800000000,nonce=" Z32 ",sig=" Z64,
	    "v2  node=a,ts=1800000000,nonce=" Z32 ",sig=" Z64,
	    "v node=a,ts=1800000000,nonce=" Z32 ",sig=" Z64,
	};
	/* the old format, however well formed, is another version: refused, with its reason */
	static const char *const old[] = {
	    "v1 node=a,ts=1800000000,sig=" Z64,
	    "v1 node=10.0.0.1:8081,ts=1800000000,sig=" Z64,
	    "v3 node=a,ts=1800000000,nonce=" Z32 ",sig=" Z64,
	};
	struct peerauth *pa = open_with(SECRET);
	struct peerauth_req r;
	const struct http_str *v;
	char node[PEERAUTH_NODE_MAX];

	parse(CLIENT, NULL, &r, &v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_str s = {bad[i], strlen(bad[i])};

		if (peerauth_verify(pa, &r, &s, NOW, node, sizeof(node)) != -EBADMSG)
			CU_FAIL(bad[i]);
	}
	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		struct http_str s = {old[i], strlen(old[i])};

		if (peerauth_verify(pa, &r, &s, NOW, node, sizeof(node)) != -EPROTONOSUPPORT)
			CU_FAIL(old[i]);
	}
	peerauth_free(pa);
}

/* A v1 line signed exactly as the old code signed it is refused, whatever it covers. */
static void test_v1_refused(void)
{
	struct peerauth *pa = open_with(SECRET);
	char line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX];

	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW, line), 0);
	memcpy(strstr(line, ": v2 ") + 2, "v1", 2);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW, node), -EPROTONOSUPPORT);
	peerauth_free(pa);
}

static void test_replay(void)
{
	struct peerauth *pa = open_with(SECRET);
	char line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX];

	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW, line), 0);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW, node), 0);
	/* the same line again, at once and up to the end of the window: a replay */
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW, node), -EALREADY);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW + 1, node), -EALREADY);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW + PEERAUTH_SKEW_S, node), -EALREADY);
	/* with other credentials or another range: not ours at all */
	CU_ASSERT_EQUAL(verify(pa, changed_heads[0], line, NOW, node), -EPERM);
	CU_ASSERT_EQUAL(verify(pa, changed_heads[1], line, NOW, node), -EPERM);
	/* past the window it is stale, whether or not the cache still holds it */
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW + PEERAUTH_SKEW_S + 1, node), -ETIME);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW + 3600, node), -ETIME);
	/* a fresh signature of the same request (a legitimate resend) is fine */
	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW + 2, line), 0);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW + 2, node), 0);
	peerauth_free(pa);
}

static void nonce_of(unsigned n, unsigned bucket, unsigned char out[PEERHDR_NONCE_LEN])
{
	memset(out, 0, PEERHDR_NONCE_LEN);
	memcpy(out, &bucket, sizeof(bucket)); /* the bytes that choose the bucket */
	memcpy(out + 8, &n, sizeof(n));
}

/* At most max nonces; full means refused, never forgotten; entries go when their time
 * has passed. */
static void test_replay_cache_bounded(void)
{
	struct peerauth_replay *rc = peerauth_replay_new(4);
	unsigned char nn[PEERHDR_NONCE_LEN];

	CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
	CU_ASSERT_PTR_NULL(peerauth_replay_new(0));
	for (unsigned i = 0; i < 4; i++) {
		nonce_of(i, i % 2, nn);
		CU_ASSERT_EQUAL(peerauth_replay_admit(rc, nn, 100 + i, 90), 0);
	}
	nonce_of(4, 0, nn);
	CU_ASSERT_EQUAL(peerauth_replay_admit(rc, nn, 110, 90), -ENOBUFS);
	CU_ASSERT_EQUAL(peerauth_replay_admit(rc, nn, 110, 100), -ENOBUFS); /* 100 <= until */
	for (unsigned i = 0; i < 4; i++) {
		nonce_of(i, i % 2, nn);
		CU_ASSERT_EQUAL(peerauth_replay_admit(rc, nn, 100 + i, 100), -EALREADY);
	}
	/* at 101 the first is gone (its signature is stale by then): one place frees */
	nonce_of(4, 0, nn);
	CU_ASSERT_EQUAL(peerauth_replay_admit(rc, nn, 120, 101), 0);
	nonce_of(5, 0, nn);
	CU_ASSERT_EQUAL(peerauth_replay_admit(rc, nn, 120, 101), -ENOBUFS);
	/* at 104 the first four are gone; one admitted then that expires before the entry
	 * ahead of it (120) waits behind it: kept longer, never shorter */
	nonce_of(6, 1, nn);
	CU_ASSERT_EQUAL(peerauth_replay_admit(rc, nn, 105, 104), 0);
	CU_ASSERT_EQUAL(peerauth_replay_admit(rc, nn, 105, 110), -EALREADY);
	/* after everyone's time, the cache is empty again */
	for (unsigned i = 10; i < 14; i++) {
		nonce_of(i, 0, nn);
		CU_ASSERT_EQUAL(peerauth_replay_admit(rc, nn, 200, 121), 0);
	}
	peerauth_replay_free(rc);
}

/* A long run through a small cache with crowded buckets: every recent nonce is known,
 * none is refused for room while fewer than max are live. */
static void test_replay_cache_churn(void)
{
	struct peerauth_replay *rc = peerauth_replay_new(64);
	unsigned char nn[PEERHDR_NONCE_LEN];
	unsigned bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
	for (unsigned t = 0; t < 20000; t++) {
		nonce_of(t, t % 3, nn);
		bad += peerauth_replay_admit(rc, nn, (time_t)(t / 8 + 5), (time_t)(t / 8)) != 0;
		if (t >= 40) {
			nonce_of(t - 40, (t - 40) % 3, nn);
			bad += peerauth_replay_admit(rc, nn, (time_t)(t / 8 + 5),
						     (time_t)(t / 8)) != -EALREADY;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	peerauth_replay_free(rc);
}

#define RACE_THREADS 4
#define RACE_NONCES 5000

static struct peerauth_replay *race_rc;
static unsigned race_admitted[RACE_THREADS];

static void *race(void *arg)
{
	unsigned *admitted = arg;
	unsigned char nn[PEERHDR_NONCE_LEN];

	for (unsigned i = 0; i < RACE_NONCES; i++) {
		nonce_of(i, i, nn);
		*admitted += peerauth_replay_admit(race_rc, nn, NOW + 10, NOW) == 0;
	}
	return NULL;
}

/* Worker threads share one cache: each nonce is accepted exactly once among them. */
static void test_replay_cache_threads(void)
{
	pthread_t t[RACE_THREADS];
	unsigned total = 0;

	race_rc = peerauth_replay_new(RACE_NONCES);
	CU_ASSERT_PTR_NOT_NULL_FATAL(race_rc);
	for (int i = 0; i < RACE_THREADS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, race, &race_admitted[i]), 0);
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(t[i], NULL);
		total += race_admitted[i];
	}
	CU_ASSERT_EQUAL(total, RACE_NONCES);
	peerauth_replay_free(race_rc);
}

static void test_secret_files(void)
{
	struct peerauth *a = open_with(SECRET "\r\n  \n"), *b = NULL, *pa = NULL;
	char line[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX], big[PEERAUTH_SECRET_MAX + 10];

	/* trailing blanks do not count: a file written with or without newline interoperates */
	b = open_with(SECRET);
	CU_ASSERT_EQUAL_FATAL(sign(a, CLIENT, "n1", NOW, line), 0);
	CU_ASSERT_EQUAL(verify(b, CLIENT, line, NOW, node), 0);
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
	char old1[PEERAUTH_LINE_MAX], old2[PEERAUTH_LINE_MAX], line[PEERAUTH_LINE_MAX];
	char node[PEERAUTH_NODE_MAX];

	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, "n1", NOW, old1), 0);
	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, "n1", NOW, old2), 0);

	/* a file that cannot be used keeps the secret in use */
	write_file(path, "tiny");
	CU_ASSERT(peerauth_reload(pa, NOW, err, sizeof(err)) < 0);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, old1, NOW, node), 0);

	/* rotation: new signatures use the new secret, the old one verifies for a grace */
	write_file(path, "rotated-secret-0123456789\n");
	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, "n1", NOW, line), 0);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, line, NOW, node), 0);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, old2, NOW + 5, node), 0);
	peerauth_free(pa);

	/* after the grace the old secret is refused */
	pa = open_with(SECRET);
	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, "n1", NOW + PEERAUTH_PREV_GRACE_S + 1, old1), 0);
	write_file(path, "rotated-secret-0123456789-longer\n");
	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(verify(pa, CLIENT, old1, NOW + PEERAUTH_PREV_GRACE_S + 1, node), -EPERM);
	/* the same secret written again is no rotation */
	write_file(path, "rotated-secret-0123456789-longer");
	CU_ASSERT_EQUAL(peerauth_reload(pa, NOW, err, sizeof(err)), 0);
	peerauth_free(pa);
}

/* One signature per request: a second x-lota-peer line makes the head unusable, and the
 * lines lotad writes itself (probes, invalidations) sign the same way. */
static void test_heads(void)
{
	static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: 10.0.0.2:8081\r\n"
				    "Connection: close\r\n\r\n";
	struct peerauth *pa = open_with(SECRET);
	char line[PEERAUTH_LINE_MAX], second[PEERAUTH_LINE_MAX], node[PEERAUTH_NODE_MAX];
	char both[1024];
	struct peerauth_req r;
	const struct http_str *v;

	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW, line), 0);
	CU_ASSERT_EQUAL_FATAL(sign(pa, CLIENT, NODE, NOW, second), 0);
	snprintf(both, sizeof(both), "%s%s", line, second);
	snprintf(headbuf, sizeof(headbuf), "%s%s\r\n", CLIENT, both);
	CU_ASSERT_EQUAL_FATAL(http_parse_request(headbuf, strlen(headbuf), &msg), 0);
	CU_ASSERT_EQUAL(peerauth_req_of(&msg, &r, &v), -EBADMSG);
	/* wherever the line sits, it is left out of what it signs */
	snprintf(both, sizeof(both), REQ_LINE HOST AUTH "%s" RANGE DATE SHA, line);
	CU_ASSERT_EQUAL(verify(pa, both, NULL, NOW, node), 0);

	CU_ASSERT_EQUAL_FATAL(
	    peerauth_sign_head(pa, probe, strlen(probe), NODE, NOW, line, sizeof(line)), 0);
	snprintf(both, sizeof(both),
		 "GET /healthz HTTP/1.1\r\nHost: 10.0.0.2:8081\r\n"
		 "Connection: close\r\n");
	CU_ASSERT_EQUAL(verify(pa, both, line, NOW, node), 0);
	CU_ASSERT_EQUAL(verify(pa,
			       "GET /healthz HTTP/1.1\r\nHost: 10.0.0.3:8081\r\n"
			       "Connection: close\r\n",
			       line, NOW, node),
			-EPERM);
	/* not one whole head, or one that carries a signature already */
	CU_ASSERT_EQUAL(
	    peerauth_sign_head(pa, probe, strlen(probe) - 2, NODE, NOW, line, sizeof(line)),
	    -EINVAL);
	snprintf(headbuf, sizeof(headbuf), "%s%s\r\n", CLIENT, second);
	CU_ASSERT_EQUAL(
	    peerauth_sign_head(pa, headbuf, strlen(headbuf), NODE, NOW, line, sizeof(line)),
	    -EINVAL);
	peerauth_free(pa);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"sign and verify whole heads", test_roundtrip},
	    {"skew window", test_window},
	    {"any change to the head", test_changed_head},
	    {"changed signature fields and wrong secret", test_changed_value},
	    {"malformed values and other versions", test_malformed},
	    {"v1 refused", test_v1_refused},
	    {"replays", test_replay},
	    {"replay cache is bounded", test_replay_cache_bounded},
	    {"replay cache churn", test_replay_cache_churn},
	    {"replay cache shared by threads", test_replay_cache_threads},
	    {"secret files", test_secret_files},
	    {"reload and rotation grace", test_reload},
	    {"two signatures, placement, own heads", test_heads},
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

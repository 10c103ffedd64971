/* chunkwire: the heads of lota's peer requests, built, signed and read back as the
 * receiving node does: names with every awkward byte, spans, and the version's lines. */
#include "unit.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "cache.h"
#include "cachepath/objmeta.h"
#include "cluster/chunkwire.h"
#include "http.h"
#include "peerauth.h"

static char dir[64], path[128];
static struct peerauth *pa;
static char head[HTTP_HEAD_MAX + 1];
static struct http_msg msg;

static int setup(void)
{
	char err[256];
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/lota-chunkwire-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/secret", dir);
	f = fopen(path, "w");
	if (!f)
		return 1;
	fputs("chunkwire-test-secret-0123456789\n", f);
	fclose(f);
	return peerauth_open(path, &pa, err, sizeof(err)) == 0 ? 0 : 1;
}

static int teardown(void)
{
	peerauth_free(pa);
	unlink(path);
	rmdir(dir);
	return 0;
}

/* Builds the request (is_keep_alive: without Connection: close) and parses it into msg,
 * as the gate of the receiving node would. */
static void build_as(const char *method, const char *p, const struct cache_key *k,
		     const struct cache_meta *m, const struct chunkwire_span *span, bool is_keep_alive)
{
	struct chunkwire_from from = {pa, "198.18.0.1:8081", is_keep_alive};
	struct evbuffer *b = evbuffer_new();
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL_FATAL(chunkwire_request(&from, method, p, "198.18.0.2:8081", k, m, span, b),
			      0);
	n = evbuffer_get_length(b);
	CU_ASSERT_FATAL(n <= HTTP_HEAD_MAX);
	evbuffer_remove(b, head, n);
	head[n] = '\0';
	evbuffer_free(b);
	CU_ASSERT_EQUAL_FATAL(http_parse_request(head, n, &msg), 0);
}

static void build(const char *method, const char *p, const struct cache_key *k,
		  const struct cache_meta *m, const struct chunkwire_span *span)
{
	build_as(method, p, k, m, span, false);
}

static const char extra[] = "x-amz-meta-owner: alice\r\nContent-Encoding: gzip\r\n";

static struct cache_meta sample(const struct cache_key *k)
{
	return (struct cache_meta){*k,
				   100 * 1024 * 1024 + 3,
				   16 * 1024 * 1024,
				   "\"0123456789abcdef-2\"",
				   "Sun, 22 Nov 2026 00:00:00 GMT",
				   "application/x-thing",
				   extra,
				   sizeof(extra) - 1};
}

static void test_round_trip_is_signed_and_exact(void)
{
	struct cache_key k = {"bkt", "dir/a b+c&d=e%25?\xc3\xa9#", "v1.2_x"}, got;
	struct cache_meta m = sample(&k);
	struct chunkwire_span span = {6, 6 * 16777216ull + 5, 7 * 16777216ull - 1}, s;
	struct peerauth_req r;
	const struct http_str *v;
	char node[PEERAUTH_NODE_MAX], *buf = NULL;
	struct objmeta om;

	build("GET", CHUNKWIRE_CHUNK, &k, &m, &span);
	CU_ASSERT_EQUAL(peerauth_req_of(&msg, &r, &v), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(peerauth_verify(pa, &r, v, time(NULL), node, sizeof(node)), 0);
	CU_ASSERT_STRING_EQUAL(node, "198.18.0.1:8081");
	CU_ASSERT_EQUAL_FATAL(chunkwire_key(&msg.target, &got, &buf), 0);
	CU_ASSERT_STRING_EQUAL(got.bucket, k.bucket);
	CU_ASSERT_STRING_EQUAL(got.key, k.key);
	CU_ASSERT_STRING_EQUAL(got.version, k.version);
	CU_ASSERT_EQUAL(chunkwire_span(&msg.target, &s), 0);
	CU_ASSERT(s.index == span.index && s.first == span.first && s.last == span.last);
	CU_ASSERT_EQUAL_FATAL(chunkwire_meta(&msg, &got, &om), 0);
	CU_ASSERT_STRING_EQUAL(om.meta.etag, m.etag);
	CU_ASSERT_STRING_EQUAL(om.meta.last_modified, m.last_modified);
	CU_ASSERT_STRING_EQUAL(om.meta.content_type, m.content_type);
	CU_ASSERT_EQUAL(om.meta.size, m.size);
	CU_ASSERT_EQUAL(om.meta.chunk_size, m.chunk_size);
	CU_ASSERT_EQUAL(om.meta.extra_len, m.extra_len);
	CU_ASSERT(om.meta.extra_len == m.extra_len &&
		  memcmp(om.meta.extra, extra, m.extra_len) == 0);
	/* the peer header itself is not a line of the version */
	CU_ASSERT_PTR_NULL(memmem(om.meta.extra, om.meta.extra_len, "x-lota", 6));
	objmeta_free(&om);
	free(buf);
}

static void test_no_version_and_no_span(void)
{
	struct cache_key k = {"bkt", "key", ""}, got;
	struct chunkwire_span s;
	char *buf = NULL;
	struct objmeta om;

	build("POST", CHUNKWIRE_INVALIDATE, &k, NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(chunkwire_key(&msg.target, &got, &buf), 0);
	CU_ASSERT_STRING_EQUAL(got.version, "");
	CU_ASSERT_EQUAL(chunkwire_span(&msg.target, &s), -EINVAL);
	CU_ASSERT_EQUAL(chunkwire_meta(&msg, &got, &om), -EINVAL);
	objmeta_free(&om);
	free(buf);
}

/* A chunk request kept alive says nothing of Connection (HTTP/1.1: kept); a notice says
 * close; both verify. */
static void test_keep_alive_or_close(void)
{
	struct cache_key k = {"bkt", "key", ""};
	struct cache_meta m = sample(&k);
	struct chunkwire_span span = {0, 0, 99};
	struct peerauth_req r;
	const struct http_str *v;
	char node[PEERAUTH_NODE_MAX];

	for (int keep = 0; keep < 2; keep++) {
		build_as("GET", CHUNKWIRE_CHUNK, &k, &m, &span, keep);
		CU_ASSERT_EQUAL(msg.keep_alive, keep);
		CU_ASSERT_EQUAL(http_find(&msg, "connection") != NULL, !keep);
		CU_ASSERT_EQUAL(peerauth_req_of(&msg, &r, &v), 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(v);
		CU_ASSERT_EQUAL(peerauth_verify(pa, &r, v, time(NULL), node, sizeof(node)), 0);
	}
}

static int span_of(const char *target)
{
	struct http_str t = {target, strlen(target)};
	struct chunkwire_span s;

	return chunkwire_span(&t, &s);
}

static void test_malformed_spans(void)
{
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?index=0&first=0&last=0"), 0);
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?index=0&first=5&last=4"), -EINVAL);
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?index=0&first=-1&last=4"), -EINVAL);
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?index=0&first=+1&last=4"), -EINVAL);
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?index=0&first=&last=4"), -EINVAL);
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?index=0&first=1%200&last=4"), -EINVAL);
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?index=0&last=4"), -EINVAL);
	/* 20 digits could overflow: refused */
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?index=0&first=0&last=99999999999999999999"), -EINVAL);
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?index=0&first=0&last=9999999999999999999"), 0);
	/* a name that only ends like ours is not ours */
	CU_ASSERT_EQUAL(span_of("/_lota/chunk?xindex=0&first=0&last=4"), -EINVAL);
}

static int key_of(const char *target)
{
	struct http_str t = {target, strlen(target)};
	struct cache_key k;
	char *buf = NULL;
	int r = chunkwire_key(&t, &k, &buf);

	free(buf);
	return r;
}

static void test_malformed_keys(void)
{
	CU_ASSERT_EQUAL(key_of("/_lota/chunk?bucket=b&key=k"), 0);
	CU_ASSERT_EQUAL(key_of("/_lota/chunk?bucket=b"), -EINVAL);
	CU_ASSERT_EQUAL(key_of("/_lota/chunk?bucket=&key=k"), -EINVAL);
	CU_ASSERT_EQUAL(key_of("/_lota/chunk?key=k"), -EINVAL);
	CU_ASSERT_EQUAL(key_of("/_lota/chunk?bucket=b&key=%zz"), -EINVAL);
	CU_ASSERT_EQUAL(key_of("/_lota/chunk?bucket=b&key=k&version=%zz"), -EINVAL);
}

/* A version without its size or chunk size, or with a chunk size of 0, is refused. */
static void test_meta_needs_size_and_chunk_size(void)
{
	static const char *heads[] = {
	    "GET /x HTTP/1.1\r\nHost: h\r\nETag: \"e\"\r\nx-lota-chunk-size: 16\r\n\r\n",
	    "GET /x HTTP/1.1\r\nHost: h\r\nETag: \"e\"\r\nx-lota-size: 16\r\n\r\n",
	    "GET /x HTTP/1.1\r\nHost: h\r\nETag: \"e\"\r\nx-lota-size: 16\r\n"
	    "x-lota-chunk-size: 0\r\n\r\n",
	    "GET /x HTTP/1.1\r\nHost: h\r\nETag: \"e\"\r\nx-lota-size: 1x\r\n"
	    "x-lota-chunk-size: 16\r\n\r\n",
	};
	struct cache_key k = {"b", "k", ""};
	struct objmeta om;

	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(http_parse_request(heads[i], strlen(heads[i]), &msg), 0);
		CU_ASSERT_EQUAL(chunkwire_meta(&msg, &k, &om), -EINVAL);
		objmeta_free(&om);
	}
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"round trip: signed, names and version exact", test_round_trip_is_signed_and_exact},
	    {"no version, no span", test_no_version_and_no_span},
	    {"kept alive or closed", test_keep_alive_or_close},
	    {"malformed spans", test_malformed_spans},
	    {"malformed keys", test_malformed_keys},
	    {"a version needs its size and chunk size", test_meta_needs_size_and_chunk_size},
	};

	return UNIT_RUN("chunkwire", setup, teardown, tests);
}

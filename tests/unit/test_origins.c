/* origins: region-origins and bucket-origins parsing, and the table of learned bucket
 * locations (lookups, learning and its waiters, redirects, the bound); lotad's own
 * requests signed for their origin's region. */
#include "unit.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cache.h"
#include "cachepath/svccreds.h"
#include "config.h"
#include "exchange/origin.h"
#include "exchange/origins.h"

#define A "http://127.0.0.1:7480"
#define B "http://127.0.0.2:7481"
#define C "http://127.0.0.3:7482"

static struct origin def;
static char err[512];

static int make(const char *regions, const char *pins, struct origins **t)
{
	err[0] = '\0';
	return origins_new(&def, regions, pins, NULL, t, err, sizeof(err));
}

static int setup(void)
{
	return origin_init(&def, A, NULL, err, sizeof(err));
}

static int teardown(void)
{
	origin_free(&def);
	return 0;
}

static void test_config_keys(void)
{
	struct config c;

	config_defaults(&c);
	CU_ASSERT_STRING_EQUAL(c.region_origins, "");
	CU_ASSERT_STRING_EQUAL(c.bucket_origins, "");
	CU_ASSERT_EQUAL(
	    config_set(&c, "region-origins", "eu-1=" A ",us-east-1=" B, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.region_origins, "eu-1=" A ",us-east-1=" B);
	CU_ASSERT_EQUAL(config_set(&c, "bucket-origins", "logs=" C, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.bucket_origins, "logs=" C);
	CU_ASSERT_STRING_EQUAL(c.origin_timeouts, "");
	CU_ASSERT_EQUAL(config_set(&c, "origin-timeouts", "eu-1=1s/5s", err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.origin_timeouts, "eu-1=1s/5s");
}

static void test_parse(void)
{
	struct origins *t;

	CU_ASSERT_EQUAL(make("eu-1=" A ", us-east-1 = " B, "logs=" C ",pics=" B, &t), 0);
	CU_ASSERT_EQUAL(origins_count(t), 3); /* A is the default's: shared, not made twice */
	CU_ASSERT_PTR_EQUAL(origins_at(t, 0), &def);
	CU_ASSERT_PTR_EQUAL(origins_of_region(t, "eu-1"), &def);
	CU_ASSERT_STRING_EQUAL(def.region, "eu-1");
	CU_ASSERT_STRING_EQUAL(origins_of_region(t, "us-east-1")->label, "127.0.0.2:7481");
	CU_ASSERT_STRING_EQUAL(origins_of_region(t, "us-east-1")->region, "us-east-1");
	CU_ASSERT_PTR_NULL(origins_of_region(t, "ap-1"));
	CU_ASSERT_TRUE(origins_is_learning(t));
	/* Pins win over everything and need no learning. */
	CU_ASSERT_STRING_EQUAL(origins_lookup(t, "logs")->label, "127.0.0.3:7482");
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "pics"), origins_of_region(t, "us-east-1"));
	CU_ASSERT_FALSE(origins_needs_learning(t, "logs", 0));
	CU_ASSERT_EQUAL(origins_claim(t, "logs", 0, NULL), ORIGINS_KNOWN);
	/* Anything else: the default until learned. */
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "other"), &def);
	CU_ASSERT_TRUE(origins_needs_learning(t, "other", 0));
	origins_free(t);

	CU_ASSERT_EQUAL(make("", "logs=" B, &t), 0);
	CU_ASSERT_FALSE(origins_is_learning(t));
	CU_ASSERT_FALSE(origins_needs_learning(t, "x", 0));
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "x"), &def);
	origins_free(t);
}

static void test_parse_errors(void)
{
	struct origins *t = NULL;

	CU_ASSERT_EQUAL(make("eu-1", "", &t), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "region-origins: 'eu-1' is not NAME=URL"));
	CU_ASSERT_EQUAL(make("=" B, "", &t), -EINVAL);
	CU_ASSERT_EQUAL(make("eu 1=" B, "", &t), -EINVAL);
	CU_ASSERT_EQUAL(make("eu-1=", "", &t), -EINVAL);
	CU_ASSERT_EQUAL(make("eu-1=ftp://x", "", &t), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "region-origins: eu-1: origin: 'ftp://x'"));
	CU_ASSERT_EQUAL(make("eu-1=" B ",eu-1=" C, "", &t), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "named twice"));
	CU_ASSERT_EQUAL(make("", "b=" B ",b=" C, &t), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "bucket-origins: bucket 'b' is named twice"));
	CU_ASSERT_EQUAL(make("", "b/c=" B, &t), -EINVAL);
	CU_ASSERT_PTR_NULL(t);
}

static void test_timeouts(void)
{
	struct origins *t;
	struct origin *b, *c;

	def.connect_ms = def.read_ms = 30000; /* origin-timeout's, as main.c sets them */
	CU_ASSERT_EQUAL_FATAL(make("eu-1=" A ",us-east-1=" B ",ap-1=" C, "", &t), 0);
	b = origins_of_region(t, "us-east-1");
	c = origins_of_region(t, "ap-1");
	CU_ASSERT_EQUAL(b->connect_ms, 30000); /* the default's until named */
	CU_ASSERT_EQUAL(b->read_ms, 30000);
	CU_ASSERT_EQUAL(origins_set_timeouts(t, "us-east-1=500ms/2s, default = 3/10", err,
					     sizeof(err)),
			0);
	CU_ASSERT_EQUAL(b->connect_ms, 500);
	CU_ASSERT_EQUAL(b->read_ms, 2000);
	CU_ASSERT_EQUAL(def.connect_ms, 3000);
	CU_ASSERT_EQUAL(def.read_ms, 10000);
	CU_ASSERT_EQUAL(c->connect_ms, 30000); /* not named: as it was */
	CU_ASSERT_EQUAL(origins_set_timeouts(t, "ap-1=1ms/86400s", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c->connect_ms, 1);
	CU_ASSERT_EQUAL(c->read_ms, 86400000);
	CU_ASSERT_EQUAL(origins_set_timeouts(t, "", err, sizeof(err)), 0);
	origins_free(t);
	def.connect_ms = def.read_ms = 30000;
}

static void test_timeout_errors(void)
{
	static const char *const bad[] = {
	    "us-east-1=2s",	    "us-east-1=/2s",	    "us-east-1=2s/",	"us-east-1=0/2s",
	    "us-east-1=2m/3m",	    "us-east-1=2s/1s",	    "us-east-1=1/86401", "us-east-1=-1/2",
	    "us-east-1=1.5s/2s",    "us-east-1=1 s/2s",	    "=1s/2s",		"us-east-1",
	    "us-east-1=99999999999999999999/1",
	};
	struct origins *t;

	CU_ASSERT_EQUAL_FATAL(make("eu-1=" A ",us-east-1=" B, "", &t), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(origins_set_timeouts(t, bad[i], err, sizeof(err)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "origin-timeouts: "));
	}
	CU_ASSERT_EQUAL(origins_set_timeouts(t, "ap-9=1s/2s", err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "'ap-9' is neither default nor a region"));
	/* eu-1's origin is the default's: naming both is naming one twice */
	CU_ASSERT_EQUAL(origins_set_timeouts(t, "eu-1=1s/2s,default=1s/3s", err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "named twice"));
	CU_ASSERT_EQUAL(origins_of_region(t, "us-east-1")->read_ms, 30000);
	origins_free(t);
	def.connect_ms = def.read_ms = 30000;
}

static void test_learning(void)
{
	struct origins *t;
	struct origin *b;

	CU_ASSERT_EQUAL_FATAL(make("eu-1=" A ",us-east-1=" B, "", &t), 0);
	b = origins_of_region(t, "us-east-1");
	CU_ASSERT_EQUAL(origins_claim(t, "bkt", 100, NULL), ORIGINS_LEARN);
	/* A second request while the first asks: no waiter to wake, so it asks too. */
	CU_ASSERT_EQUAL(origins_claim(t, "bkt", 100, NULL), ORIGINS_LEARN);
	CU_ASSERT_EQUAL(origins_known(t), 0);
	CU_ASSERT_PTR_EQUAL(origins_learned(t, "bkt", "us-east-1", 100), b);
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "bkt"), b);
	CU_ASSERT_EQUAL(origins_claim(t, "bkt", 101, NULL), ORIGINS_KNOWN);
	CU_ASSERT_EQUAL(origins_known(t), 1);
	/* Stale after the TTL: asked again, still sent where it was meanwhile. */
	CU_ASSERT_TRUE(origins_needs_learning(t, "bkt", 100 + ORIGINS_TTL_S));
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "bkt"), b);
	/* "" is us-east-1; an unknown region, or none, is the default for a short while. */
	CU_ASSERT_PTR_EQUAL(origins_learned(t, "e", "", 100), b);
	CU_ASSERT_PTR_EQUAL(origins_learned(t, "f", "mars-1", 100), &def);
	CU_ASSERT_FALSE(origins_needs_learning(t, "f", 100 + ORIGINS_UNKNOWN_TTL_S - 1));
	CU_ASSERT_TRUE(origins_needs_learning(t, "f", 100 + ORIGINS_UNKNOWN_TTL_S));
	CU_ASSERT_PTR_EQUAL(origins_learned(t, "g", NULL, 100), &def);
	origins_free(t);
}

static int woken;

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	woken++;
}

static void test_waiters(void)
{
	struct event_base *base = event_base_new();
	struct event *e1 = event_new(base, -1, 0, wake_cb, NULL);
	struct event *e2 = event_new(base, -1, 0, wake_cb, NULL);
	struct origins *t;

	CU_ASSERT_EQUAL_FATAL(make("eu-1=" A ",us-east-1=" B, "", &t), 0);
	CU_ASSERT_EQUAL(origins_claim(t, "bkt", 0, NULL), ORIGINS_LEARN);
	CU_ASSERT_EQUAL(origins_claim(t, "bkt", 0, e1), ORIGINS_WAIT);
	CU_ASSERT_EQUAL(origins_claim(t, "bkt", 0, e2), ORIGINS_WAIT);
	origins_unwait(t, "bkt", e2); /* that request ended */
	origins_learned(t, "bkt", "eu-1", 0);
	woken = 0;
	event_base_loop(base, EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(woken, 1);
	/* The learner goes away: the waiters are woken to claim again, one of them asks. */
	CU_ASSERT_EQUAL(origins_claim(t, "new", 0, NULL), ORIGINS_LEARN);
	CU_ASSERT_EQUAL(origins_claim(t, "new", 0, e1), ORIGINS_WAIT);
	origins_abandon(t, "new");
	woken = 0;
	event_base_loop(base, EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(woken, 1);
	CU_ASSERT_EQUAL(origins_claim(t, "new", 0, e1), ORIGINS_LEARN);
	origins_free(t);
	event_free(e1);
	event_free(e2);
	event_base_free(base);
}

static void test_moved(void)
{
	struct origins *t;
	struct origin *b;

	CU_ASSERT_EQUAL_FATAL(make("eu-1=" A ",us-east-1=" B, "pinned=" C, &t), 0);
	b = origins_of_region(t, "us-east-1");
	origins_learned(t, "bkt", "eu-1", 0);
	/* A redirect that names the region: sent there at once. */
	origins_moved(t, "bkt", "us-east-1", 1);
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "bkt"), b);
	CU_ASSERT_FALSE(origins_needs_learning(t, "bkt", 2));
	/* One that does not: learned again. */
	origins_moved(t, "bkt", "", 3);
	CU_ASSERT_TRUE(origins_needs_learning(t, "bkt", 3));
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "bkt"), &def);
	origins_moved(t, "pinned", "us-east-1", 3); /* the operator's word stands */
	CU_ASSERT_STRING_EQUAL(origins_lookup(t, "pinned")->label, "127.0.0.3:7482");
	origins_free(t);
}

static void test_bounded(void)
{
	struct origins *t;
	struct origin *b;
	char name[32];

	CU_ASSERT_EQUAL_FATAL(make("eu-1=" A ",us-east-1=" B, "", &t), 0);
	b = origins_of_region(t, "us-east-1");
	for (int i = 0; i < ORIGINS_BUCKETS_MAX + 10; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		origins_learned(t, name, "us-east-1", 0);
	}
	CU_ASSERT_EQUAL(origins_known(t), ORIGINS_BUCKETS_MAX);
	/* The oldest went first; the newest are there. */
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "b0"), &def);
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "b9"), &def);
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "b10"), b);
	snprintf(name, sizeof(name), "b%d", ORIGINS_BUCKETS_MAX + 9);
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, name), b);
	/* A bucket being learned is never the one reused. */
	CU_ASSERT_EQUAL(origins_claim(t, "learning", 0, NULL), ORIGINS_LEARN);
	for (int i = 0; i < ORIGINS_BUCKETS_MAX; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		origins_learned(t, name, "us-east-1", 0);
	}
	CU_ASSERT_PTR_EQUAL(origins_learned(t, "learning", "us-east-1", 0), b);
	CU_ASSERT_PTR_EQUAL(origins_lookup(t, "learning"), b);
	origins_free(t);
}

/* The head lotad sends for its own request to o, as text. */
static void own_head(struct svccreds *sc, const struct origin *o, char *out, size_t cap)
{
	struct cache_key k = {"bkt", "a/b", NULL};
	struct evbuffer *b = evbuffer_new();
	size_t n;

	CU_ASSERT_EQUAL(svccreds_request(sc, "GET", o, &k, NULL, 0, b), 0);
	n = evbuffer_remove(b, out, cap - 1);
	out[n > 0 ? n : 0] = '\0';
	evbuffer_free(b);
}

static void test_own_requests_sign_for_the_region(void)
{
	char path[] = "/tmp/lota-test-svc-XXXXXX", head[4096];
	int fd = mkstemp(path);
	struct svccreds *sc = NULL;
	struct origins *t;
	struct evbuffer *b = evbuffer_new();
	size_t n;

	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "[default]\naws_access_key_id = AKIDTEST\naws_secret_access_key = s3cr3t\n");
	close(fd);
	CU_ASSERT_EQUAL_FATAL(svccreds_new(path, "us-east-1", &sc, err, sizeof(err)), 0);
	unlink(path);
	CU_ASSERT_EQUAL_FATAL(make("eu-1=" A ",ap-9=" B, "", &t), 0);
	own_head(sc, origins_of_region(t, "ap-9"), head, sizeof(head));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "GET /bkt/a/b HTTP/1.1\r\nHost: 127.0.0.2:7481\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "Credential=AKIDTEST/"));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "/ap-9/s3/aws4_request"));
	/* An origin of no region: the configured signing region, as before. */
	origins_free(t);
	CU_ASSERT_EQUAL_FATAL(make("", "pinned=" C, &t), 0);
	own_head(sc, origins_lookup(t, "pinned"), head, sizeof(head));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "Host: 127.0.0.3:7482\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "/us-east-1/s3/aws4_request"));
	/* GetBucketLocation, on the bucket itself. */
	CU_ASSERT_EQUAL(
	    svccreds_bucket_request(sc, "GET", origins_lookup(t, "pinned"), "bkt", "location", b),
	    0);
	n = evbuffer_remove(b, head, sizeof(head) - 1);
	head[n > 0 ? n : 0] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "GET /bkt?location HTTP/1.1\r\n"));
	evbuffer_free(b);
	origins_free(t);
	svccreds_free(sc);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"config keys", test_config_keys},
	    {"parse region-origins and bucket-origins", test_parse},
	    {"parse errors", test_parse_errors},
	    {"origin-timeouts: each origin's connect and read timeouts", test_timeouts},
	    {"origin-timeouts errors", test_timeout_errors},
	    {"learning, TTLs, us-east-1", test_learning},
	    {"waiters woken once known or abandoned", test_waiters},
	    {"redirects", test_moved},
	    {"the table is bounded", test_bounded},
	    {"lotad's own requests sign for their origin's region",
	     test_own_requests_sign_for_the_region},
	};

	return UNIT_RUN("origins", setup, teardown, tests);
}

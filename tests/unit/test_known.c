/* known: versions learnt for keys, got back as deep copies, replaced by newer ones, and
 * forgotten on drop; a key's version is never handed out for another key. */
#include "unit.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "cachepath/known.h"
#include "cachepath/objmeta.h"

static struct known *kn;

static int setup(void)
{
	return known_new(&kn) < 0;
}

static int cleanup(void)
{
	known_free(kn);
	return 0;
}

static struct cache_meta meta(const char *bucket, const char *key, const char *version,
			      const char *etag, uint64_t size)
{
	return (struct cache_meta){.id = {bucket, key, version}, .etag = etag, .size = size,
				   .chunk_size = 16 << 20, .last_modified = "Tue, 01 Dec 2026 00:00:00 GMT",
				   .content_type = "application/octet-stream", .extra = "x-amz-meta-a: 1\r\n",
				   .extra_len = 17};
}

static void test_put_get_drop(void)
{
	struct cache_meta m = meta("bkt", "a/key", "", "\"e1\"", 1000);
	struct cache_key k = {"bkt", "a/key", NULL}, other = {"bkt", "a/kex", NULL};
	struct objmeta om;

	CU_ASSERT_EQUAL(known_get(kn, &k, &om), -ENOENT);
	objmeta_free(&om);
	known_put(kn, &m);
	CU_ASSERT_EQUAL_FATAL(known_get(kn, &k, &om), 0);
	CU_ASSERT_STRING_EQUAL(om.meta.etag, "\"e1\"");
	CU_ASSERT_EQUAL(om.meta.size, 1000);
	CU_ASSERT_STRING_EQUAL(om.meta.id.key, "a/key");
	CU_ASSERT_EQUAL(om.meta.extra_len, 17);
	CU_ASSERT_EQUAL(memcmp(om.meta.extra, "x-amz-meta-a: 1\r\n", 17), 0);
	CU_ASSERT_PTR_NOT_EQUAL(om.meta.etag, m.etag); /* a copy, not the caller's strings */
	objmeta_free(&om);
	CU_ASSERT_EQUAL(known_get(kn, &other, &om), -ENOENT);
	objmeta_free(&om);
	known_drop(kn, &k);
	CU_ASSERT_EQUAL(known_get(kn, &k, &om), -ENOENT);
	objmeta_free(&om);
}

static void test_newer_replaces_and_versions_differ(void)
{
	struct cache_meta m1 = meta("bkt", "k", "", "\"old\"", 10), m2 = meta("bkt", "k", "", "\"new\"", 20);
	struct cache_meta v = meta("bkt", "k", "v1", "\"ver\"", 30);
	struct cache_key k = {"bkt", "k", ""}, kv = {"bkt", "k", "v1"};
	struct objmeta om;

	known_put(kn, &m1);
	known_put(kn, &m2);
	known_put(kn, &v);
	CU_ASSERT_EQUAL_FATAL(known_get(kn, &k, &om), 0);
	CU_ASSERT_STRING_EQUAL(om.meta.etag, "\"new\"");
	objmeta_free(&om);
	CU_ASSERT_EQUAL_FATAL(known_get(kn, &kv, &om), 0);
	CU_ASSERT_STRING_EQUAL(om.meta.etag, "\"ver\"");
	CU_ASSERT_EQUAL(om.meta.size, 30);
	objmeta_free(&om);
}

static void test_many_keys_stay_bounded_and_right(void)
{
	char key[32];
	int found = 0;

	for (int i = 0; i < 3 * KNOWN_SLOTS; i++) {
		struct cache_meta m = meta("b", key, "", key, (uint64_t)i);

		snprintf(key, sizeof(key), "k%d", i);
		m.id.key = key;
		m.etag = key;
		known_put(kn, &m);
	}
	for (int i = 0; i < 3 * KNOWN_SLOTS; i++) {
		struct cache_key k = {"b", key, ""};
		struct objmeta om;

		snprintf(key, sizeof(key), "k%d", i);
		if (known_get(kn, &k, &om) == 0) {
			found++;
			CU_ASSERT_STRING_EQUAL(om.meta.etag, key); /* never another key's */
			CU_ASSERT_EQUAL(om.meta.size, (uint64_t)i);
		}
		objmeta_free(&om);
	}
	CU_ASSERT(found > 0 && found <= KNOWN_SLOTS);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{"put, get a copy, drop", test_put_get_drop},
		{"a newer version replaces; versionIds are keys of their own", test_newer_replaces_and_versions_differ},
		{"bounded, and never another key's version", test_many_keys_stay_bounded_and_right},
	};

	return UNIT_RUN("known", setup, cleanup, tests);
}

/* Unit tests for user/range.c: Range as S3 reads it, Content-Range both ways. */
#include "unit.h"
#include <string.h>

#include "range.h"

#define MiB (1024 * 1024ULL)

static enum range_result rp(const char *v, uint64_t size, struct range *r)
{
	return range_parse(v, strlen(v), size, r);
}

static void expect_partial(const char *v, uint64_t size, uint64_t first, uint64_t last)
{
	struct range r;
	enum range_result res = rp(v, size, &r);

	if (res != RANGE_PARTIAL || r.first != first || r.last != last)
		fprintf(stderr, "\n'%s' size %llu: %d %llu-%llu\n", v, (unsigned long long)size,
			res, (unsigned long long)r.first, (unsigned long long)r.last);
	CU_ASSERT_EQUAL(res, RANGE_PARTIAL);
	CU_ASSERT_EQUAL(r.first, first);
	CU_ASSERT_EQUAL(r.last, last);
}

static void expect(const char *v, uint64_t size, enum range_result want)
{
	struct range r;
	enum range_result res = rp(v, size, &r);

	if (res != want)
		fprintf(stderr, "\n'%s' size %llu: %d, want %d\n", v, (unsigned long long)size, res,
			want);
	CU_ASSERT_EQUAL(res, want);
}

static void test_single_ranges(void)
{
	expect_partial("bytes=0-9", 100, 0, 9);
	expect_partial("bytes=0-0", 100, 0, 0);
	expect_partial("bytes=99-99", 100, 99, 99);
	expect_partial("bytes=10-", 100, 10, 99);
	expect_partial("bytes=0-", 100, 0, 99);
	expect_partial("bytes=-10", 100, 90, 99);
	expect_partial("bytes=-100", 100, 0, 99);
	expect_partial("bytes=-1000", 100, 0, 99);    /* suffix longer than the object */
	expect_partial("bytes=50-1000", 100, 50, 99); /* last clamped */
	expect_partial("Bytes=1-2", 100, 1, 2);	      /* the unit is case-insensitive */
	expect_partial("  bytes=1-2\t", 100, 1, 2);   /* OWS around the field value */
	expect_partial("bytes=0007-0009", 100, 7, 9); /* leading zeros are digits */
	expect_partial("bytes=0-4194303", 256 * MiB, 0, 4 * MiB - 1);
	CU_ASSERT_EQUAL(range_parse("bytes=0-9XYZ", 9, 100, &(struct range){0}), RANGE_PARTIAL);
}

static void test_unsatisfiable(void)
{
	expect("bytes=100-", 100, RANGE_UNSATISFIABLE);
	expect("bytes=100-200", 100, RANGE_UNSATISFIABLE);
	expect("bytes=-0", 100, RANGE_UNSATISFIABLE);
	expect("bytes=0-0", 0, RANGE_UNSATISFIABLE);
	expect("bytes=-5", 0, RANGE_UNSATISFIABLE);
	expect("bytes=0-", 0, RANGE_UNSATISFIABLE);
}

static void test_ignored(void)
{
	struct range r = {7, 7};

	expect("", 100, RANGE_WHOLE);
	expect("bytes", 100, RANGE_WHOLE);
	expect("bytes=", 100, RANGE_WHOLE);
	expect("bytes=-", 100, RANGE_WHOLE);
	expect("bytes=5", 100, RANGE_WHOLE);
	expect("bytes=9-5", 100, RANGE_WHOLE); /* last < first: invalid, not unsatisfiable */
	expect("bytes=a-b", 100, RANGE_WHOLE);
	expect("bytes=1-2-3", 100, RANGE_WHOLE);
	expect("bytes=+1-2", 100, RANGE_WHOLE);
	expect("bytes=--1", 100, RANGE_WHOLE);
	expect("bytes = 1-2", 100, RANGE_WHOLE);
	expect("bytes= 1-2", 100, RANGE_WHOLE);
	expect("bytes=1 -2", 100, RANGE_WHOLE);
	expect("bytes=1- 2", 100, RANGE_WHOLE);
	expect("items=0-9", 100, RANGE_WHOLE);
	expect("bytes:0-9", 100, RANGE_WHOLE);
	/* S3 serves the whole object for several ranges */
	expect("bytes=0-1,5-6", 100, RANGE_WHOLE);
	expect("bytes=0-1, 5-6", 100, RANGE_WHOLE);
	expect("bytes=0-1,", 100, RANGE_WHOLE);
	CU_ASSERT_EQUAL(range_parse(NULL, 0, 100, &r), RANGE_WHOLE);
	CU_ASSERT_EQUAL(r.first, 0);
	CU_ASSERT_EQUAL(range_parse("bytes=0-9", 7, 100, &r), RANGE_WHOLE);   /* "bytes=0" */
	CU_ASSERT_EQUAL(range_parse("bytes=0-9", 8, 100, &r), RANGE_PARTIAL); /* "bytes=0-" */
	CU_ASSERT_EQUAL(r.last, 99);
}

static void test_overflow(void)
{
	/* UINT64_MAX is 18446744073709551615 (20 digits) */
	expect_partial("bytes=0-18446744073709551615", 100, 0, 99);
	expect_partial("bytes=0-18446744073709551616", 100, 0, 99);
	expect_partial("bytes=0-999999999999999999999999999999", 100, 0, 99);
	expect_partial("bytes=-99999999999999999999999", 100, 0, 99);
	expect("bytes=18446744073709551615-", 100, RANGE_UNSATISFIABLE);
	expect("bytes=99999999999999999999999-", UINT64_MAX, RANGE_UNSATISFIABLE);
	expect("bytes=99999999999999999999999-99999999999999999999999", 100, RANGE_UNSATISFIABLE);
	expect_partial("bytes=18446744073709551614-", UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 1);
	expect_partial("bytes=-1", UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 1);
	expect_partial("bytes=-18446744073709551615", UINT64_MAX, 0, UINT64_MAX - 1);
}

static void test_format(void)
{
	char buf[RANGE_CONTENT_RANGE_MAX];
	struct range r = {0, 9};

	CU_ASSERT_EQUAL(range_format(&r, 100, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "bytes 0-9/100");
	r = (struct range){UINT64_MAX - 2, UINT64_MAX - 1};
	CU_ASSERT_EQUAL(range_format(&r, UINT64_MAX, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(
	    buf, "bytes 18446744073709551613-18446744073709551614/18446744073709551615");
	CU_ASSERT_EQUAL(range_format(&r, UINT64_MAX - 1, buf, sizeof(buf)), -EINVAL);
	r = (struct range){5, 4};
	CU_ASSERT_EQUAL(range_format(&r, 100, buf, sizeof(buf)), -EINVAL);
	r = (struct range){0, 9};
	CU_ASSERT_EQUAL(range_format(&r, 100, buf, 13), -ENOSPC);
	CU_ASSERT_EQUAL(range_format_unsatisfied(100, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "bytes */100");
	CU_ASSERT_EQUAL(range_format_unsatisfied(100, buf, 11), -ENOSPC);
}

static int cr(const char *v, struct content_range *c)
{
	return range_parse_content_range(v, strlen(v), c);
}

static void test_content_range(void)
{
	struct content_range c;

	CU_ASSERT_EQUAL(cr("bytes 0-9/268435456", &c), 0);
	CU_ASSERT_TRUE(c.has_range && c.size_known);
	CU_ASSERT_EQUAL(c.first, 0);
	CU_ASSERT_EQUAL(c.last, 9);
	CU_ASSERT_EQUAL(c.size, 268435456);
	CU_ASSERT_EQUAL(cr("bytes 0-0/1", &c), 0);
	CU_ASSERT_EQUAL(cr("bytes 5-9/*", &c), 0);
	CU_ASSERT_TRUE(c.has_range && !c.size_known);
	CU_ASSERT_EQUAL(cr("bytes */100", &c), 0);
	CU_ASSERT_TRUE(!c.has_range && c.size_known && c.size == 100);
	CU_ASSERT_EQUAL(
	    cr("bytes 18446744073709551613-18446744073709551614/18446744073709551615", &c), 0);
	CU_ASSERT_EQUAL(c.size, UINT64_MAX);

	static const char *const bad[] = {
	    "",
	    "bytes",
	    "bytes ",
	    "bytes 0-9",
	    "bytes 0-9/",
	    "bytes 9-0/100",
	    "bytes 0-100/100",
	    "bytes 0-9/100 ",
	    "bytes  0-9/100",
	    "bytes=0-9/100",
	    "items 0-9/100",
	    "bytes -9/100",
	    "bytes 0-/100",
	    "bytes */*",
	    "bytes * /100",
	    "bytes 0-9/18446744073709551616",
	    "bytes 0-9/1x",
	    "bytes 0-9/*x",
	    "bytes */",
	    "bytes 0-9/-1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = cr(bad[i], &c);

		if (rc != -EINVAL)
			fprintf(stderr, "\naccepted '%s'\n", bad[i]);
		CU_ASSERT_EQUAL(rc, -EINVAL);
		CU_ASSERT_FALSE(c.has_range || c.size_known);
	}
}

static void test_round_trip(void)
{
	static const char *const specs[] = {"bytes=0-0", "bytes=3-", "bytes=-7", "bytes=5-50"};
	char buf[RANGE_CONTENT_RANGE_MAX];
	struct content_range c;
	struct range r;

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(rp(specs[i], 20, &r), RANGE_PARTIAL);
		CU_ASSERT_EQUAL_FATAL(range_format(&r, 20, buf, sizeof(buf)), 0);
		CU_ASSERT_EQUAL_FATAL(cr(buf, &c), 0);
		CU_ASSERT_TRUE(c.first == r.first && c.last == r.last && c.size == 20);
	}
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"single ranges", test_single_ranges},
	    {"unsatisfiable", test_unsatisfiable},
	    {"ignored", test_ignored},
	    {"overflow", test_overflow},
	    {"format", test_format},
	    {"Content-Range", test_content_range},
	    {"round trip", test_round_trip},
	};

	return UNIT_RUN("range", NULL, NULL, tests);
}

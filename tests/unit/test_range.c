/* Unit tests for user/range.c: Range as radosgw reads it, which forms lotad serves itself,
 * and Content-Range both ways. */
#include "unit.h"
#include <string.h>

#include "range.h"

#define MiB (1024 * 1024ULL)

#define S (5 * MiB + 3) /* the object of the measured table */
#define P RANGE_PARTIAL
#define W RANGE_WHOLE
#define U RANGE_UNSATISFIABLE

struct row {
	const char *value; /* as lotad's HTTP parser hands it: white space around it stripped */
	enum range_result want;
	uint64_t first, last; /* for P */
	bool is_local;	      /* range_is_served_locally() */
};

/* What radosgw 16.2.15 answered to each value on an object of S bytes (206: the
 * Content-Range it sent; W: 200 with the whole object; U: 416), the rows of
 * tests/e2e/test_ranges.py, which checks the origin still answers so. */
static const struct row origin_table[] = {
    {"bytes=0-0", P, 0, 0, true},
    {"bytes=0-1", P, 0, 1, true},
    {"bytes=1-1", P, 1, 1, true},
    {"bytes=5242882-5242882", P, 5242882, 5242882, true},
    {"bytes=0-999", P, 0, 999, true},
    {"bytes=0-5242881", P, 0, 5242881, true},
    {"bytes=0-5242882", P, 0, 5242882, true},
    {"bytes=0-5242883", P, 0, 5242882, true},
    {"bytes=5-5242983", P, 5, 5242882, true},
    {"bytes=5242883-5242883", U, 0, 0, false},
    {"bytes=5242883-5242893", U, 0, 0, false},
    {"bytes=5242884-5242888", U, 0, 0, false},
    {"bytes=5-2", U, 0, 0, false},
    {"bytes=1-0", U, 0, 0, false},
    {"bytes=5242883-1", U, 0, 0, false},
    {"bytes=0-", P, 0, 5242882, true},
    {"bytes=10-", P, 10, 5242882, true},
    {"bytes=5242882-", P, 5242882, 5242882, true},
    {"bytes=5242883-", U, 0, 0, false},
    {"bytes=5242884-", U, 0, 0, false},
    {"bytes=-0", P, 0, 5242882, false},
    {"bytes=-1", P, 5242882, 5242882, true},
    {"bytes=-4321", P, 5238562, 5242882, true},
    {"bytes=-5242882", P, 1, 5242882, true},
    {"bytes=-5242883", P, 0, 5242882, true},
    {"bytes=-5242884", P, 0, 5242882, true},
    {"bytes=-", P, 1, 5242882, false},
    {"bytes=0-1,5-6", P, 0, 1, false},
    {"bytes=0-1,2-3,4-5,6-7", P, 0, 1, false},
    {"bytes=0-10,5-15", P, 0, 10, false},
    {"bytes=5242883-,0-1", U, 0, 0, false},
    {"bytes=0-1, 5-6", P, 0, 1, false},
    {"bytes=-5,-6", P, 5242878, 5242882, false},
    {"bytes=5-6,0-1", P, 5, 6, false},
    {"bytes= 0-1", P, 0, 1, false},
    {"bytes=0 -1", P, 0, 1, false},
    {"bytes=0- 1", P, 0, 1, false},
    {"bytes =0-1", P, 0, 1, false},
    {"bytes=0-1", P, 0, 1, true},
    {"bytes=0-1", P, 0, 1, true},
    {"bytes=\t0-1", P, 0, 1, false},
    {"bytes=0-\t1", P, 0, 1, false},
    {"bytes\t=0-1", P, 0, 1, false},
    {"Bytes =0-1", P, 0, 1, false},
    {"bytes=- 5", P, 5242878, 5242882, false},
    {"bytes= -5", P, 0, 5, false},
    {"Bytes=0-1", P, 0, 1, false},
    {"BYTES=0-1", P, 0, 1, false},
    {"byTes=0-1", P, 0, 1, false},
    {"items=0-1", W, 0, 0, false},
    {"bytesx=0-1", W, 0, 0, false},
    {"xbytes=0-1", P, 0, 1, false},
    {"b=0-1", P, 0, 1, false},
    {"=0-1", P, 0, 1, false},
    {"0-1", W, 0, 0, false},
    {"bytes:0-1", W, 0, 0, false},
    {"bytes==0-1", P, 0, 1, false},
    {"bytes=items=0-1", P, 0, 1, false},
    {"items=0-1;bytes=5-6", P, 5, 6, false},
    {"", W, 0, 0, false},
    {"bytes", W, 0, 0, false},
    {"bytes=", U, 0, 0, false},
    {"bytes=a-b", P, 0, 0, false},
    {"bytes=5", U, 0, 0, false},
    {"bytes=--1", U, 0, 0, false},
    {"bytes=0--0", P, 0, 0, false},
    {"bytes=1-1-1", P, 1, 1, false},
    {"bytes=5-6-", P, 5, 6, false},
    {"bytes=0x10-0x20", P, 0, 0, false},
    {"bytes=1e3-2e3", P, 1, 2, false},
    {"bytes=\x80"
     "-1",
     P, 0, 1, false},
    {"bytes=0007-0009", P, 7, 9, true},
    {"bytes=-0005", P, 5242878, 5242882, true},
    {"bytes=000-", P, 0, 5242882, true},
    {"bytes=+1-+2", P, 1, 2, false},
    {"bytes=+1-2", P, 1, 2, false},
    {"bytes=1-+2", P, 1, 2, false},
    {"bytes=-+5", P, 5242878, 5242882, false},
    {"bytes=0-18446744073709551615", P, 0, 5242882, false},
    {"bytes=0-18446744073709551616", P, 0, 5242882, false},
    {"bytes=0-99999999999999999999999999", P, 0, 5242882, false},
    {"bytes=18446744073709551616-", U, 0, 0, false},
    {"bytes=-18446744073709551616", P, 0, 5242882, false},
    {"bytes=0-9223372036854775807", P, 0, 5242882, true},
    {"bytes=0-9223372036854775808", P, 0, 5242882, false},
    {"bytes=9223372036854775807-", U, 0, 0, false},
    {"bytes=-9223372036854775807", P, 0, 5242882, true},
    {"bytes=-9223372036854775808", P, 0, 5242882, false},
    {"bytes=0--9223372036854775809", U, 0, 0, false},
    {"bytes=,", U, 0, 0, false},
    {"bytes=,,", U, 0, 0, false},
    {"bytes=0-1,", P, 0, 1, false},
    {"bytes=,0-1", P, 0, 1, false},
    {",", W, 0, 0, false},
    {"bytes=3-", P, 3, 5242882, true},
    {"bytes=5242873-", P, 5242873, 5242882, true},
    {"bytes=-10", P, 5242873, 5242882, true},
};

static bool check_row(const struct row *r, uint64_t size)
{
	struct range out;
	size_t len = strlen(r->value);
	enum range_result res = range_parse(r->value, len, size, &out);
	bool local = range_is_served_locally(r->value, len, size);
	bool ok = res == r->want && local == r->is_local &&
		  (res != P || (out.first == r->first && out.last == r->last));

	if (!ok)
		fprintf(stderr,
			"\n'%s' size %llu: %d %llu-%llu local %d, want %d %llu-%llu local %d\n",
			r->value, (unsigned long long)size, res, (unsigned long long)out.first,
			(unsigned long long)out.last, local, r->want, (unsigned long long)r->first,
			(unsigned long long)r->last, r->is_local);
	return ok;
}

static void test_origin_table(void)
{
	for (size_t i = 0; i < sizeof(origin_table) / sizeof(origin_table[0]); i++)
		CU_ASSERT_TRUE(check_row(&origin_table[i], S));
}

/* radosgw's answers for an empty and a one-byte object (measured too). */
static void test_tiny_objects(void)
{
	static const struct row one[] = {
	    {"bytes=0-0", P, 0, 0, true}, {"bytes=0-", P, 0, 0, true},
	    {"bytes=-1", P, 0, 0, true},  {"bytes=-0", P, 0, 0, false},
	    {"bytes=1-", U, 0, 0, false}, {"items=0-1", W, 0, 0, false},
	    {"bytes=-", U, 0, 0, false},  {"bytes=0-5", P, 0, 0, true},
	};
	static const char *const empty[] = {"bytes=0-0", "bytes=0-",  "bytes=-1", "bytes=-0",
					    "bytes=1-",	 "items=0-1", "bytes=-",  "bytes=0-5",
					    "",		 "bytes",     "0-1",	  "bytes=5-2"};
	struct range out;

	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
		CU_ASSERT_TRUE(check_row(&one[i], 1));
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		size_t len = strlen(empty[i]);

		CU_ASSERT_EQUAL(range_parse(empty[i], len, 0, &out), U);
		CU_ASSERT_FALSE(range_is_served_locally(empty[i], len, 0));
	}
}

/* The forms served locally get RFC 9110's answer, whatever the size. */
static void test_local_forms(void)
{
	static const struct row rows[] = {
	    {"bytes=0-9", P, 0, 9, true},
	    {"bytes=99-99", P, 99, 99, true},
	    {"bytes=10-", P, 10, 99, true},
	    {"bytes=-10", P, 90, 99, true},
	    {"bytes=-100", P, 0, 99, true},
	    {"bytes=-1000", P, 0, 99, true},
	    {"bytes=50-1000", P, 50, 99, true},
	    {"bytes=0007-0009", P, 7, 9, true},
	    {"bytes=100-", U, 0, 0, false},
	    {"bytes=100-200", U, 0, 0, false},
	    {"bytes=9-5", U, 0, 0, false},
	    {"bytes=-0", P, 0, 99, false},
	    {"bytes=0-9223372036854775807", P, 0, 99, true},
	    {"bytes=0-9223372036854775808", P, 0, 99, false},
	    {"bytes=-9223372036854775807", P, 0, 99, true},
	    {"bytes=00000000000000000000000000001-2", P, 1, 2, true},
	};
	struct range out;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		CU_ASSERT_TRUE(check_row(&rows[i], 100));
	/* an object past 2^63 - 1 bytes is no radosgw object: nothing is served locally */
	CU_ASSERT_FALSE(range_is_served_locally("bytes=0-0", 9, (uint64_t)INT64_MAX + 1));
	CU_ASSERT_TRUE(range_is_served_locally("bytes=0-0", 9, INT64_MAX));
	CU_ASSERT_EQUAL(range_parse("bytes=-1", 8, UINT64_MAX, &out), P);
	CU_ASSERT_TRUE(out.first == UINT64_MAX - 1 && out.last == UINT64_MAX - 1);
	CU_ASSERT_FALSE(range_is_served_locally(NULL, 0, 100));
	CU_ASSERT_FALSE(range_is_served_locally("bytes=", 6, 100));
	CU_ASSERT_TRUE(range_is_served_locally("bytes=0-1", 8, 100));  /* "bytes=0-" */
	CU_ASSERT_FALSE(range_is_served_locally("bytes=0-1", 7, 100)); /* "bytes=0" */
	CU_ASSERT_TRUE(range_is_served_locally("bytes=0-9XYZ", 9, 100));
	CU_ASSERT_FALSE(range_is_served_locally("bytes=0-9\0", 10, 100));
}

/* The bytes after len are not part of the value; a NUL ends it, as in radosgw. */
static void test_lengths(void)
{
	struct range out;

	CU_ASSERT_EQUAL(range_parse(NULL, 0, 100, &out), W);
	CU_ASSERT_TRUE(out.first == 0 && out.last == 99);
	CU_ASSERT_EQUAL(range_parse("bytes=0-9XYZ", 9, 100, &out), P);
	CU_ASSERT_TRUE(out.first == 0 && out.last == 9);
	CU_ASSERT_EQUAL(range_parse("bytes=0-9", 8, 100, &out), P); /* "bytes=0-" */
	CU_ASSERT_EQUAL(out.last, 99);
	CU_ASSERT_EQUAL(range_parse("bytes=0-9", 7, 100, &out), U); /* "bytes=0": no '-' */
	CU_ASSERT_EQUAL(range_parse("bytes=0-9\0-", 11, 100, &out), P);
	CU_ASSERT_TRUE(out.first == 0 && out.last == 9);
	CU_ASSERT_EQUAL(range_parse("items\0bytes=0-9", 15, 100, &out), W);
	CU_ASSERT_EQUAL(range_parse("", 0, 100, &out), W);
}

/* White space HTTP would have stripped does not change radosgw's answer either. */
static void test_untrimmed(void)
{
	static const struct row rows[] = {
	    {" bytes=0-1", P, 0, 1, false},
	    {"bytes=0-1 ", P, 0, 1, false},
	    {"\tbytes=-5\t", P, 95, 99, false},
	    {" items=0-1", W, 0, 0, false},
	    {"\t=0-1", P, 0, 1, false},
	    /* a unit after white space is compared from the first byte: never bytes */
	    {" b=0-1", W, 0, 0, false},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		CU_ASSERT_TRUE(check_row(&rows[i], 100));
}

/* atoll's saturation and signs, at the edges of int64. */
static void test_numbers(void)
{
	static const struct row rows[] = {
	    {"bytes=0--9223372036854775808", U, 0, 0, false},
	    {"bytes=0--0", P, 0, 0, false},
	    {"bytes=-9223372036854775808", P, 0, 99, false},
	    {"bytes=-99999999999999999999999", P, 0, 99, false},
	    {"bytes=99999999999999999999999-", U, 0, 0, false},
	    {"bytes=99999999999999999999999-99999999999999999999999", U, 0, 0, false},
	    {"bytes=5-99999999999999999999999", P, 5, 99, false},
	    {"bytes=  +7-  +8", P, 7, 8, false},
	    {"bytes=+-5", P, 0, 5, false}, /* first is atoll("+"): 0 */
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		CU_ASSERT_TRUE(check_row(&rows[i], 100));
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
		CU_ASSERT_EQUAL_FATAL(range_parse(specs[i], strlen(specs[i]), 20, &r),
				      RANGE_PARTIAL);
		CU_ASSERT_EQUAL_FATAL(range_format(&r, 20, buf, sizeof(buf)), 0);
		CU_ASSERT_EQUAL_FATAL(cr(buf, &c), 0);
		CU_ASSERT_TRUE(c.first == r.first && c.last == r.last && c.size == 20);
	}
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"the origin's table", test_origin_table},
	    {"empty and one-byte objects", test_tiny_objects},
	    {"forms served locally", test_local_forms},
	    {"value lengths", test_lengths},
	    {"untrimmed values", test_untrimmed},
	    {"numbers", test_numbers},
	    {"format", test_format},
	    {"Content-Range", test_content_range},
	    {"round trip", test_round_trip},
	};

	return UNIT_RUN("range", NULL, NULL, tests);
}

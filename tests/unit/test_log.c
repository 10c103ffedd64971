/* Unit tests for user/log.c: bytes from clients (keys, targets) reach the log escaped,
 * so a key cannot forge a log line or a terminal sequence. */
#include "unit.h"
#include <string.h>

#include "log.h"

static void expect(const char *in, size_t n, const char *want)
{
	char out[256];
	size_t len = log_escape(in, n, out, sizeof(out));

	CU_ASSERT_STRING_EQUAL(out, want);
	CU_ASSERT_EQUAL(len, strlen(want));
}

static void test_escapes(void)
{
	expect("plain key/a.bin", 15, "plain key/a.bin");
	expect("a\nb", 3, "a\\nb");
	expect("x\r\n2026-12-01T00:00:00.000Z warn  lotad: forged", 47,
	       "x\\r\\n2026-12-01T00:00:00.000Z warn  lotad: forged");
	expect("tab\there", 8, "tab\\there");
	expect("back\\slash", 10, "back\\\\slash");
	expect("\x1b[31mred", 8, "\\x1b[31mred");
	expect("del\x7f", 4, "del\\x7f");
	expect("nul\0x", 5, "nul\\x00x");
}

static void test_utf8(void)
{
	expect("caf\xc3\xa9", 5, "caf\xc3\xa9");			 /* valid UTF-8 stays */
	expect("\xe9\x8d\xb5", 3, "\xe9\x8d\xb5");		 /* a CJK character */
	expect("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"); /* an emoji */
	expect("\xc2\x9b" "31m", 5, "\\xc2\\x9b31m");		 /* C1 CSI */
	expect("\xff\xfe", 2, "\\xff\\xfe");
	expect("\xc0\xaf", 2, "\\xc0\\xaf");		 /* overlong '/' */
	expect("\xed\xa0\x80", 3, "\\xed\\xa0\\x80"); /* a surrogate */
	expect("\xe9\x8d", 2, "\\xe9\\x8d");		 /* cut short */
}

static void test_truncation(void)
{
	char out[8];
	size_t n = log_escape("\n\n\n\n\n\n", 6, out, sizeof(out));

	CU_ASSERT(n < sizeof(out));
	CU_ASSERT_EQUAL(out[n], '\0');
	CU_ASSERT_EQUAL(n % 2, 0); /* never half an escape */
}

/* log_warn_every: one line per interval, the rest counted and said with the next. */
static void test_every(void)
{
	struct log_every e = {0};
	unsigned long held = 99;

	CU_ASSERT(log_every_take(&e, 1000, 500, &held));
	CU_ASSERT_EQUAL(held, 0);
	for (int i = 0; i < 60; i++)
		CU_ASSERT(!log_every_take(&e, 1000 + (uint64_t)i * 8, 500, &held));
	CU_ASSERT(!log_every_take(&e, 1499, 500, &held));
	CU_ASSERT(log_every_take(&e, 1500, 500, &held));
	CU_ASSERT_EQUAL(held, 61);
	CU_ASSERT(log_every_take(&e, 5000, 500, &held)); /* quiet since: nothing held */
	CU_ASSERT_EQUAL(held, 0);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"escapes", test_escapes},
	    {"utf-8", test_utf8},
	    {"truncation", test_truncation},
	    {"one line per interval", test_every},
	};

	return UNIT_RUN("log", NULL, NULL, tests);
}

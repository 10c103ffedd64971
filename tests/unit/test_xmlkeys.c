/* xmlkeys: the keys of a DeleteObjects body, with entities decoded. */
#include "unit.h"
#include <errno.h>
#include <string.h>

#include "xmlkeys.h"

static char got[8][1100];
static int ngot;

static void collect(void *arg, const char *key, const char *version)
{
	if (ngot < 8)
		snprintf(got[ngot++], sizeof(got[0]), "%s|%s", key, version);
}

static int scan(const char *xml)
{
	ngot = 0;
	return xmlkeys_each(xml, strlen(xml), collect, NULL);
}

static void test_keys_and_versions(void)
{
	const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			  "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			  "<Object><Key>a/b.bin</Key></Object>"
			  "<Object><Key>x &amp; y &lt;1&gt; &quot;q&quot; &apos;s&apos;</Key>"
			  "<VersionId>v1</VersionId></Object>"
			  "<Object><Key>&#65;&#x42;\xc3\xa9</Key></Object>"
			  "<Quiet>true</Quiet></Delete>";

	CU_ASSERT_EQUAL(scan(xml), 3);
	CU_ASSERT_STRING_EQUAL(got[0], "a/b.bin|");
	CU_ASSERT_STRING_EQUAL(got[1], "x & y <1> \"q\" 's'|v1");
	CU_ASSERT_STRING_EQUAL(got[2], "AB\xc3\xa9|");
}

static void test_malformed(void)
{
	CU_ASSERT_EQUAL(scan("<Delete><Object><Key>k</Key>"), -EBADMSG);
	CU_ASSERT_EQUAL(scan("<Delete><Object><Key>k</Object>"), -EBADMSG);
	CU_ASSERT_EQUAL(scan("<Delete><Object><Key></Key></Object></Delete>"), -EBADMSG);
	CU_ASSERT_EQUAL(scan("<Delete><Object><Key>a&bogus;b</Key></Object></Delete>"), -EBADMSG);
	CU_ASSERT_EQUAL(scan("<Delete><Object><Key>a&#0;b</Key></Object></Delete>"), -EBADMSG);
	CU_ASSERT_EQUAL(scan("<Delete></Delete>"), 0);
	CU_ASSERT_EQUAL(scan(""), 0);
}

static void test_key_bound(void)
{
	static char xml[3000];
	char key[1100];

	memset(key, 'k', 1025);
	key[1025] = '\0';
	snprintf(xml, sizeof(xml), "<Delete><Object><Key>%s</Key></Object></Delete>", key);
	CU_ASSERT_EQUAL(scan(xml), -EBADMSG);
	key[1024] = '\0';
	snprintf(xml, sizeof(xml), "<Delete><Object><Key>%s</Key></Object></Delete>", key);
	CU_ASSERT_EQUAL(scan(xml), 1);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"keys, versions, entities", test_keys_and_versions},
	    {"malformed bodies", test_malformed},
	    {"key length bound", test_key_bound},
	};

	return UNIT_RUN("xmlkeys", NULL, NULL, tests);
}

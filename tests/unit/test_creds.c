/* Unit tests for user/creds.c: shared-credentials parsing and change detection. */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"

static char err[CREDS_ERR_MAX];

static int parse(const char *text, const char *profile, struct creds *c)
{
	return creds_parse(text, strlen(text), profile, c, err, sizeof(err));
}

static void test_default_profile(void)
{
	struct creds c;
	const char *f = "# lota service user\n"
			"[other]\n"
			"aws_access_key_id = OTHER\n"
			"aws_secret_access_key = othersecret\n"
			"\n"
			"[default]\n"
			"aws_access_key_id=AKIAIOSFODNN7EXAMPLE\n"
			"  ; an indented comment\n"
			"aws_secret_access_key =   wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY  \n"
			"output = json\n";

	CU_ASSERT_EQUAL_FATAL(parse(f, NULL, &c), 0);
	CU_ASSERT_STRING_EQUAL(c.access_key, "AKIAIOSFODNN7EXAMPLE");
	CU_ASSERT_STRING_EQUAL(c.secret_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	CU_ASSERT_STRING_EQUAL(c.session_token, "");
	CU_ASSERT_STRING_EQUAL(c.region, "us-east-1");
	CU_ASSERT_EQUAL_FATAL(parse(f, "other", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.access_key, "OTHER");
	CU_ASSERT_STRING_EQUAL(c.secret_key, "othersecret");
}

static void test_named_profile_crlf(void)
{
	struct creds c;
	const char *f = "[default]\r\naws_access_key_id = D\r\naws_secret_access_key = d\r\n"
			"[ lota ]\r\n"
			"\taws_access_key_id\t=\tAK#1\r\n"
			"aws_secret_access_key = s;e#c+r/e=t\r\n"
			"aws_session_token = FQoGZXIvYXdzEXAMPLE//+=\r\n"
			"region = eu-west-3\r\n"
			"s3 =\r\n"
			"    addressing_style = path\r\n";

	CU_ASSERT_EQUAL_FATAL(parse(f, "lota", &c), 0);
	CU_ASSERT_STRING_EQUAL(c.access_key, "AK#1");
	CU_ASSERT_STRING_EQUAL(c.secret_key, "s;e#c+r/e=t");
	CU_ASSERT_STRING_EQUAL(c.session_token, "FQoGZXIvYXdzEXAMPLE//+=");
	CU_ASSERT_STRING_EQUAL(c.region, "eu-west-3");
}

static void expect_error(const char *text, const char *profile, int rc, const char *msg)
{
	struct creds c;
	int got = parse(text, profile, &c);

	if (got != rc || strcmp(err, msg))
		fprintf(stderr, "\ngot %d '%s', want %d '%s'\n", got, err, rc, msg);
	CU_ASSERT_EQUAL(got, rc);
	CU_ASSERT_STRING_EQUAL(err, msg);
	CU_ASSERT_STRING_EQUAL(c.access_key, "");
	CU_ASSERT_STRING_EQUAL(c.secret_key, "");
}

static void test_errors(void)
{
	const char *ok = "aws_access_key_id = A\naws_secret_access_key = S\n";
	char big[CREDS_FILE_MAX + 2];
	char longval[600];

	expect_error("", NULL, -ENOENT, "profile [default] not found");
	expect_error("[a]\n", "b", -ENOENT, "profile [b] not found");
	expect_error("aws_access_key_id = A\n", NULL, -EINVAL,
		     "line 1: key outside of any [section]");
	expect_error("[default\n", NULL, -EINVAL, "line 1: section header without ']'");
	expect_error("\n[]\n", NULL, -EINVAL, "line 2: bad section name");
	expect_error("[default]\nfoo\n", NULL, -EINVAL, "line 2: expected 'key = value'");
	expect_error("[default]\n = x\n", NULL, -EINVAL, "line 2: empty key");
	expect_error("[default]\naws_access_key_id =\n", NULL, -EINVAL, "line 2: empty value");
	expect_error("[default]\naws_access_key_id = A B\n", NULL, -EINVAL,
		     "line 2: value contains a blank or a control character");
	expect_error("[default]\naws_access_key_id = A\naws_access_key_id = B\n", NULL, -EINVAL,
		     "line 3: duplicate key aws_access_key_id");
	expect_error("[default]\naws_access_key_id = A\n  more\n", NULL, -EINVAL,
		     "line 3: continuation line not allowed here");
	expect_error("[default]\n  aws_access_key_id = A\n  aws_secret_access_key = S\n   x\n",
		     NULL, -EINVAL, "line 4: continuation line not allowed here");
	expect_error("[default]\naws_access_key_id = A\r\r\n", NULL, -EINVAL,
		     "line 2: stray CR or NUL byte");
	expect_error("[default]\naws_access_key_id = A\n", NULL, -EINVAL,
		     "profile [default] has no aws_secret_access_key");
	expect_error("[default]\naws_secret_access_key = S\n", NULL, -EINVAL,
		     "profile [default] has no aws_access_key_id");
	expect_error("[default]\naws_access_key_id = A\naws_secret_access_key = S\n[default]\n",
		     NULL, -EINVAL, "line 4: profile [default] appears twice");
	memset(longval, 'x', sizeof(longval));
	snprintf(longval, sizeof(longval), "[default]\naws_secret_access_key = %0300d\n", 0);
	expect_error(longval, NULL, -E2BIG, "line 2: value longer than 255 bytes");
	memset(big, '#', sizeof(big));
	CU_ASSERT_EQUAL(creds_parse(big, sizeof(big), NULL, &(struct creds){0}, err, sizeof(err)),
			-EFBIG);
	/* NUL inside the text, and a tiny error buffer */
	CU_ASSERT_EQUAL(
	    creds_parse("[default]\nx\0y = 1\n", 17, NULL, &(struct creds){0}, err, sizeof(err)),
	    -EINVAL);
	CU_ASSERT_EQUAL(creds_parse("[default]\n", 10, NULL, &(struct creds){0}, err, 4), -EINVAL);
	CU_ASSERT_EQUAL(strlen(err), 3);
	CU_ASSERT_EQUAL(creds_parse("[x]\n", 4, NULL, &(struct creds){0}, NULL, 0), -ENOENT);
	(void)ok;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static void test_load_and_changed(void)
{
	char dir[] = "/tmp/lota-creds-XXXXXX", path[64], tmp[64];
	struct creds_stamp st = {0}, st2 = {0};
	struct creds c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/credentials", dir);
	snprintf(tmp, sizeof(tmp), "%s/credentials.new", dir);
	CU_ASSERT_EQUAL(creds_load(path, NULL, &c, &st, err, sizeof(err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "credentials: No such file or directory"));
	CU_ASSERT_EQUAL(creds_changed(path, &st), -ENOENT);

	write_file(path, "[default]\naws_access_key_id = A1\naws_secret_access_key = S1\n");
	CU_ASSERT_EQUAL_FATAL(creds_load(path, NULL, &c, &st, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.access_key, "A1");
	CU_ASSERT_TRUE(st.valid);
	CU_ASSERT_EQUAL(creds_changed(path, &st), 0);
	CU_ASSERT_EQUAL(creds_changed(path, &st), 0);
	/* a fresh stamp always reports a change */
	CU_ASSERT_EQUAL(creds_changed(path, &st2), 1);
	CU_ASSERT_EQUAL(creds_changed(path, &st2), 0);

	/* replaced by rename (how Kubernetes updates a mounted Secret): new inode */
	write_file(tmp, "[default]\naws_access_key_id = A2\naws_secret_access_key = S2\n");
	CU_ASSERT_EQUAL_FATAL(rename(tmp, path), 0);
	CU_ASSERT_EQUAL(creds_changed(path, &st), 1);
	CU_ASSERT_EQUAL(creds_changed(path, &st), 0);
	CU_ASSERT_EQUAL_FATAL(creds_load(path, NULL, &c, NULL, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.access_key, "A2");

	/* rewritten in place with a different size */
	write_file(path, "[default]\naws_access_key_id = A33\naws_secret_access_key = S3\n");
	CU_ASSERT_EQUAL(creds_changed(path, &st), 1);

	/* a parse error names the file and the line */
	write_file(path, "[default]\naws_access_key_id = A\nbroken\n");
	CU_ASSERT_EQUAL(creds_load(path, NULL, &c, NULL, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/credentials: line 3: expected 'key = value'"));
	CU_ASSERT_EQUAL(creds_load(dir, NULL, &c, NULL, err, sizeof(err)), -EINVAL);

	creds_clear(&c);
	CU_ASSERT_STRING_EQUAL(c.secret_key, "");
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"default profile", test_default_profile},
	    {"named profile, CRLF", test_named_profile_crlf},
	    {"errors name the line", test_errors},
	    {"load and changed", test_load_and_changed},
	};

	return UNIT_RUN("creds", NULL, NULL, tests);
}

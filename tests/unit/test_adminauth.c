/* Unit tests for user/adminauth.c: token files (blanks, bounds, bytes that cannot go in a
 * header), every Authorization value that must not pass, and reload on change. */
#include "unit.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adminauth.h"

#define TOKEN "0123456789abcdef-admin"

static char dir[64], path[128], err[256];

static void write_file(const char *p, const char *text, size_t n)
{
	FILE *f = fopen(p, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fwrite(text, 1, n, f);
	fclose(f);
}

static void write_str(const char *text)
{
	write_file(path, text, strlen(text));
}

static struct adminauth *open_with(const char *token)
{
	struct adminauth *a = NULL;

	write_str(token);
	CU_ASSERT_EQUAL_FATAL(adminauth_open(path, &a, err, sizeof(err)), 0);
	return a;
}

static void test_read_trims_and_bounds(void)
{
	static char tok[ADMINAUTH_TOKEN_MAX + 1], big[ADMINAUTH_TOKEN_MAX + 2];
	size_t len;

	write_str(TOKEN " \r\n\n\t");
	CU_ASSERT_EQUAL(adminauth_read("admin-token", path, tok, &len, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(len, strlen(TOKEN));
	CU_ASSERT_STRING_EQUAL(tok, TOKEN);

	write_str("0123456789abcde\n"); /* 15 bytes */
	CU_ASSERT_EQUAL(adminauth_read("admin-token", path, tok, &len, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "15 bytes, at least 16 needed"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_EQUAL(len, 0);

	memset(big, 'x', sizeof(big) - 1);
	write_file(path, big, ADMINAUTH_TOKEN_MAX);
	CU_ASSERT_EQUAL(adminauth_read("t", path, tok, &len, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(len, ADMINAUTH_TOKEN_MAX);
	write_file(path, big, ADMINAUTH_TOKEN_MAX + 1);
	CU_ASSERT_EQUAL(adminauth_read("t", path, tok, &len, err, sizeof(err)), -E2BIG);

	/* one word of printable ASCII: a blank, a control byte or a high byte inside */
	write_str("0123456789 abcdefgh");
	CU_ASSERT_EQUAL(adminauth_read("t", path, tok, &len, err, sizeof(err)), -EINVAL);
	write_file(path, "0123456789\0abcdefgh", 19);
	CU_ASSERT_EQUAL(adminauth_read("t", path, tok, &len, err, sizeof(err)), -EINVAL);
	write_str("0123456789\xc3\xa9" "abcdefgh");
	CU_ASSERT_EQUAL(adminauth_read("t", path, tok, &len, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not printable ASCII"));

	CU_ASSERT_EQUAL(adminauth_read("--token-file", "/nonexistent/x", tok, &len, err,
				       sizeof(err)), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err, "--token-file /nonexistent/x: No such file or directory");
}

static void test_check(void)
{
	struct adminauth *a = open_with(TOKEN "\n");

	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer " TOKEN), ADMINAUTH_OK);
	CU_ASSERT_EQUAL(adminauth_check(a, "bearer \t " TOKEN " "), ADMINAUTH_OK);
	CU_ASSERT_EQUAL(adminauth_check(a, NULL), ADMINAUTH_MISSING);
	CU_ASSERT_EQUAL(adminauth_check(a, ""), ADMINAUTH_MISSING);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer"), ADMINAUTH_MISSING);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer   "), ADMINAUTH_MISSING);
	CU_ASSERT_EQUAL(adminauth_check(a, "Basic " TOKEN), ADMINAUTH_MISSING);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer" TOKEN), ADMINAUTH_MISSING);
	CU_ASSERT_EQUAL(adminauth_check(a, TOKEN), ADMINAUTH_MISSING);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer 0123456789abcdef-admi"), ADMINAUTH_WRONG);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer " TOKEN "n"), ADMINAUTH_WRONG);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer " TOKEN " " TOKEN), ADMINAUTH_WRONG);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer 0123456789ABCDEF-admin"), ADMINAUTH_WRONG);
	CU_ASSERT_STRING_EQUAL(adminauth_path(a), path);
	adminauth_free(a);
}

static void test_reload(void)
{
	struct adminauth *a = open_with(TOKEN);

	CU_ASSERT_EQUAL(adminauth_reload(a, err, sizeof(err)), 0);
	/* a new file (another inode) with a new token */
	write_str("");
	unlink(path);
	write_str("fedcba9876543210-rotated\n");
	CU_ASSERT_EQUAL(adminauth_reload(a, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer fedcba9876543210-rotated"), ADMINAUTH_OK);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer " TOKEN), ADMINAUTH_WRONG);
	CU_ASSERT_EQUAL(adminauth_reload(a, err, sizeof(err)), 0);
	/* the same token with another newline: changed file, same token */
	write_str("fedcba9876543210-rotated");
	CU_ASSERT_EQUAL(adminauth_reload(a, err, sizeof(err)), 0);
	/* unusable: the current token stays */
	write_str("short");
	CU_ASSERT_EQUAL(adminauth_reload(a, err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer fedcba9876543210-rotated"), ADMINAUTH_OK);
	unlink(path);
	CU_ASSERT_EQUAL(adminauth_reload(a, err, sizeof(err)), -ENOENT);
	CU_ASSERT_EQUAL(adminauth_check(a, "Bearer fedcba9876543210-rotated"), ADMINAUTH_OK);
	adminauth_free(a);
}

static void test_open_errors(void)
{
	struct adminauth *a = NULL;

	unlink(path);
	CU_ASSERT_EQUAL(adminauth_open(path, &a, err, sizeof(err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "admin-token "));
	write_str("short\n");
	CU_ASSERT_EQUAL(adminauth_open(path, &a, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NULL(a);
}

static int setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/lota-adminauth-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/admin-token", dir);
	return 0;
}

static int teardown(void)
{
	unlink(path);
	return rmdir(dir) < 0;
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"read trims and bounds", test_read_trims_and_bounds},
	    {"check", test_check},
	    {"reload", test_reload},
	    {"open errors", test_open_errors},
	};

	return UNIT_RUN("adminauth", setup, teardown, tests);
}

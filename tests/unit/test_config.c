/* Unit tests for user/config.c: value parsers, unknown keys, the file format, flags over
 * the file, --key=value, and the one-line messages config_load leaves in err. */
#include "unit.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static struct config c;
static char err[512];

static void test_sizes(void)
{
	uint64_t v;

	CU_ASSERT_EQUAL(config_parse_size("0", &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(config_parse_size("4096", &v), 0);
	CU_ASSERT_EQUAL(v, 4096);
	CU_ASSERT_EQUAL(config_parse_size("4k", &v), 0);
	CU_ASSERT_EQUAL(v, 4096);
	CU_ASSERT_EQUAL(config_parse_size("4M", &v), 0);
	CU_ASSERT_EQUAL(v, 4ULL << 20);
	CU_ASSERT_EQUAL(config_parse_size("4MiB", &v), 0);
	CU_ASSERT_EQUAL(v, 4ULL << 20);
	CU_ASSERT_EQUAL(config_parse_size("2GB", &v), 0);
	CU_ASSERT_EQUAL(v, 2ULL << 30);
	CU_ASSERT_EQUAL(config_parse_size("1t", &v), 0);
	CU_ASSERT_EQUAL(v, 1ULL << 40);
	CU_ASSERT_EQUAL(config_parse_size("16777215T", &v), 0);
	CU_ASSERT_EQUAL(v, 16777215ULL << 40);
	CU_ASSERT_EQUAL(config_parse_size("18446744073709551615", &v), 0);
	CU_ASSERT_EQUAL(v, UINT64_MAX);

	CU_ASSERT_EQUAL(config_parse_size("", &v), -EINVAL);
	CU_ASSERT_EQUAL(config_parse_size("-1", &v), -EINVAL);
	CU_ASSERT_EQUAL(config_parse_size(" 1", &v), -EINVAL);
	CU_ASSERT_EQUAL(config_parse_size("1 M", &v), -EINVAL);
	CU_ASSERT_EQUAL(config_parse_size("1X", &v), -EINVAL);
	CU_ASSERT_EQUAL(config_parse_size("1Mx", &v), -EINVAL);
	CU_ASSERT_EQUAL(config_parse_size("M", &v), -EINVAL);
	CU_ASSERT_EQUAL(config_parse_size("16777216T", &v), -EINVAL); /* 2^64 overflows */
	CU_ASSERT_EQUAL(config_parse_size("18446744073709551616", &v), -EINVAL);
}

static void test_set(void)
{
	config_defaults(&c);
	CU_ASSERT_STRING_EQUAL(c.listen, "127.0.0.1:8080");
	CU_ASSERT_STRING_EQUAL(c.host, "cwlota.com");
	CU_ASSERT_STRING_EQUAL(c.admin, "127.0.0.1:9090");
	CU_ASSERT_EQUAL(c.min_object_size, 4ULL << 20);
	CU_ASSERT_EQUAL(c.client_timeout, 60);
	CU_ASSERT(!c.sockmap);

	CU_ASSERT_EQUAL(config_set(&c, "sockmap", "on", err, sizeof(err)), 0);
	CU_ASSERT(c.sockmap);
	CU_ASSERT_EQUAL(config_set(&c, "sockmap", "FALSE", err, sizeof(err)), 0);
	CU_ASSERT(!c.sockmap);
	CU_ASSERT_EQUAL(config_set(&c, "pin-links", "yes", err, sizeof(err)), 0);
	CU_ASSERT(c.pin_links);
	CU_ASSERT_EQUAL(config_set(&c, "pin-links", "0", err, sizeof(err)), 0);
	CU_ASSERT(!c.pin_links);
	CU_ASSERT_EQUAL(config_set(&c, "sockmap", "maybe", err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "sockmap"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "maybe"));

	CU_ASSERT_EQUAL(config_set(&c, "capacity", "10G", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.capacity, 10ULL << 30);
	CU_ASSERT_EQUAL(config_set(&c, "workers", "3", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.workers, 3);
	CU_ASSERT_EQUAL(config_set(&c, "workers", "-3", err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "workers"));
	CU_ASSERT_EQUAL(config_set(&c, "client-timeout", "soon", err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(c.client_timeout, 60); /* a refused value leaves the old one */

	CU_ASSERT_EQUAL(c.scrub_rate, 50ULL << 20);
	CU_ASSERT_EQUAL(config_set(&c, "scrub-rate", "0", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.scrub_rate, 0); /* off */
	CU_ASSERT_EQUAL(config_set(&c, "scrub-rate", "1T", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.scrub_rate, CONFIG_SCRUB_RATE_MAX);
	CU_ASSERT_EQUAL(config_set(&c, "scrub-rate", "1099511627777", err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "scrub-rate: '1099511627777' is more than"));
	CU_ASSERT_EQUAL(c.scrub_rate, CONFIG_SCRUB_RATE_MAX); /* the old value stays */
	CU_ASSERT_EQUAL(config_set(&c, "scrub-rate", "fast", err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "scrub-rate: invalid value 'fast'"));
	CU_ASSERT_EQUAL(config_set(&c, "scrub-rate", "200M", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.scrub_rate, 200ULL << 20);

	CU_ASSERT_EQUAL(config_set(&c, "no-such-key", "1", err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown key 'no-such-key'"));
	CU_ASSERT_EQUAL(config_set(&c, "client_timeout", "1", err, sizeof(err)), -EINVAL);
	{
		char big[CONFIG_STR_MAX + 1];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		CU_ASSERT_EQUAL(config_set(&c, "origin", big, err, sizeof(err)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "origin"));
		big[sizeof(big) - 2] = '\0';
		CU_ASSERT_EQUAL(config_set(&c, "origin", big, err, sizeof(err)), 0);
	}
}

static char path[64];

static void write_file(const char *text)
{
	int fd;

	strcpy(path, "/tmp/lota-test-config-XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Like main's argv, the strings are writable (config_load splits --key=value in place). */
static char argv_store[8][256];

static int load(int argc, char **argv)
{
	char *av[9] = {NULL};

	for (int i = 0; i < argc && i < 8; i++) {
		snprintf(argv_store[i], sizeof(argv_store[i]), "%s", argv[i]);
		av[i] = argv_store[i];
	}
	err[0] = '\0';
	return config_load(&c, argc, av, err, sizeof(err));
}

static void test_file(void)
{
	char *argv[] = {"lotad", "--config", path, NULL};

	write_file("# a comment\n\n   ; another\n"
		   "listen = 127.0.0.1:18080\n"
		   "origin=http://127.0.0.1:7480\n"
		   "  host   \t cwlota.com,s3.local  \r\n"
		   "min-object-size = 1M\n"
		   "sockmap on\n");
	CU_ASSERT_EQUAL(load(3, argv), 0);
	CU_ASSERT_STRING_EQUAL(c.listen, "127.0.0.1:18080");
	CU_ASSERT_STRING_EQUAL(c.origin, "http://127.0.0.1:7480");
	CU_ASSERT_STRING_EQUAL(c.host, "cwlota.com,s3.local");
	CU_ASSERT_EQUAL(c.min_object_size, 1ULL << 20);
	CU_ASSERT(c.sockmap);
	CU_ASSERT_STRING_EQUAL(c.admin, "127.0.0.1:9090"); /* untouched keys keep defaults */
	unlink(path);

	write_file("listen = 127.0.0.1:1\n# fine\nbogus = 1\n");
	CU_ASSERT_EQUAL(load(3, argv), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ":3:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "bogus"));
	unlink(path);

	write_file("capacity = lots\n");
	CU_ASSERT_EQUAL(load(3, argv), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ":1: capacity: invalid value 'lots'"));
	unlink(path);

	CU_ASSERT_EQUAL(load(3, argv), -EINVAL); /* the file is gone now */
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file"));
}

static void test_flags(void)
{
	write_file("listen = 127.0.0.1:1\nworkers = 2\nlog-level = debug\n");
	{
		/* flags win over the file wherever --config appears */
		char *argv[] = {"lotad", "--listen", "127.0.0.1:2", "--config", path, "--workers=5",
				"--sockmap=yes", NULL};

		CU_ASSERT_EQUAL(load(7, argv), 0);
		CU_ASSERT_STRING_EQUAL(c.listen, "127.0.0.1:2");
		CU_ASSERT_EQUAL(c.workers, 5);
		CU_ASSERT(c.sockmap);
		CU_ASSERT_STRING_EQUAL(c.log_level, "debug");
		CU_ASSERT_STRING_EQUAL(argv_store[5], "--workers=5"); /* argv is left as it was */
	}
	{
		char a[64];
		char *argv[] = {"lotad", a, NULL};

		snprintf(a, sizeof(a), "--config=%s", path);
		CU_ASSERT_EQUAL(load(2, argv), 0);
		CU_ASSERT_STRING_EQUAL(c.listen, "127.0.0.1:1");
	}
	unlink(path);
	{
		char *argv[] = {"lotad", "--nope", "1", NULL};

		CU_ASSERT_EQUAL(load(3, argv), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown key 'nope'"));
	}
	{
		char *argv[] = {"lotad", "--listen", NULL};

		CU_ASSERT_EQUAL(load(2, argv), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "listen: missing value"));
	}
	{
		char *argv[] = {"lotad", "stray", NULL};

		CU_ASSERT_EQUAL(load(2, argv), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "unexpected argument 'stray'"));
	}
	{
		char *argv[] = {"lotad", "--config", NULL};

		CU_ASSERT_EQUAL(load(2, argv), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "--config needs a file name"));
	}
	{
		char *argv[] = {"lotad", "--origin-timeout=x", NULL};

		CU_ASSERT_EQUAL(load(2, argv), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "origin-timeout: invalid value 'x'"));
	}
	{
		char *argv[] = {"lotad", "--version", NULL};

		CU_ASSERT_EQUAL(load(2, argv), 1);
	}
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"sizes", test_sizes},
	    {"set: bools, sizes, unknown keys", test_set},
	    {"file", test_file},
	    {"flags", test_flags},
	};

	return UNIT_RUN("config", NULL, NULL, tests);
}

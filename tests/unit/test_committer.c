/* Unit tests of the commit thread (user/lotad/cachepath/committer.c) on a real store in a
 * fresh mkdtemp directory: commits make their directory entries durable (cache_sync) as
 * soon as the queue runs dry, a burst of commits costs one batch, commits made on other
 * threads are synced while idle, and stopping commits and syncs what is queued. */
#include "unit.h"
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cachepath/committer.h"
#include "metrics.h"

#define SMALL ((uint64_t)1 << 20)
#define BIG ((uint64_t)64 << 20)

static char dir[64];
static struct cache *cache;
static struct committer *cm;
static uint64_t batches0, dirs0;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int setup(void)
{
	struct cache_opts o = {.capacity = 1ULL << 30, .is_fdatasync_skipped = true};

	strcpy(dir, "/tmp/lota-committer-XXXXXX");
	if (!mkdtemp(dir) || cache_open(dir, &o, &cache) < 0 || committer_new(cache, &cm) < 0)
		return -1;
	batches0 = metric_get(M_cache_sync_batches);
	dirs0 = metric_get(M_cache_dir_syncs);
	return 0;
}

static int teardown(void)
{
	committer_free(cm);
	cm = NULL;
	cache_close(cache);
	cache = NULL;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t committed(void)
{
	struct cache_stats st;

	cache_stats(cache, &st);
	return st.fills_committed;
}

/* A written, uncommitted fill of object k (one chunk of size bytes). With is_deferred its
 * CRC is left for the commit to compute: a commit that takes a while. */
static struct cache_fill *written_fill(const char *k, uint64_t size, bool is_deferred)
{
	struct cache_meta m = {
	    .id = {"b", k, ""}, .size = size, .chunk_size = size, .etag = "\"e\""};
	struct cache_fill *f = NULL;
	char *buf = malloc(size);
	uint64_t off;
	int fd;

	CU_ASSERT_FATAL(buf != NULL);
	memset(buf, k[0], size);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	if (is_deferred) {
		CU_ASSERT_EQUAL(cache_fill_write_pos(f, &fd, &off), 0);
		CU_ASSERT_EQUAL(pwrite(fd, buf, size, (off_t)off), (ssize_t)size);
		CU_ASSERT_EQUAL(cache_fill_advance_nocrc(f, size), 0);
	} else {
		CU_ASSERT_EQUAL(cache_fill_write(f, buf, size), 0);
	}
	free(buf);
	return f;
}

/* Waits up to ms for at least n commits and at least nb sync batches. */
static bool wait_for(uint64_t n, uint64_t nb, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		if (committed() >= n && metric_get(M_cache_sync_batches) - batches0 >= nb)
			return true;
		usleep(2000);
	}
	return false;
}

/* The fan-out directories holding committed chunks. */
static int dirs_used(void)
{
	char p[128];
	struct stat st;
	int n = 0;

	for (int i = 0; i < 256; i++) {
		snprintf(p, sizeof(p), "%s/objects/%02x", dir, i);
		if (stat(p, &st) == 0 && st.st_nlink > 2)
			n++;
	}
	return n;
}

static void test_one_commit_synced_at_once(void)
{
	uint64_t t0;

	committer_commit(cm, written_fill("a", SMALL, false), "b/a");
	t0 = now_ms();
	CU_ASSERT_FATAL(wait_for(1, 1, 5000));
	/* when the queue ran dry, not at the idle timer */
	CU_ASSERT(now_ms() - t0 < COMMITTER_IDLE_SYNC_MS * 9 / 10);
	CU_ASSERT_EQUAL(metric_get(M_cache_sync_batches) - batches0, 1);
	CU_ASSERT_EQUAL(metric_get(M_cache_dir_syncs) - dirs0, 1);
	CU_ASSERT_EQUAL(cache_sync(cache), 0); /* nothing left due */
}

static void test_burst_is_one_batch(void)
{
	struct cache_fill *fs[21];
	uint64_t t0, ms, nb;
	char k[8];

	/* a slow commit first, so that the others queue up behind it */
	fs[0] = written_fill("big", BIG, true);
	for (int i = 1; i < 21; i++) {
		snprintf(k, sizeof(k), "s%02d", i);
		fs[i] = written_fill(k, SMALL, false);
	}
	t0 = now_ms();
	for (int i = 0; i < 21; i++)
		committer_commit(cm, fs[i], "b/k");
	CU_ASSERT_FATAL(wait_for(21, 1, 10000));
	ms = now_ms() - t0;
	usleep(50 * 1000);
	/* one batch when the queue ran dry, and one more for each COMMITTER_SYNC_MS the
	 * burst lasted, not one per commit; two more if this thread was preempted between
	 * enqueues long enough for the queue to run dry early (a busy machine) */
	nb = metric_get(M_cache_sync_batches) - batches0;
	CU_ASSERT(nb >= 1 && nb <= 3 + ms / COMMITTER_SYNC_MS);
	if (nb > 3 + ms / COMMITTER_SYNC_MS)
		fprintf(stderr, "%llu batches in %llu ms\n", (unsigned long long)nb,
			(unsigned long long)ms);
	CU_ASSERT(metric_get(M_cache_dir_syncs) - dirs0 >= (uint64_t)dirs_used());
	CU_ASSERT_EQUAL(cache_sync(cache), 0);
}

static void test_commits_elsewhere_synced_when_idle(void)
{
	CU_ASSERT_EQUAL(cache_fill_commit(written_fill("x", SMALL, false), NULL), 0);
	/* within about COMMITTER_IDLE_SYNC_MS; a shared disk's fsync may take seconds */
	CU_ASSERT(wait_for(1, 1, COMMITTER_IDLE_SYNC_MS * 10));
	CU_ASSERT_EQUAL(cache_sync(cache), 0);
}

static void test_stop_commits_and_syncs(void)
{
	for (int i = 0; i < 5; i++) {
		char k[8];

		snprintf(k, sizeof(k), "q%d", i);
		committer_commit(cm, written_fill(k, SMALL, false), "b/q");
	}
	committer_free(cm);
	cm = NULL;
	CU_ASSERT_EQUAL(committed(), 5);
	CU_ASSERT(metric_get(M_cache_sync_batches) - batches0 >= 1);
	CU_ASSERT_EQUAL(cache_sync(cache), 0);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"one commit is synced when the queue runs dry", test_one_commit_synced_at_once},
	    {"a burst of commits is one batch", test_burst_is_one_batch},
	    {"commits made on other threads are synced while idle",
	     test_commits_elsewhere_synced_when_idle},
	    {"stopping commits and syncs what is queued", test_stop_commits_and_syncs},
	};
	CU_pSuite s;
	unsigned failed;

	/* a fresh store and commit thread per test */
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		s = CU_add_suite(tests[i].name, setup, teardown);
		if (!s || !CU_add_test(s, tests[i].name, tests[i].fn))
			return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
		 CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

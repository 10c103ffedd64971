/* Unit tests of cache/ as a chunk store: chunk arithmetic, identities, one fill per chunk,
 * one version per key, invalidation, LRU per chunk, restart, verification, the scrubber,
 * the directory's health, durability batches and concurrency, on real files in a fresh
 * mkdtemp directory per test.
 */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"

#define CH ((uint64_t)64 * 1024) /* the chunk size most tests cut objects with */

static char dir[64];
static struct cache *cache;
static int log_lines;
static char last_log[512];

static void count_log(void *arg, const char *msg)
{
	(void)arg;
	__atomic_add_fetch(&log_lines, 1, __ATOMIC_RELAXED);
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int open_store(uint64_t capacity, uint64_t chunk_size)
{
	struct cache_opts o = {.capacity = capacity,
			       .chunk_size = chunk_size,
			       .log = count_log,
			       .is_fdatasync_skipped = true};

	return cache_open(dir, &o, &cache);
}

static int setup(void)
{
	strcpy(dir, "/tmp/lota-chunks-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	log_lines = 0;
	return open_store(1 << 30, 0);
}

static int teardown(void)
{
	cache_close(cache);
	cache = NULL;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void reopen(uint64_t capacity, uint64_t chunk_size)
{
	cache_close(cache);
	cache = NULL;
	CU_ASSERT_EQUAL_FATAL(open_store(capacity, chunk_size), 0);
}

/* The byte at object offset off of the version seeded seed. */
static char body_byte(unsigned seed, uint64_t off)
{
	return (char)(seed * 131 + off * 7 + (off >> 9));
}

static void body_at(char *buf, uint64_t off, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = body_byte(seed, off + i);
}

static struct cache_meta meta_of(const char *k, const char *etag, uint64_t size)
{
	struct cache_meta m = {.id = {"b", k, ""},
			       .size = size,
			       .chunk_size = CH,
			       .etag = etag,
			       .last_modified = "Wed, 01 Jan 2025 00:00:00 GMT",
			       .content_type = "application/x-test"};

	return m;
}

/* Writes the whole of chunk index of m (bytes of version seed); does not commit. */
static int write_chunk(struct cache_fill *f, const struct cache_meta *m, uint32_t index,
		       unsigned seed)
{
	uint64_t cs = m->chunk_size ? m->chunk_size : cache_chunk_size(cache);
	uint64_t len = cache_chunk_len(m->size, cs, index);
	char *buf = malloc(len + 1);
	int err;

	body_at(buf, (uint64_t)index * cs, len, seed);
	err = cache_fill_write(f, buf, len);
	free(buf);
	return err;
}

/* Fills and commits chunk index of m; the begin verdict or a negative errno. */
static int put_chunk(const struct cache_meta *m, uint32_t index, unsigned seed)
{
	struct cache_fill *f;
	int r = cache_chunk_begin(cache, m, index, &f);

	if (r != CACHE_BEGIN_FILL)
		return r;
	r = write_chunk(f, m, index, seed);
	if (r) {
		cache_fill_abort(f, r);
		return r;
	}
	return cache_fill_commit(f, NULL);
}

/* The chunk's bytes through a handle are those of version seed at its offset. */
static bool chunk_has(struct cache_chunk *ch, unsigned seed)
{
	char *want = malloc(ch->len + 1), *got = malloc(ch->len + 1);
	bool ok;

	body_at(want, ch->offset, ch->len, seed);
	ok = pread(ch->fd, got, ch->len, (off_t)ch->body_offset) == (ssize_t)ch->len &&
	     !memcmp(want, got, ch->len);
	free(want);
	free(got);
	return ok;
}

static bool has_chunk(const struct cache_meta *m, uint32_t index, unsigned seed)
{
	struct cache_chunk *ch;
	bool ok;

	if (cache_chunk_open(cache, m, index, &ch))
		return false;
	ok = chunk_has(ch, seed);
	cache_chunk_close(ch);
	return ok;
}

static int count_files(const char *sub)
{
	char path[128];
	struct dirent *d;
	DIR *dd;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	dd = opendir(path);
	if (!dd)
		return -1;
	while ((d = readdir(dd)))
		if (d->d_name[0] != '.')
			n++;
	closedir(dd);
	return n;
}

static int count_objects(void)
{
	char sub[16];
	int n = 0;

	for (int i = 0; i < 256; i++) {
		snprintf(sub, sizeof(sub), "objects/%02x", i);
		n += count_files(sub) > 0 ? count_files(sub) : 0;
	}
	return n;
}

/* The path of a committed chunk's file, through the fd an open gives. */
static int chunk_path(const struct cache_meta *m, uint32_t index, char *path, size_t len)
{
	struct cache_chunk *ch;
	char link[64];
	ssize_t n;

	if (cache_chunk_open(cache, m, index, &ch))
		return -1;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", ch->fd);
	n = readlink(link, path, len - 1);
	cache_chunk_close(ch);
	if (n < 0)
		return -1;
	path[n] = '\0';
	return 0;
}

static struct cache_stats stats(void)
{
	struct cache_stats st;

	cache_stats(cache, &st);
	return st;
}

static void test_arithmetic(void)
{
	const uint64_t C = 16 << 20;

	CU_ASSERT_EQUAL(cache_chunk_count(0, C), 1); /* one empty chunk */
	CU_ASSERT_EQUAL(cache_chunk_len(0, C, 0), 0);
	CU_ASSERT_EQUAL(cache_chunk_count(1, C), 1);
	CU_ASSERT_EQUAL(cache_chunk_len(1, C, 0), 1);
	CU_ASSERT_EQUAL(cache_chunk_count(C - 1, C), 1);
	CU_ASSERT_EQUAL(cache_chunk_count(C, C), 1);
	CU_ASSERT_EQUAL(cache_chunk_len(C, C, 0), C);
	CU_ASSERT_EQUAL(cache_chunk_len(C, C, 1), 0);
	CU_ASSERT_EQUAL(cache_chunk_count(C + 1, C), 2);
	CU_ASSERT_EQUAL(cache_chunk_len(C + 1, C, 1), 1);
	CU_ASSERT_EQUAL(cache_chunk_count(3 * C, C), 3);
	CU_ASSERT_EQUAL(cache_chunk_len(3 * C, C, 2), C);
	CU_ASSERT_EQUAL(cache_chunk_count(100 * 1048576 + 3, C), 7);
	CU_ASSERT_EQUAL(cache_chunk_len(100 * 1048576 + 3, C, 6), 4 * 1048576 + 3);
	CU_ASSERT_EQUAL(cache_chunk_len(100 * 1048576 + 3, C, 7), 0);
	/* first and last byte of chunk i are i*C and i*C + len - 1: both map back to i */
	for (uint64_t i = 0; i < 7; i++) {
		uint64_t len = cache_chunk_len(100 * 1048576 + 3, C, i);

		CU_ASSERT_EQUAL((i * C) / C, i);
		CU_ASSERT_EQUAL((i * C + len - 1) / C, i);
	}
	CU_ASSERT_EQUAL(cache_chunk_count(UINT64_MAX, 1), UINT64_MAX);
	CU_ASSERT_EQUAL(cache_chunk_len(UINT64_MAX, C, UINT64_MAX / C), UINT64_MAX % C);
	CU_ASSERT_EQUAL(cache_chunk_count(5, 0), 0);
	CU_ASSERT_EQUAL(cache_chunk_size(cache), 16 << 20);
}

static void test_bad_opts_and_args(void)
{
	struct cache_opts o = {.capacity = 1 << 30, .chunk_size = (1 << 20) + 1};
	struct cache_meta m = meta_of("k", "\"e\"", 3 * CH);
	struct cache *c2;
	struct cache_fill *f;

	CU_ASSERT_EQUAL(cache_open(dir, &o, &c2), -EINVAL);
	o.chunk_size = 512 * 1024;
	CU_ASSERT_EQUAL(cache_open(dir, &o, &c2), -EINVAL);
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 3, &f), -ERANGE);
	m.size = (uint64_t)1 << 40;
	m.chunk_size = 16;
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f), -EFBIG); /* 2^36 chunks */
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
}

/* Files are named by the whole identity: each of these is its own chunk file. */
static void test_identities(void)
{
	struct cache_meta a = meta_of("ab", "\"e\"", 2 * CH), b = a, v = a, i1 = a, cs = a;
	struct cache_object *o;

	a.id.bucket = "c";
	b.id.bucket = "ca";
	b.id.key = "b"; /* ("c","ab") and ("ca","b") */
	v.id.version = "v1";
	cs.id.key = "other";
	CU_ASSERT_EQUAL(put_chunk(&a, 0, 1), 0);
	CU_ASSERT_EQUAL(put_chunk(&a, 1, 1), 0);
	CU_ASSERT_EQUAL(put_chunk(&b, 0, 2), 0);
	CU_ASSERT_EQUAL(put_chunk(&v, 0, 3), 0);
	CU_ASSERT_EQUAL(put_chunk(&cs, 0, 4), 0);
	CU_ASSERT_EQUAL(count_objects(), 5);
	CU_ASSERT(has_chunk(&a, 0, 1) && has_chunk(&a, 1, 1));
	CU_ASSERT(has_chunk(&b, 0, 2) && has_chunk(&v, 0, 3) && has_chunk(&cs, 0, 4));
	CU_ASSERT(!has_chunk(&b, 1, 2));
	/* the same key and ETag cut another way is another version: it replaces the first */
	i1 = cs;
	i1.chunk_size = 2 * CH;
	CU_ASSERT_FALSE(has_chunk(&i1, 0, 4));
	CU_ASSERT_EQUAL(put_chunk(&i1, 0, 4), 0);
	CU_ASSERT_FALSE(has_chunk(&cs, 0, 4));
	CU_ASSERT(has_chunk(&i1, 0, 4));
	CU_ASSERT_EQUAL(count_objects(), 5);
	CU_ASSERT_EQUAL_FATAL(cache_object_lookup(cache, &i1.id, &o), 0);
	CU_ASSERT_EQUAL(o->meta.chunk_size, 2 * CH);
	CU_ASSERT_EQUAL(o->nchunks, 1);
	cache_object_release(o);
	CU_ASSERT_EQUAL(stats().objects, 4);
	CU_ASSERT_EQUAL(stats().entries, 5);
}

/* An object of 2.5 chunks: lengths, offsets, bodies, states, metadata. */
static void test_multi_chunk(void)
{
	struct cache_meta m = meta_of("obj", "\"e1\"", 2 * CH + CH / 2);
	enum cache_chunk_state st[3];
	struct cache_object *o;
	struct cache_chunk *ch;

	m.extra = "x-amz-meta-a: 1\r\n";
	m.extra_len = strlen(m.extra);
	CU_ASSERT_EQUAL(cache_object_lookup(cache, &m.id, &o), -ENOENT);
	CU_ASSERT_EQUAL(cache_chunk_states(cache, &m, 0, 3, st), -ENOENT);
	CU_ASSERT_EQUAL(put_chunk(&m, 2, 9), 0);
	CU_ASSERT_EQUAL(put_chunk(&m, 0, 9), 0);
	CU_ASSERT_EQUAL(cache_chunk_states(cache, &m, 0, 3, st), 0);
	CU_ASSERT(st[0] == CACHE_CHUNK_COMMITTED && st[1] == CACHE_CHUNK_ABSENT &&
		  st[2] == CACHE_CHUNK_COMMITTED);
	CU_ASSERT_EQUAL(cache_chunk_states(cache, &m, 2, 2, st), -ERANGE);
	CU_ASSERT_EQUAL(cache_chunk_open(cache, &m, 1, &ch), -ENOENT);
	CU_ASSERT_EQUAL(cache_chunk_open(cache, &m, 3, &ch), -ERANGE);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 2, &ch), 0);
	CU_ASSERT_EQUAL(ch->len, CH / 2);
	CU_ASSERT_EQUAL(ch->offset, 2 * CH);
	CU_ASSERT_EQUAL(ch->index, 2);
	CU_ASSERT_FALSE(ch->is_verified);
	CU_ASSERT(chunk_has(ch, 9));
	CU_ASSERT_EQUAL(lseek(ch->fd, 0, SEEK_END), (off_t)(ch->body_offset + CH / 2));
	cache_chunk_close(ch);
	CU_ASSERT_EQUAL_FATAL(cache_object_lookup(cache, &m.id, &o), 0);
	CU_ASSERT_STRING_EQUAL(o->meta.etag, "\"e1\"");
	CU_ASSERT_STRING_EQUAL(o->meta.content_type, "application/x-test");
	CU_ASSERT_STRING_EQUAL(o->meta.last_modified, "Wed, 01 Jan 2025 00:00:00 GMT");
	CU_ASSERT_EQUAL(o->meta.extra_len, m.extra_len);
	CU_ASSERT(!memcmp(o->meta.extra, m.extra, m.extra_len));
	CU_ASSERT_EQUAL(o->meta.size, m.size);
	CU_ASSERT_EQUAL(o->meta.chunk_size, CH);
	CU_ASSERT(o->nchunks == 3 && o->ncommitted == 2 && o->nfilling == 0);
	cache_object_release(o);
}

/* A zero-length object is one empty chunk. */
static void test_empty_object(void)
{
	struct cache_meta m = meta_of("empty", "\"d41d\"", 0);
	struct cache_fill *f;
	struct cache_chunk *ch;

	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(cache_fill_write(f, "x", 1), -EFBIG);
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 0, &ch), 0);
	CU_ASSERT_EQUAL(ch->len, 0);
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), 0);
	cache_chunk_close(ch);
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 1, &f), -ERANGE);
}

struct wake_count {
	int n;
};

static void on_wake(void *arg)
{
	__atomic_add_fetch(&((struct wake_count *)arg)->n, 1, __ATOMIC_RELAXED);
}

/* One fill per chunk; other chunks of the object fill beside it; followers read it. */
static void test_one_fill_per_chunk(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", 3 * CH);
	enum cache_chunk_state st[3];
	struct cache_fill *f1, *f0, *dup;
	struct cache_follower *fl;
	struct cache_fill_status fs;
	struct wake_count wc = {0};
	struct cache_object *o;
	uint64_t off;
	char buf[CH];
	int fd;

	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 1, &f1), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 1, &dup), CACHE_BEGIN_FOLLOW);
	CU_ASSERT_PTR_NULL(dup);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f0), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(cache_chunk_follow(cache, &m, 2, NULL, NULL, &fl), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_follow(cache, &m, 1, on_wake, &wc, &fl), 0);
	CU_ASSERT_EQUAL(cache_follower_meta(fl)->chunk_size, CH);
	CU_ASSERT_EQUAL(cache_follower_meta(fl)->size, 3 * CH);
	CU_ASSERT_EQUAL(cache_chunk_states(cache, &m, 0, 3, st), 0);
	CU_ASSERT(st[0] == CACHE_CHUNK_FILLING && st[1] == CACHE_CHUNK_FILLING &&
		  st[2] == CACHE_CHUNK_ABSENT);
	CU_ASSERT_EQUAL_FATAL(cache_object_lookup(cache, &m.id, &o), 0);
	CU_ASSERT(o->nfilling == 2 && o->ncommitted == 0);
	CU_ASSERT_STRING_EQUAL(o->meta.etag, "\"e\"");
	cache_object_release(o);
	CU_ASSERT_EQUAL(write_chunk(f1, &m, 1, 5), 0);
	cache_follower_status(fl, &fs);
	CU_ASSERT(fs.written == CH && fs.size == CH && wc.n == 1);
	fd = cache_follower_fd(fl, &off);
	CU_ASSERT_EQUAL(pread(fd, buf, CH, (off_t)off), (ssize_t)CH);
	CU_ASSERT_EQUAL(buf[0], body_byte(5, CH));
	CU_ASSERT_EQUAL(cache_fill_commit(f1, NULL), 0);
	cache_follower_status(fl, &fs);
	CU_ASSERT_EQUAL(fs.state, CACHE_FILL_COMMITTED);
	cache_follower_close(fl);
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 1, &dup), CACHE_BEGIN_COMMITTED);
	CU_ASSERT_EQUAL(cache_chunk_follow(cache, &m, 1, NULL, NULL, &fl), -ENOENT);
	cache_fill_abort(f0, -ECONNRESET);
	CU_ASSERT_EQUAL(cache_chunk_states(cache, &m, 0, 3, st), 0);
	CU_ASSERT(st[0] == CACHE_CHUNK_ABSENT && st[1] == CACHE_CHUNK_COMMITTED);
	CU_ASSERT(has_chunk(&m, 1, 5));
	CU_ASSERT_EQUAL(stats().fills_running, 0);
	CU_ASSERT_EQUAL(stats().bytes_reserved, 0);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
}

/* A fill of another ETag drops the held version's chunks; its running fill goes stale. */
static void test_new_etag(void)
{
	struct cache_meta v1 = meta_of("obj", "\"v1\"", 3 * CH), v2 = v1;
	enum cache_chunk_state st[3];
	struct cache_fill *stale, *f;
	struct cache_follower *fl, *fl2;
	struct cache_fill_status fs;
	struct cache_object *o;

	v2.etag = "\"v2\"";
	CU_ASSERT_EQUAL(put_chunk(&v1, 0, 1), 0);
	CU_ASSERT_EQUAL(put_chunk(&v1, 1, 1), 0);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &v1, 2, &stale), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_follow(cache, &v1, 2, NULL, NULL, &fl), 0);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &v2, 1, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(count_objects(), 0);
	CU_ASSERT_EQUAL(cache_chunk_states(cache, &v1, 0, 3, st), -ENOENT);
	CU_ASSERT_EQUAL(cache_chunk_states(cache, &v2, 0, 3, st), 0);
	CU_ASSERT(st[0] == CACHE_CHUNK_ABSENT && st[1] == CACHE_CHUNK_FILLING);
	CU_ASSERT_EQUAL(cache_chunk_follow(cache, &v1, 2, NULL, NULL, &fl2), -ENOENT);
	CU_ASSERT_PTR_NULL(fl2);
	CU_ASSERT_EQUAL(write_chunk(stale, &v1, 2, 1), 0);
	CU_ASSERT_EQUAL(cache_fill_commit(stale, NULL), -ESTALE);
	cache_follower_status(fl, &fs);
	CU_ASSERT(fs.state == CACHE_FILL_DISCARDED && fs.written == CH);
	cache_follower_close(fl);
	CU_ASSERT_EQUAL_FATAL(cache_object_lookup(cache, &v1.id, &o), 0);
	CU_ASSERT_STRING_EQUAL(o->meta.etag, "\"v2\"");
	cache_object_release(o);
	CU_ASSERT_EQUAL(write_chunk(f, &v2, 1, 2), 0);
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), 0);
	CU_ASSERT(has_chunk(&v2, 1, 2));
	CU_ASSERT_FALSE(has_chunk(&v1, 0, 1));
	CU_ASSERT_EQUAL(count_objects(), 1);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
	CU_ASSERT_EQUAL(stats().invalidations, 2);
	CU_ASSERT_EQUAL(stats().entries, 1);
	CU_ASSERT_EQUAL(stats().objects, 1);
}

static void test_invalidate(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", 4 * CH), mv = m, other = m;
	struct cache_fill *f;
	struct cache_follower *fl;
	struct cache_fill_status fs;

	mv.id.version = "v7";
	other.id.key = "kept";
	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(put_chunk(&m, i, 3), 0);
	CU_ASSERT_EQUAL(put_chunk(&mv, 0, 4), 0);
	CU_ASSERT_EQUAL(put_chunk(&other, 0, 5), 0);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 3, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_follow(cache, &m, 3, NULL, NULL, &fl), 0);
	/* a write to (b, obj, v7) can change v7 and the null version: 4 chunks */
	CU_ASSERT_EQUAL(cache_invalidate(cache, &mv.id), 4);
	CU_ASSERT_EQUAL(cache_invalidate(cache, &mv.id), 0);
	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT_FALSE(has_chunk(&m, i, 3));
	CU_ASSERT(has_chunk(&other, 0, 5));
	CU_ASSERT_EQUAL(write_chunk(f, &m, 3, 3), 0);
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), -ESTALE);
	cache_follower_status(fl, &fs);
	CU_ASSERT_EQUAL(fs.state, CACHE_FILL_DISCARDED);
	cache_follower_close(fl);
	CU_ASSERT_EQUAL(count_objects(), 1);
	CU_ASSERT_EQUAL(stats().objects, 1);
	CU_ASSERT_EQUAL(stats().invalidations, 4);
}

/* Eviction picks least recently used chunks, not objects. */
static void test_lru_per_chunk(void)
{
	struct cache_meta a = meta_of("a", "\"e\"", 4 * CH), b = meta_of("b", "\"e\"", 4 * CH);
	struct cache_chunk *ch;
	uint64_t one;

	CU_ASSERT_EQUAL(put_chunk(&a, 0, 1), 0);
	one = stats().bytes_used;
	/* room for 10 chunks; eviction from 90% down to 50% */
	{
		struct cache_opts o = {.capacity = 10 * one,
				       .high_pct = 90,
				       .low_pct = 50,
				       .log = count_log,
				       .is_fdatasync_skipped = true};

		cache_close(cache);
		CU_ASSERT_EQUAL_FATAL(cache_open(dir, &o, &cache), 0);
	}
	for (uint32_t i = 1; i < 4; i++)
		CU_ASSERT_EQUAL(put_chunk(&a, i, 1), 0);
	for (uint32_t i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(put_chunk(&b, i, 2), 0);
	/* oldest first: a0 a1 a2 a3 b0 b1 b2 b3; reading a1 and b0 makes them the newest */
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &a, 1, &ch), 0);
	cache_chunk_close(ch);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &b, 0, &ch), 0);
	cache_chunk_close(ch);
	CU_ASSERT_EQUAL(cache_evict(cache), 3); /* 8 -> 5 chunks */
	CU_ASSERT(!has_chunk(&a, 0, 1) && !has_chunk(&a, 2, 1) && !has_chunk(&a, 3, 1));
	CU_ASSERT(has_chunk(&a, 1, 1));
	for (uint32_t i = 0; i < 4; i++)
		CU_ASSERT(has_chunk(&b, i, 2));
	CU_ASSERT_EQUAL(stats().entries, 5);
	CU_ASSERT_EQUAL(stats().objects, 2);
	CU_ASSERT_EQUAL(stats().evictions, 3);
	CU_ASSERT_EQUAL(count_objects(), 5);
}

/* Inline eviction at a fill's begin may take the last committed chunk of the very object
 * the fill is for: the object must survive (ASan finds it if it does not). */
static void test_inline_evicts_own_object(void)
{
	struct cache_meta m = meta_of("solo", "\"e\"", 2 * CH);
	struct cache_fill *f;
	uint64_t one;

	CU_ASSERT_EQUAL(put_chunk(&m, 0, 1), 0);
	one = stats().bytes_used;
	{
		struct cache_opts o = {.capacity = one * 3 / 2,
				       .high_pct = 90,
				       .low_pct = 10,
				       .log = count_log,
				       .is_fdatasync_skipped = true};

		cache_close(cache);
		CU_ASSERT_EQUAL_FATAL(cache_open(dir, &o, &cache), 0);
	}
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 1, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(stats().evictions, 1);
	CU_ASSERT_EQUAL(stats().objects, 1);
	CU_ASSERT_EQUAL(write_chunk(f, &m, 1, 1), 0);
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), 0);
	CU_ASSERT(has_chunk(&m, 1, 1));
	CU_ASSERT_FALSE(has_chunk(&m, 0, 1));
}

/* Restart keeps committed chunks (not verified any more), drops temp files, and reads a
 * version cut with another chunk size right. */
static void test_restart(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", 2 * (1 << 20) + 5), dflt = m;
	struct cache_chunk *ch;
	struct cache_object *o;
	char junk[128];

	reopen(1 << 30, 1 << 20);
	m.chunk_size = 0; /* the store's: 1 MiB */
	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(put_chunk(&m, i, 6), 0);
	m.chunk_size = 1 << 20;
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 2, &ch), 0);
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), 0);
	CU_ASSERT(ch->is_verified && ch->len == 5);
	cache_chunk_close(ch);
	snprintf(junk, sizeof(junk), "%s/tmp/0123456789abcdef0123456789abcdef.7", dir);
	CU_ASSERT_EQUAL(close(open(junk, O_CREAT | O_WRONLY, 0600)), 0);
	reopen(1 << 30, 2 << 20);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
	CU_ASSERT_EQUAL(stats().recovered, 3);
	CU_ASSERT_EQUAL(stats().chunk_size, 2 << 20);
	CU_ASSERT_EQUAL_FATAL(cache_object_lookup(cache, &m.id, &o), 0);
	CU_ASSERT_EQUAL(o->meta.chunk_size, 1 << 20);
	CU_ASSERT(o->nchunks == 3 && o->ncommitted == 3);
	cache_object_release(o);
	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT(has_chunk(&m, i, 6));
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 2, &ch), 0);
	CU_ASSERT_FALSE(ch->is_verified); /* the bit lives in memory only */
	cache_chunk_close(ch);
	/* the store's new chunk size names another version, which is not held */
	dflt.chunk_size = 0;
	CU_ASSERT_FALSE(has_chunk(&dflt, 0, 6));
}

/* Two versions of a key on disk (a crash lost the unlink of the older one): the newest
 * by mtime is kept. */
static void test_restart_versions(void)
{
	struct cache_meta v1 = meta_of("obj", "\"v1\"", 2 * CH), v2 = v1;
	char p1[512], p2[512], saved[600];
	struct timespec old[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};

	v2.etag = "\"v2\"";
	CU_ASSERT_EQUAL(put_chunk(&v1, 0, 1), 0);
	CU_ASSERT_EQUAL(put_chunk(&v1, 1, 1), 0);
	CU_ASSERT_EQUAL_FATAL(chunk_path(&v1, 0, p1, sizeof(p1)), 0);
	snprintf(saved, sizeof(saved), "%s.saved", p1);
	CU_ASSERT_EQUAL_FATAL(link(p1, saved), 0);
	CU_ASSERT_EQUAL(put_chunk(&v2, 0, 2), 0);
	CU_ASSERT_EQUAL(rename(saved, p1), 0);
	CU_ASSERT_EQUAL(utimensat(AT_FDCWD, p1, old, 0), 0);
	CU_ASSERT_EQUAL(count_objects(), 2);
	reopen(1 << 30, 0);
	CU_ASSERT_EQUAL(stats().recovered, 1);
	CU_ASSERT_EQUAL(stats().recovery_superseded, 1);
	CU_ASSERT(has_chunk(&v2, 0, 2));
	CU_ASSERT_FALSE(has_chunk(&v1, 0, 1));
	CU_ASSERT_EQUAL(count_objects(), 1);
	/* and the other way round: an old v2 beside a newer v1 */
	CU_ASSERT_EQUAL_FATAL(chunk_path(&v2, 0, p2, sizeof(p2)), 0);
	CU_ASSERT_EQUAL_FATAL(link(p2, saved), 0);
	CU_ASSERT_EQUAL(put_chunk(&v1, 1, 1), 0);
	CU_ASSERT_EQUAL(rename(saved, p2), 0);
	CU_ASSERT_EQUAL(utimensat(AT_FDCWD, p2, old, 0), 0);
	reopen(1 << 30, 0);
	CU_ASSERT(has_chunk(&v1, 1, 1));
	CU_ASSERT_FALSE(has_chunk(&v2, 0, 2));
	CU_ASSERT_EQUAL(count_objects(), 1);
}

/* Verification: a good chunk once, a flipped byte dropped and counted, and a short and
 * a long file. */
static void test_verify(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", 4 * CH);
	struct cache_chunk *ch;
	char path[512];
	int fd;

	for (uint32_t i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(put_chunk(&m, i, 8), 0);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 0, &ch), 0);
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), 0);
	CU_ASSERT(ch->is_verified);
	cache_chunk_close(ch);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 0, &ch), 0);
	CU_ASSERT(ch->is_verified);
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), 0);
	cache_chunk_close(ch);
	CU_ASSERT_EQUAL(stats().verified_chunks, 1);
	CU_ASSERT_EQUAL(stats().verified_bytes, CH);

	log_lines = 0;
	CU_ASSERT_EQUAL_FATAL(chunk_path(&m, 1, path, sizeof(path)), 0);
	fd = open(path, O_WRONLY);
	CU_ASSERT_EQUAL(pwrite(fd, "\xff", 1, (off_t)(lseek(fd, 0, SEEK_END) - 100)), 1);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 1, &ch), 0);
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), -EBADMSG);
	CU_ASSERT_FALSE(ch->is_verified);
	cache_chunk_close(ch);
	CU_ASSERT_EQUAL(log_lines, 1);
	CU_ASSERT(strstr(last_log, "objects/") && strstr(last_log, "CRC"));
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
	CU_ASSERT_EQUAL(cache_chunk_open(cache, &m, 1, &ch), -ENOENT);

	CU_ASSERT_EQUAL_FATAL(chunk_path(&m, 2, path, sizeof(path)), 0);
	/* A file of the wrong length is caught at open, before any read. */
	CU_ASSERT_EQUAL(truncate(path, 1000), 0);
	CU_ASSERT_EQUAL(cache_chunk_open(cache, &m, 2, &ch), -ENOENT);
	CU_ASSERT(strstr(last_log, "1000 bytes") != NULL);

	CU_ASSERT_EQUAL_FATAL(chunk_path(&m, 3, path, sizeof(path)), 0);
	fd = open(path, O_WRONLY | O_APPEND);
	CU_ASSERT_EQUAL(write(fd, "tail", 4), 4);
	close(fd);
	CU_ASSERT_EQUAL(cache_chunk_open(cache, &m, 3, &ch), -ENOENT);
	CU_ASSERT_EQUAL(stats().corrupt_chunks, 3);
	CU_ASSERT_EQUAL(log_lines, 3);

	/* Chunk 0 was verified: it is not read again, but a cut file is still caught. */
	CU_ASSERT_EQUAL_FATAL(chunk_path(&m, 0, path, sizeof(path)), 0);
	CU_ASSERT_EQUAL(truncate(path, 1000), 0);
	CU_ASSERT_EQUAL(cache_chunk_open(cache, &m, 0, &ch), -ENOENT);
	CU_ASSERT_EQUAL(stats().corrupt_chunks, 4);
	CU_ASSERT_EQUAL(stats().entries, 0);
	CU_ASSERT_EQUAL(count_objects(), 0);
	CU_ASSERT_EQUAL(log_lines, 4);
}

/* A corrupt chunk found by verification while another reader holds it open: the reader's
 * fd keeps the (bad) bytes, the index forgets it once, a refill commits the right ones. */
static void test_verify_then_refill(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", CH);
	struct cache_chunk *ch, *ch2;
	char path[512];
	int fd;

	CU_ASSERT_EQUAL(put_chunk(&m, 0, 8), 0);
	CU_ASSERT_EQUAL_FATAL(chunk_path(&m, 0, path, sizeof(path)), 0);
	fd = open(path, O_WRONLY);
	CU_ASSERT_EQUAL(pwrite(fd, "\x01", 1, (off_t)(lseek(fd, 0, SEEK_END) - 1)), 1);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 0, &ch), 0);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 0, &ch2), 0);
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), -EBADMSG);
	CU_ASSERT_EQUAL(cache_chunk_verify(ch2), -EBADMSG);
	CU_ASSERT_EQUAL(stats().corrupt_chunks, 1);
	CU_ASSERT_EQUAL(put_chunk(&m, 0, 8), 0);
	cache_chunk_close(ch);
	cache_chunk_close(ch2);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 0, &ch), 0);
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), 0);
	CU_ASSERT(chunk_has(ch, 8));
	cache_chunk_close(ch);
}

/* Runs the scrubber with a budget until it says a pass ended; the total read. */
static int64_t scrub_pass(uint64_t budget, int *calls)
{
	uint64_t passes = stats().scrub_passes;
	int64_t total = 0, n;

	*calls = 0;
	while (stats().scrub_passes == passes && *calls < 10000) {
		n = cache_scrub(cache, budget);
		CU_ASSERT(n >= 0 && (uint64_t)n <= budget);
		total += n;
		(*calls)++;
	}
	return total;
}

/* The scrubber finds a flipped byte and a truncated file in chunks no reader opened,
 * within its budget, and reads a chunk larger than a call's budget over several calls. */
static void test_scrub(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", 6 * CH);
	struct cache_chunk *ch;
	char path[512];
	int fd, calls;

	CU_ASSERT_EQUAL(cache_scrub(cache, 1 << 20), 0); /* empty: nothing to do */
	CU_ASSERT_EQUAL(stats().scrub_passes, 0);
	for (uint32_t i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(put_chunk(&m, i, 4), 0);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 5, &ch), 0);
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), 0); /* a reader verified it: skipped */
	cache_chunk_close(ch);
	CU_ASSERT_EQUAL_FATAL(chunk_path(&m, 3, path, sizeof(path)), 0);
	fd = open(path, O_WRONLY);
	CU_ASSERT_EQUAL(pwrite(fd, "\x55", 1, (off_t)(lseek(fd, 0, SEEK_END) - CH / 2)), 1);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(chunk_path(&m, 4, path, sizeof(path)), 0);
	CU_ASSERT_EQUAL(truncate(path, 3000), 0);
	log_lines = 0;
	CU_ASSERT_EQUAL(cache_scrub(cache, CH / 4), (int64_t)(CH / 4)); /* a quarter of a chunk */
	CU_ASSERT_EQUAL(stats().scrub_chunks, 0);
	/* chunks 0 to 3 are read whole; 4 is dropped on its length, unread; 5 is skipped */
	CU_ASSERT_EQUAL(scrub_pass(CH / 4, &calls) + CH / 4, (int64_t)(4 * CH));
	CU_ASSERT(calls >= 15);
	CU_ASSERT_EQUAL(stats().scrub_passes, 1);
	CU_ASSERT_EQUAL(stats().scrub_chunks, 4);
	CU_ASSERT_EQUAL(stats().scrub_bytes, 4 * CH);
	CU_ASSERT_EQUAL(stats().corrupt_chunks, 2);
	CU_ASSERT_EQUAL(log_lines, 2);
	CU_ASSERT_FALSE(has_chunk(&m, 3, 4));
	CU_ASSERT_FALSE(has_chunk(&m, 4, 4));
	CU_ASSERT_EQUAL(stats().entries, 4);
	/* every chunk left was verified: readers skip the read */
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 0, &ch), 0);
	CU_ASSERT(ch->is_verified);
	cache_chunk_close(ch);
	/* the next pass reads them all again, the reader-verified one too */
	CU_ASSERT_EQUAL(scrub_pass(1 << 30, &calls), (int64_t)(4 * CH));
	CU_ASSERT_EQUAL(stats().scrub_passes, 2);
}

/* Chunks leaving or moving in the LRU while a pass is under way: the pass still reaches
 * every chunk that stays. */
static void test_scrub_cursor(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", 40 * CH), n = meta_of("new", "\"e\"", CH);
	struct cache_chunk *ch;
	int calls;

	for (uint32_t i = 0; i < 40; i++)
		CU_ASSERT_EQUAL(put_chunk(&m, i, 4), 0);
	CU_ASSERT_EQUAL(cache_scrub(cache, 3 * CH), (int64_t)(3 * CH)); /* chunks 0, 1, 2 */
	/* the cursor is on chunk 3: read it (it moves to the head); then the whole version
	 * goes (the cursor falls off the head) and comes back as new chunks */
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, 3, &ch), 0);
	cache_chunk_close(ch);
	CU_ASSERT_EQUAL(cache_invalidate(cache, &n.id), 0);
	{
		struct cache_meta other = m;

		other.etag = "\"other\"";
		CU_ASSERT_EQUAL(put_chunk(&other, 39, 5), 0); /* drops all 40 of m */
		for (uint32_t i = 0; i < 40; i++)
			CU_ASSERT_EQUAL(put_chunk(&m, i, 4), 0); /* and back: 40 new ones */
	}
	CU_ASSERT_EQUAL(put_chunk(&n, 0, 6), 0);
	scrub_pass(5 * CH, &calls);
	CU_ASSERT_EQUAL(stats().scrub_passes, 1);
	for (uint32_t i = 0; i < 40; i++) {
		CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &m, i, &ch), 0);
		CU_ASSERT(ch->is_verified);
		cache_chunk_close(ch);
	}
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &n, 0, &ch), 0);
	CU_ASSERT(ch->is_verified);
	cache_chunk_close(ch);
}

static void test_sync(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", 8 * CH);

	int n;

	CU_ASSERT_EQUAL(cache_sync(cache), 0);
	for (uint32_t i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(put_chunk(&m, i, 1), 0);
	n = cache_sync(cache);
	CU_ASSERT(n >= 1 && n <= 8);
	CU_ASSERT_EQUAL(cache_sync(cache), 0);
}

static bool is_dir(const char *sub)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/* The cache directory removed while the store runs, then made again. */
static void test_dir_removed(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", 4 * CH);
	enum cache_chunk_state st[4];
	struct cache_follower *fl;
	struct cache_fill_status fs;
	struct cache_object *o;
	struct cache_chunk *ch;
	struct cache_fill *f, *f2;

	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(put_chunk(&m, i, 2), 0);
	CU_ASSERT_EQUAL(cache_health_check(cache), 0);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 3, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_follow(cache, &m, 3, NULL, NULL, &fl), 0);
	CU_ASSERT_EQUAL_FATAL(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	log_lines = 0;
	CU_ASSERT_EQUAL(cache_health_check(cache), -ENOENT);
	CU_ASSERT_EQUAL(log_lines, 1);
	CU_ASSERT(strstr(last_log, "degraded") != NULL);
	CU_ASSERT(stats().is_degraded && stats().degraded_error == -ENOENT);
	CU_ASSERT(stats().entries == 0 && stats().bytes_used == 0 && stats().objects == 0);
	CU_ASSERT_EQUAL(stats().lost_chunks, 3);
	CU_ASSERT_EQUAL(cache_chunk_open(cache, &m, 0, &ch), -ENOENT);
	CU_ASSERT_EQUAL(cache_chunk_states(cache, &m, 0, 4, st), -ENOENT);
	CU_ASSERT_EQUAL(cache_object_lookup(cache, &m.id, &o), -ENOENT);
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f2), -EIO);
	CU_ASSERT_EQUAL(cache_scrub(cache, 1 << 20), 0);
	/* the fill that ran still serves its follower, and is not kept */
	CU_ASSERT_EQUAL(write_chunk(f, &m, 3, 2), 0);
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), -ESTALE);
	cache_follower_status(fl, &fs);
	CU_ASSERT(fs.state == CACHE_FILL_DISCARDED && fs.written == CH);
	cache_follower_close(fl);
	CU_ASSERT_EQUAL(cache_health_check(cache), -ENOENT);
	CU_ASSERT_EQUAL(log_lines, 1); /* said once */
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	CU_ASSERT_EQUAL(cache_health_check(cache), 0);
	CU_ASSERT_FALSE(stats().is_degraded);
	CU_ASSERT_EQUAL(stats().dir_recoveries, 1);
	CU_ASSERT(is_dir("objects") && is_dir("tmp"));
	CU_ASSERT_EQUAL(put_chunk(&m, 0, 2), 0);
	CU_ASSERT(has_chunk(&m, 0, 2));
	CU_ASSERT_EQUAL(cache_health_check(cache), 0);
	reopen(1 << 30, 0);
	CU_ASSERT(has_chunk(&m, 0, 2));
	CU_ASSERT_EQUAL(stats().entries, 1);
}

/* The directory replaced by another one, then the old one put back: each is noticed,
 * and the old one's chunks are found again by the rescan. */
static void test_dir_replaced(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", 2 * CH);
	char old[96];

	snprintf(old, sizeof(old), "%s.old", dir);
	CU_ASSERT_EQUAL(put_chunk(&m, 0, 3), 0);
	CU_ASSERT_EQUAL(put_chunk(&m, 1, 3), 0);
	CU_ASSERT_EQUAL_FATAL(rename(dir, old), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	CU_ASSERT_EQUAL(cache_health_check(cache), -ESTALE);
	CU_ASSERT(strstr(last_log, "replaced") != NULL);
	CU_ASSERT_EQUAL(stats().entries, 0);
	CU_ASSERT_EQUAL(cache_health_check(cache), 0); /* an empty, usable directory */
	CU_ASSERT_FALSE(has_chunk(&m, 0, 3));
	CU_ASSERT_EQUAL_FATAL(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	CU_ASSERT_EQUAL_FATAL(rename(old, dir), 0);
	CU_ASSERT_EQUAL(cache_health_check(cache), -ESTALE);
	CU_ASSERT_EQUAL(cache_health_check(cache), 0);
	CU_ASSERT(has_chunk(&m, 0, 3) && has_chunk(&m, 1, 3));
	CU_ASSERT_EQUAL(stats().entries, 2);
	CU_ASSERT_EQUAL(stats().dir_recoveries, 2);
	CU_ASSERT_EQUAL(stats().degradations, 2);
}

/* objects/ alone removed: its chunks are not claimed, and it comes back. */
static void test_objects_removed(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", CH);
	char path[128];

	CU_ASSERT_EQUAL(put_chunk(&m, 0, 3), 0);
	snprintf(path, sizeof(path), "%s/objects", dir);
	CU_ASSERT_EQUAL_FATAL(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	CU_ASSERT(cache_health_check(cache) < 0);
	CU_ASSERT_EQUAL(stats().entries, 0);
	CU_ASSERT_EQUAL(cache_health_check(cache), 0);
	CU_ASSERT(is_dir("objects"));
	CU_ASSERT_EQUAL(put_chunk(&m, 0, 3), 0);
	CU_ASSERT(has_chunk(&m, 0, 3));
}

/* A chunk whose file went behind the store's back is dropped when it is opened. */
static void test_lost_file(void)
{
	struct cache_meta m = meta_of("obj", "\"e\"", CH);
	struct cache_chunk *ch;
	char path[512];

	CU_ASSERT_EQUAL(put_chunk(&m, 0, 3), 0);
	CU_ASSERT_EQUAL_FATAL(chunk_path(&m, 0, path, sizeof(path)), 0);
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(cache_chunk_open(cache, &m, 0, &ch), -ENOENT);
	CU_ASSERT_EQUAL(stats().lost_chunks, 1);
	CU_ASSERT_EQUAL(stats().entries, 0);
	CU_ASSERT_EQUAL(stats().bytes_used, 0);
	CU_ASSERT_EQUAL(put_chunk(&m, 0, 3), 0);
}

#define THREADS 4
#define SHARED_CHUNKS 64

static struct cache_meta shared_meta(void)
{
	return meta_of("shared", "\"s\"", SHARED_CHUNKS * CH - 123);
}

/* Fills its share of a big object's chunks and reads (and verifies) others' as they
 * appear. */
static void *chunk_worker(void *arg)
{
	struct cache_meta m = shared_meta(), mine = meta_of(NULL, "\"m\"", 3 * CH);
	long t = (long)arg, bad = 0;
	char key[16];

	snprintf(key, sizeof(key), "own-%ld", t);
	mine.id.key = key;
	for (uint32_t i = (uint32_t)t; i < SHARED_CHUNKS; i += THREADS) {
		struct cache_chunk *ch;
		uint32_t other = (i * 7 + 3) % SHARED_CHUNKS;

		if (put_chunk(&m, i, 11) < 0 || put_chunk(&mine, i % 3, (unsigned)t) < 0)
			bad++;
		if (cache_chunk_open(cache, &m, other, &ch) == 0) {
			bad += cache_chunk_verify(ch) != 0 || !chunk_has(ch, 11);
			cache_chunk_close(ch);
		}
	}
	return (void *)bad;
}

static void *control_worker(void *arg)
{
	bool *is_done = arg;

	while (!__atomic_load_n(is_done, __ATOMIC_ACQUIRE)) {
		struct cache_stats st;

		cache_scrub(cache, 2 * CH);
		cache_health_check(cache);
		cache_sync(cache);
		cache_stats(cache, &st);
	}
	return NULL;
}

/* Many threads filling and reading different chunks at once, the control thread's
 * scrub, health check and sync beside them. */
static void test_threads(void)
{
	struct cache_meta m = shared_meta();
	pthread_t th[THREADS], ctl;
	bool is_done = false;
	void *bad;

	pthread_create(&ctl, NULL, control_worker, &is_done);
	for (long t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, chunk_worker, (void *)t);
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], &bad);
		CU_ASSERT_EQUAL((long)bad, 0);
	}
	__atomic_store_n(&is_done, true, __ATOMIC_RELEASE);
	pthread_join(ctl, NULL);
	for (uint32_t i = 0; i < SHARED_CHUNKS; i++)
		CU_ASSERT(has_chunk(&m, i, 11));
	CU_ASSERT_EQUAL(stats().entries, SHARED_CHUNKS + 3 * THREADS);
	CU_ASSERT_EQUAL(stats().corrupt_chunks, 0);
	CU_ASSERT_EQUAL(stats().fills_running, 0);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
}

struct race {
	pthread_barrier_t go;
	int fills, follows, committed;
	long bad;
};

/* Everyone begins the same chunk at once: one fills, the others follow it or find it
 * committed, and all see the same bytes. */
static void *racer(void *arg)
{
	struct cache_meta m = meta_of("race", "\"r\"", 2 * CH);
	struct race *r = arg;
	struct cache_follower *fl;
	struct cache_fill_status fs;
	struct cache_fill *f;
	int v;

	pthread_barrier_wait(&r->go);
	v = cache_chunk_begin(cache, &m, 1, &f);
	if (v == CACHE_BEGIN_FILL) {
		__atomic_add_fetch(&r->fills, 1, __ATOMIC_RELAXED);
		usleep(2000);
		if (write_chunk(f, &m, 1, 12) || cache_fill_commit(f, NULL))
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	if (v == CACHE_BEGIN_FOLLOW && cache_chunk_follow(cache, &m, 1, NULL, NULL, &fl) == 0) {
		__atomic_add_fetch(&r->follows, 1, __ATOMIC_RELAXED);
		do {
			usleep(200);
			cache_follower_status(fl, &fs);
		} while (fs.state == CACHE_FILL_RUNNING);
		if (fs.state != CACHE_FILL_COMMITTED)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		cache_follower_close(fl);
	} else if (v == CACHE_BEGIN_FOLLOW || v == CACHE_BEGIN_COMMITTED) {
		__atomic_add_fetch(&r->committed, 1, __ATOMIC_RELAXED); /* it ended meanwhile */
	} else {
		__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
	}
	if (!has_chunk(&m, 1, 12))
		__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void test_begin_race(void)
{
	struct race r = {0};
	pthread_t th[8];

	pthread_barrier_init(&r.go, NULL, 8);
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, racer, &r);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&r.go);
	CU_ASSERT_EQUAL(r.bad, 0);
	CU_ASSERT_EQUAL(r.fills, 1);
	CU_ASSERT_EQUAL(r.fills + r.follows + r.committed, 8);
	CU_ASSERT_EQUAL(stats().fills_started, 1);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
}

/* A key's version changes while readers read it: a reader gets the chunks of the version
 * it named or nothing, never another version's bytes. */
static void *version_writer(void *arg)
{
	char etag[16];

	for (unsigned v = 1; v <= 60; v++) {
		struct cache_meta m = meta_of("flip", etag, 4 * CH);

		snprintf(etag, sizeof(etag), "\"%u\"", v);
		for (uint32_t i = 0; i < 4; i++)
			put_chunk(&m, i, v);
	}
	__atomic_store_n((bool *)arg, true, __ATOMIC_RELEASE);
	return NULL;
}

static void test_version_race(void)
{
	struct cache_key k = {"b", "flip", ""};
	bool is_done = false;
	long reads = 0, bad = 0;
	pthread_t th;

	pthread_create(&th, NULL, version_writer, &is_done);
	while (!__atomic_load_n(&is_done, __ATOMIC_ACQUIRE)) {
		struct cache_object *o;
		struct cache_chunk *ch;
		unsigned v;

		if (cache_object_lookup(cache, &k, &o))
			continue;
		v = (unsigned)atoi(o->meta.etag + 1);
		for (uint32_t i = 0; i < 4; i++) {
			if (cache_chunk_open(cache, &o->meta, i, &ch))
				continue;
			reads++;
			bad += cache_chunk_verify(ch) != 0 || !chunk_has(ch, v);
			cache_chunk_close(ch);
		}
		cache_object_release(o);
	}
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(reads > 0);
	CU_ASSERT_EQUAL(stats().objects, 1);
	CU_ASSERT_EQUAL(stats().entries, 4);
	CU_ASSERT_EQUAL(count_objects(), 4);
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"chunk count and lengths, first and last byte", test_arithmetic},
	    {"bad chunk size, index past the end, too many chunks", test_bad_opts_and_args},
	    {"a file per identity; another chunk size is another version", test_identities},
	    {"an object of 2.5 chunks: lengths, offsets, states, metadata", test_multi_chunk},
	    {"a zero-length object is one empty chunk", test_empty_object},
	    {"one fill per chunk, followers, chunks fill side by side", test_one_fill_per_chunk},
	    {"a new ETag drops the old version's chunks and fills", test_new_etag},
	    {"invalidate drops every chunk of the key and null version", test_invalidate},
	    {"LRU per chunk under a small capacity", test_lru_per_chunk},
	    {"inline eviction of the filling object's last chunk", test_inline_evicts_own_object},
	    {"restart keeps chunks, drops temp files, other chunk size", test_restart},
	    {"restart keeps the newest version of a key", test_restart_versions},
	    {"verify: once; flipped byte, short and long file dropped", test_verify},
	    {"verify: two readers of a corrupt chunk, then a refill", test_verify_then_refill},
	    {"scrub: finds a flipped byte within its budget", test_scrub},
	    {"scrub: the pass survives chunks moving and leaving", test_scrub_cursor},
	    {"sync: fsyncs the directories commits touched", test_sync},
	    {"directory removed: degraded, absent, refused, recovered", test_dir_removed},
	    {"directory replaced, then put back", test_dir_replaced},
	    {"objects/ removed and recreated", test_objects_removed},
	    {"a chunk whose file went is dropped at open", test_lost_file},
	    {"threads filling and reading chunks, control thread beside", test_threads},
	    {"everyone begins the same chunk at once", test_begin_race},
	    {"readers never mix versions while the key changes", test_version_race},
	};
	bool is_ok = true;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	/* a suite per test: each gets a fresh directory and store */
	for (size_t i = 0; is_ok && i < sizeof(tests) / sizeof(tests[0]); i++) {
		CU_pSuite one = CU_add_suite(tests[i].name, setup, teardown);

		is_ok = one && CU_add_test(one, tests[i].name, tests[i].fn);
	}
	if (!is_ok) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

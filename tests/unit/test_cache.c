/* Unit tests of cache/ on objects of one chunk (no larger than the store's chunk size):
 * the fill, commit and abort paths, the splice and deferred-CRC writes, followers and
 * their wake-ups, invalidation and eviction under open readers, space, recovery, file
 * names and concurrent fills, on real files in a fresh mkdtemp directory per test.
 * Objects of many chunks, versions, verification and the scrubber are in test_chunks.c.
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
#include <zlib.h>

#include "cache.h"

static char dir[64];
static struct cache *cache;
static int log_lines;

static void count_log(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
	log_lines++;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static struct cache_opts opts_cap(uint64_t capacity)
{
	struct cache_opts o = {.capacity = capacity, .log = count_log};

	return o;
}

static int setup(void)
{
	struct cache_opts o = opts_cap(1 << 30);

	strcpy(dir, "/tmp/lota-cache-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	log_lines = 0;
	return cache_open(dir, &o, &cache);
}

static int teardown(void)
{
	cache_close(cache);
	cache = NULL;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fill_body(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(seed * 31 + i * 7 + (i >> 8));
}

/* Fills and commits (b, k, v) as one chunk (chunk_size 0: the store's 16 MiB) of len
 * pseudo-random bytes; 0, the begin verdict when it is not a fill, or a negative errno. */
static int put(const char *b, const char *k, const char *v, size_t len, unsigned seed)
{
	struct cache_meta m = {.id = {b, k, v}, .size = len, .etag = "\"e\""};
	struct cache_fill *f;
	char *body = malloc(len + 1);
	int r;

	fill_body(body, len, seed);
	r = cache_chunk_begin(cache, &m, 0, &f);
	if (r == CACHE_BEGIN_FILL) {
		r = cache_fill_write(f, body, len);
		if (r)
			cache_fill_abort(f, r);
		else
			r = cache_fill_commit(f, NULL);
	}
	free(body);
	return r;
}

/* Opens the one committed chunk of whatever version k holds. -ENOENT: k holds nothing
 * committed, or a version of more than one chunk. */
static int open_one(const struct cache_key *k, struct cache_chunk **ch)
{
	struct cache_object *o;
	int err = cache_object_lookup(cache, k, &o);

	*ch = NULL;
	if (err)
		return err;
	err = o->nchunks == 1 ? cache_chunk_open(cache, &o->meta, 0, ch) : -ENOENT;
	cache_object_release(o);
	return err;
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
		n += count_files(sub);
	}
	return n;
}

static bool fd_has_body(int fd, uint64_t off, size_t len, unsigned seed)
{
	char *want = malloc(len + 1), *got = malloc(len + 1);
	bool ok;

	fill_body(want, len, seed);
	ok = pread(fd, got, len, (off_t)off) == (ssize_t)len && !memcmp(want, got, len);
	free(want);
	free(got);
	return ok;
}

/* The chunk is the whole object: len bytes of seed from offset 0. */
static bool chunk_is_body(const struct cache_chunk *ch, size_t len, unsigned seed)
{
	return ch->offset == 0 && ch->len == len && fd_has_body(ch->fd, ch->body_offset, len, seed);
}

static void test_roundtrip(void)
{
	static const char extra[] = "x-amz-meta-a: 1\r\nx-amz-meta-b: two\r\n";
	struct cache_meta m = {.id = {"bkt", "dir/obj.bin", ""},
			       .size = 100000,
			       .etag = "\"abc\"",
			       .last_modified = "Wed, 01 Jan 2025 00:00:00 GMT",
			       .content_type = "application/octet-stream",
			       .extra = extra,
			       .extra_len = sizeof(extra) - 1};
	struct cache_key k = {"bkt", "dir/obj.bin", NULL};
	char body[100000];
	struct cache_object *o;
	struct cache_chunk *ch;
	struct cache_fill *f;
	struct cache_stats st;
	uint32_t want;

	fill_body(body, sizeof(body), 1);
	want = (uint32_t)crc32(0, (const Bytef *)body, sizeof(body));
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(open_one(&k, &ch), -ENOENT);
	for (size_t off = 0; off < sizeof(body); off += 30000) {
		size_t n = sizeof(body) - off < 30000 ? sizeof(body) - off : 30000;

		CU_ASSERT_EQUAL(cache_fill_write(f, body + off, n), 0);
	}
	CU_ASSERT_EQUAL(cache_fill_commit(f, &want), 0);
	CU_ASSERT_EQUAL_FATAL(cache_object_lookup(cache, &k, &o), 0);
	CU_ASSERT_STRING_EQUAL(o->meta.id.bucket, "bkt");
	CU_ASSERT_STRING_EQUAL(o->meta.id.key, "dir/obj.bin");
	CU_ASSERT_STRING_EQUAL(o->meta.id.version, "");
	CU_ASSERT_STRING_EQUAL(o->meta.etag, "\"abc\"");
	CU_ASSERT_STRING_EQUAL(o->meta.last_modified, "Wed, 01 Jan 2025 00:00:00 GMT");
	CU_ASSERT_STRING_EQUAL(o->meta.content_type, "application/octet-stream");
	CU_ASSERT_EQUAL(o->meta.extra_len, sizeof(extra) - 1);
	CU_ASSERT(!memcmp(o->meta.extra, extra, sizeof(extra) - 1));
	CU_ASSERT_EQUAL(o->meta.size, sizeof(body));
	/* chunk_size 0 on input is the store's, and the object is one chunk of it */
	CU_ASSERT_EQUAL(o->meta.chunk_size, CACHE_CHUNK_SIZE_DEFAULT);
	CU_ASSERT(o->nchunks == 1 && o->ncommitted == 1 && o->nfilling == 0);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_open(cache, &o->meta, 0, &ch), 0);
	cache_object_release(o);
	CU_ASSERT(chunk_is_body(ch, sizeof(body), 1));
	CU_ASSERT_EQUAL(lseek(ch->fd, 0, SEEK_END), (off_t)(ch->body_offset + sizeof(body)));
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), 0);
	cache_chunk_close(ch);
	cache_stats(cache, &st);
	CU_ASSERT_EQUAL(st.entries, 1);
	CU_ASSERT_EQUAL(st.objects, 1);
	CU_ASSERT_EQUAL(st.fills_started, 1);
	CU_ASSERT_EQUAL(st.fills_committed, 1);
	CU_ASSERT_EQUAL(st.bytes_reserved, 0);
	CU_ASSERT(st.bytes_used > sizeof(body));
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
	CU_ASSERT_EQUAL(count_objects(), 1);
}

static void test_bad_commit(void)
{
	struct cache_meta m = {.id = {"b", "k", ""}, .size = 10};
	struct cache_key k = {"b", "k", ""};
	struct cache_chunk *ch;
	struct cache_fill *f;
	struct cache_stats st;
	uint32_t wrong = 1234;

	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(cache_fill_write(f, "12345", 5), 0);
	CU_ASSERT_EQUAL(cache_fill_write(f, "123456", 6), -EFBIG);
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), -EPROTO);
	CU_ASSERT_EQUAL(open_one(&k, &ch), -ENOENT);

	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(cache_fill_write(f, "1234567890", 10), 0);
	CU_ASSERT_EQUAL(cache_fill_commit(f, &wrong), -EBADMSG);
	CU_ASSERT_EQUAL(open_one(&k, &ch), -ENOENT);

	CU_ASSERT_EQUAL(count_files("tmp"), 0);
	CU_ASSERT_EQUAL(count_objects(), 0);
	cache_stats(cache, &st);
	CU_ASSERT_EQUAL(st.entries, 0);
	CU_ASSERT_EQUAL(st.fills_aborted, 2);
	CU_ASSERT_EQUAL(st.bytes_reserved, 0);
	CU_ASSERT_EQUAL(st.bytes_used, 0);
}

static void test_bad_args(void)
{
	char longkey[CACHE_KEY_MAX + 2];
	struct cache_meta m = {.id = {"b", longkey, ""}, .size = 1};
	struct cache_fill *f;

	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f), -ENAMETOOLONG);
	m.id.key = "k";
	m.id.bucket = "";
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f), -EINVAL);
	m.id.bucket = "b";
	m.extra_len = CACHE_EXTRA_MAX + 1;
	m.extra = longkey;
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f), -E2BIG);
	m.extra_len = 0;
	/* one chunk so big that its header and body overflow a uint64_t */
	m.size = UINT64_MAX - 10;
	m.chunk_size = m.size;
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f), -EFBIG);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
}

struct wake_count {
	int n;
};

static void on_wake(void *arg)
{
	__atomic_add_fetch(&((struct wake_count *)arg)->n, 1, __ATOMIC_RELAXED);
}

static void test_abort(void)
{
	struct cache_meta m = {.id = {"b", "k", "v1"}, .size = 100};
	struct cache_key k = {"b", "k", "v1"};
	struct wake_count wc = {0};
	struct cache_fill_status fs;
	struct cache_follower *fl;
	struct cache_chunk *ch;
	struct cache_fill *f;
	struct cache_stats st;

	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_follow(cache, &m, 0, on_wake, &wc, &fl), 0);
	CU_ASSERT_EQUAL(cache_fill_write(f, "abc", 3), 0);
	CU_ASSERT_EQUAL(count_files("tmp"), 1);
	cache_fill_abort(f, -ECONNRESET);
	cache_follower_status(fl, &fs);
	CU_ASSERT_EQUAL(fs.state, CACHE_FILL_ABORTED);
	CU_ASSERT_EQUAL(fs.error, -ECONNRESET);
	CU_ASSERT_EQUAL(fs.written, 3);
	/* 3 bytes are less than CACHE_WAKE_BYTES: only the abort woke the follower. */
	CU_ASSERT_EQUAL(wc.n, 1);
	cache_follower_close(fl);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
	CU_ASSERT_EQUAL(count_objects(), 0);
	CU_ASSERT_EQUAL(open_one(&k, &ch), -ENOENT);
	CU_ASSERT_EQUAL(cache_chunk_follow(cache, &m, 0, NULL, NULL, &fl), -ENOENT);
	cache_stats(cache, &st);
	CU_ASSERT_EQUAL(st.fills_aborted, 1);
	CU_ASSERT_EQUAL(st.bytes_reserved, 0);
}

/* Followers are woken once per CACHE_WAKE_BYTES of body, not once per write. */
static void test_wake_batching(void)
{
	static char part[4096];
	struct cache_meta m = {.id = {"b", "batch", ""}, .size = 2 * CACHE_WAKE_BYTES + 4096};
	struct wake_count wc = {0};
	struct cache_follower *fl;
	struct cache_fill *f;
	int wakes_at_1 = -1;

	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_follow(cache, &m, 0, on_wake, &wc, &fl), 0);
	for (uint64_t w = 0; w < m.size; w += sizeof(part)) {
		CU_ASSERT_EQUAL(cache_fill_write(f, part, sizeof(part)), 0);
		if (w + sizeof(part) == CACHE_WAKE_BYTES - 4096)
			wakes_at_1 = wc.n;
	}
	CU_ASSERT_EQUAL(wakes_at_1, 0);
	CU_ASSERT_EQUAL(wc.n, 3); /* at 256 KiB, at 512 KiB, and the last byte */
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), 0);
	CU_ASSERT_EQUAL(wc.n, 4);
	cache_follower_close(fl);
}

/* A follower sees the fill's metadata and bytes as they come; the bound on followers. */
static void test_followers(void)
{
	struct cache_meta m = {.id = {"b", "big", ""}, .size = 3 * 4096, .etag = "\"x\""};
	struct cache_follower *fl, *extra[CACHE_FILL_MAX_FOLLOWERS];
	struct wake_count wc = {0};
	struct cache_fill_status fs;
	struct cache_fill *f, *f2;
	struct cache_stats st;
	char body[3 * 4096];
	uint64_t off;
	int fd;

	fill_body(body, sizeof(body), 7);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f2), CACHE_BEGIN_FOLLOW);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_follow(cache, &m, 0, on_wake, &wc, &fl), 0);
	CU_ASSERT_STRING_EQUAL(cache_follower_meta(fl)->etag, "\"x\"");
	fd = cache_follower_fd(fl, &off);
	CU_ASSERT(fd >= 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(cache_fill_write(f, body + i * 4096, 4096), 0);
		cache_follower_status(fl, &fs);
		CU_ASSERT_EQUAL(fs.state, CACHE_FILL_RUNNING);
		CU_ASSERT_EQUAL(fs.written, (uint64_t)(i + 1) * 4096);
		CU_ASSERT_EQUAL(fs.size, sizeof(body));
		/* Small writes wake no one until the last byte of the body is there. */
		CU_ASSERT_EQUAL(wc.n, i == 2 ? 1 : 0);
		CU_ASSERT(fd_has_body(fd, off, (size_t)fs.written, 7));
	}
	/* the bound on followers: fl plus MAX - 1 more, then refused */
	for (int i = 0; i < CACHE_FILL_MAX_FOLLOWERS - 1; i++)
		CU_ASSERT_EQUAL(cache_chunk_follow(cache, &m, 0, NULL, NULL, &extra[i]), 0);
	CU_ASSERT_EQUAL(
	    cache_chunk_follow(cache, &m, 0, NULL, NULL, &extra[CACHE_FILL_MAX_FOLLOWERS - 1]),
	    -EUSERS);
	for (int i = 0; i < CACHE_FILL_MAX_FOLLOWERS - 1; i++)
		cache_follower_close(extra[i]);
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), 0);
	CU_ASSERT_EQUAL(wc.n, 2);
	cache_follower_status(fl, &fs);
	CU_ASSERT_EQUAL(fs.state, CACHE_FILL_COMMITTED);
	CU_ASSERT(fd_has_body(fd, off, sizeof(body), 7));
	cache_follower_close(fl);
	cache_stats(cache, &st);
	CU_ASSERT_EQUAL(st.followers, CACHE_FILL_MAX_FOLLOWERS);
	CU_ASSERT_EQUAL(st.followers_refused, 1);
	CU_ASSERT_EQUAL(cache_chunk_follow(cache, &m, 0, NULL, NULL, &fl), -ENOENT);
}

/* Deferred CRC: bytes reported with advance_nocrc are read back at the next write or at
 * commit, and the committed CRC is that of the whole body either way. */
static void test_advance_nocrc(void)
{
	struct cache_meta m = {.id = {"b", "deferred", ""}, .size = 300000};
	struct cache_key k = {"b", "deferred", ""};
	static char body[300000];
	struct cache_chunk *ch;
	struct cache_fill *f;
	uint32_t want;
	uint64_t pos;
	int fd;

	fill_body(body, sizeof(body), 5);
	want = (uint32_t)crc32(0, (const Bytef *)body, sizeof(body));
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(cache_fill_write(f, body, 1000), 0);
	CU_ASSERT_EQUAL(cache_fill_write_pos(f, &fd, &pos), 0);
	CU_ASSERT_EQUAL(pwrite(fd, body + 1000, 99000, (off_t)pos), 99000);
	CU_ASSERT_EQUAL(cache_fill_advance_nocrc(f, 99000), 0);
	/* a buffered write after deferred bytes catches the CRC up first */
	CU_ASSERT_EQUAL(cache_fill_write(f, body + 100000, 100000), 0);
	CU_ASSERT_EQUAL(cache_fill_write_pos(f, &fd, &pos), 0);
	CU_ASSERT_EQUAL(pwrite(fd, body + 200000, 100000, (off_t)pos), 100000);
	CU_ASSERT_EQUAL(cache_fill_advance_nocrc(f, 100000), 0);
	CU_ASSERT_EQUAL(cache_fill_advance_nocrc(f, 1), -EFBIG);
	/* the commit checks the CRC it computed against the whole body's */
	CU_ASSERT_EQUAL(cache_fill_commit(f, &want), 0);
	CU_ASSERT_EQUAL_FATAL(open_one(&k, &ch), 0);
	CU_ASSERT(chunk_is_body(ch, sizeof(body), 5));
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), 0);
	cache_chunk_close(ch);
}

/* The splice path: the caller writes at write_pos itself, then reports with advance. */
static void test_advance(void)
{
	struct cache_meta m = {.id = {"b", "spliced", ""}, .size = 200000};
	struct cache_key k = {"b", "spliced", ""};
	static char body[200000];
	struct cache_chunk *ch;
	struct cache_fill *f;
	uint32_t part, want;
	uint64_t pos;
	int fd;

	fill_body(body, sizeof(body), 3);
	want = (uint32_t)crc32(0, (const Bytef *)body, sizeof(body));
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(cache_fill_write(f, body, 1000), 0);
	CU_ASSERT_EQUAL(cache_fill_write_pos(f, &fd, &pos), 0);
	CU_ASSERT_EQUAL(pwrite(fd, body + 1000, 99000, (off_t)pos), 99000);
	CU_ASSERT_EQUAL(cache_fill_advance(f, 99000, NULL), 0);
	CU_ASSERT_EQUAL(cache_fill_write_pos(f, &fd, &pos), 0);
	CU_ASSERT_EQUAL(pwrite(fd, body + 100000, 100000, (off_t)pos), 100000);
	part = (uint32_t)crc32(0, (const Bytef *)body + 100000, 100000);
	CU_ASSERT_EQUAL(cache_fill_advance(f, 100001, &part), -EFBIG);
	CU_ASSERT_EQUAL(cache_fill_advance(f, 100000, &part), 0);
	CU_ASSERT_EQUAL(cache_fill_commit(f, &want), 0);
	CU_ASSERT_EQUAL_FATAL(open_one(&k, &ch), 0);
	CU_ASSERT(chunk_is_body(ch, sizeof(body), 3));
	CU_ASSERT_EQUAL(cache_chunk_verify(ch), 0);
	cache_chunk_close(ch);
}

/* An open chunk keeps its bytes after its object is invalidated or evicted. */
static void test_reader_survives(void)
{
	struct cache_key k = {"b", "k", ""}, k2 = {"b", "k2", ""};
	struct cache_chunk *ch, *ch2, *ch3;

	CU_ASSERT_EQUAL_FATAL(put("b", "k", "", 5000, 11), 0);
	CU_ASSERT_EQUAL_FATAL(put("b", "k2", "", 5000, 12), 0);
	CU_ASSERT_EQUAL_FATAL(open_one(&k, &ch), 0);
	CU_ASSERT_EQUAL(cache_invalidate(cache, &k), 1);
	CU_ASSERT_EQUAL(cache_invalidate(cache, &k), 0);
	CU_ASSERT_EQUAL(open_one(&k, &ch3), -ENOENT);
	CU_ASSERT(chunk_is_body(ch, 5000, 11));
	cache_chunk_close(ch);
	/* everything goes when the low watermark is below one chunk */
	CU_ASSERT_EQUAL(cache_evict(cache), 0);
	cache_close(cache);
	{
		struct cache_opts op = opts_cap(4096);

		CU_ASSERT_EQUAL_FATAL(cache_open(dir, &op, &cache), 0);
	}
	CU_ASSERT_EQUAL_FATAL(open_one(&k2, &ch2), 0);
	CU_ASSERT_EQUAL(cache_evict(cache), 1);
	CU_ASSERT_EQUAL(open_one(&k2, &ch3), -ENOENT);
	CU_ASSERT_EQUAL(count_objects(), 0);
	CU_ASSERT(chunk_is_body(ch2, 5000, 12));
	cache_chunk_close(ch2);
}

/* Invalidating a version drops it and the null version, not the key's other versions;
 * a fill of an invalidated key completes for its followers but is not kept. */
static void test_invalidate_versions(void)
{
	struct cache_key kv1 = {"b", "k", "v1"}, kv2 = {"b", "k", "v2"}, kn = {"b", "k", ""};
	struct cache_meta m = {.id = kn, .size = 4};
	struct cache_fill_status fs;
	struct cache_follower *fl;
	struct cache_chunk *ch;
	struct cache_fill *f;

	CU_ASSERT_EQUAL_FATAL(put("b", "k", "v1", 10, 1), 0);
	CU_ASSERT_EQUAL_FATAL(put("b", "k", "v2", 10, 2), 0);
	CU_ASSERT_EQUAL_FATAL(put("b", "k", "", 10, 3), 0);
	CU_ASSERT_EQUAL(cache_invalidate(cache, &kv1), 2);
	CU_ASSERT_EQUAL(open_one(&kn, &ch), -ENOENT);
	CU_ASSERT_EQUAL(open_one(&kv1, &ch), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(open_one(&kv2, &ch), 0);
	CU_ASSERT(chunk_is_body(ch, 10, 2));
	cache_chunk_close(ch);

	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_follow(cache, &m, 0, NULL, NULL, &fl), 0);
	CU_ASSERT_EQUAL(cache_fill_write(f, "ab", 2), 0);
	CU_ASSERT_EQUAL(cache_invalidate(cache, &kn), 0);
	CU_ASSERT_EQUAL(cache_fill_write(f, "cd", 2), 0);
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), -ESTALE);
	cache_follower_status(fl, &fs);
	CU_ASSERT_EQUAL(fs.state, CACHE_FILL_DISCARDED);
	CU_ASSERT_EQUAL(fs.written, 4);
	cache_follower_close(fl);
	CU_ASSERT_EQUAL(open_one(&kn, &ch), -ENOENT);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
	CU_ASSERT_EQUAL(count_objects(), 1);
}

/* A new version of the key (here: another size) replaces the held one; a reader of the
 * old one keeps its bytes. */
static void test_replace(void)
{
	struct cache_key k = {"b", "k", ""};
	struct cache_chunk *ch, *old;
	struct cache_stats st;

	CU_ASSERT_EQUAL_FATAL(put("b", "k", "", 1000, 1), 0);
	CU_ASSERT_EQUAL_FATAL(open_one(&k, &old), 0);
	CU_ASSERT_EQUAL_FATAL(put("b", "k", "", 2000, 2), 0);
	CU_ASSERT_EQUAL_FATAL(open_one(&k, &ch), 0);
	CU_ASSERT(chunk_is_body(ch, 2000, 2));
	CU_ASSERT(chunk_is_body(old, 1000, 1));
	cache_chunk_close(ch);
	cache_chunk_close(old);
	cache_stats(cache, &st);
	CU_ASSERT_EQUAL(st.entries, 1);
	CU_ASSERT_EQUAL(st.invalidations, 1);
	CU_ASSERT(st.bytes_used > 2000 && st.bytes_used < 3000);
	CU_ASSERT_EQUAL(count_objects(), 1);
}

static int pressure_calls;

static void on_pressure(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&pressure_calls, 1, __ATOMIC_RELAXED);
}

/* Reopens the store with capacity cap and watermarks high and low (percent). */
static void reopen(uint64_t cap, unsigned high, unsigned low)
{
	struct cache_opts o = {.capacity = cap,
			       .high_pct = high,
			       .low_pct = low,
			       .log = count_log,
			       .on_pressure = on_pressure};

	cache_close(cache);
	cache = NULL;
	pressure_calls = 0;
	CU_ASSERT_EQUAL_FATAL(cache_open(dir, &o, &cache), 0);
}

static uint64_t entry_size(void)
{
	struct cache_stats st;

	cache_stats(cache, &st);
	return st.entries ? st.bytes_used / st.entries : 0;
}

/* Whether ("b", k) is held; opening it makes it the most recently used. */
static bool has(const char *k)
{
	struct cache_key key = {"b", k, ""};
	struct cache_chunk *ch;

	if (open_one(&key, &ch))
		return false;
	cache_chunk_close(ch);
	return true;
}

static void test_lru_evict(void)
{
	char k[8];
	uint64_t s;
	struct cache_stats st;

	CU_ASSERT_EQUAL_FATAL(put("b", "k00", "", 1000, 0), 0);
	s = entry_size();
	reopen(10 * s, 90, 50);
	for (int i = 1; i < 9; i++) {
		snprintf(k, sizeof(k), "k%02d", i);
		CU_ASSERT_EQUAL(put("b", k, "", 1000, i), 0);
	}
	CU_ASSERT(has("k00"));
	CU_ASSERT(has("k02"));
	CU_ASSERT_EQUAL(pressure_calls, 0);
	/* oldest first: k01 k03 k04 k05 k06 k07 k08 k00 k02; low watermark: 5 entries */
	CU_ASSERT_EQUAL(cache_evict(cache), 4);
	cache_stats(cache, &st);
	CU_ASSERT(st.bytes_used <= st.low_watermark);
	CU_ASSERT_EQUAL(st.evictions, 4);
	CU_ASSERT_EQUAL(st.entries, 5);
	CU_ASSERT(!has("k01") && !has("k03") && !has("k04") && !has("k05"));
	CU_ASSERT(has("k06") && has("k07") && has("k08") && has("k00") && has("k02"));
	CU_ASSERT_EQUAL(count_objects(), 5);
	/* past the high watermark a fill evicts inline and signals the control thread */
	for (int i = 10; i < 15; i++) {
		snprintf(k, sizeof(k), "k%02d", i);
		CU_ASSERT_EQUAL(put("b", k, "", 1000, i), 0);
	}
	cache_stats(cache, &st);
	CU_ASSERT_EQUAL(st.entries, 9);
	CU_ASSERT_EQUAL(st.evictions, 5);
	CU_ASSERT(!has("k06"));
	CU_ASSERT_EQUAL(pressure_calls, 1);
}

static void test_space(void)
{
	struct cache_meta m = {.id = {"b", "x", ""}};
	struct cache_fill *f, *f2;
	struct cache_stats st;
	uint64_t s;

	CU_ASSERT_EQUAL_FATAL(put("b", "k00", "", 1000, 0), 0);
	s = entry_size();
	CU_ASSERT_EQUAL(cache_invalidate(cache, &m.id) + cache_evict(cache), 0);
	reopen(10 * s, 90, 80);
	CU_ASSERT(has("k00"));
	m.size = 10 * s;
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f), -EFBIG);
	m.size = 5 * s;
	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	m.id.key = "y";
	/* k00 goes inline, and still two halves do not fit */
	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f2), -ENOSPC);
	CU_ASSERT(!has("k00"));
	CU_ASSERT_EQUAL(pressure_calls, 1);
	cache_stats(cache, &st);
	/* x's header lacks 2 bytes of key and the 3 of k00's ETag */
	CU_ASSERT_EQUAL(st.bytes_reserved, 5 * s + (s - 1000 - 2 - 3));
	CU_ASSERT_EQUAL(st.fills_refused, 2);
	cache_fill_abort(f, 0);
	cache_stats(cache, &st);
	CU_ASSERT_EQUAL(st.bytes_reserved, 0);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
}

/* The path of ("b", k)'s committed file, through the fd an open gives. */
static int obj_path(const char *k, char *path, size_t len)
{
	struct cache_key key = {"b", k, ""};
	struct cache_chunk *ch;
	char link[64];
	ssize_t n;

	if (open_one(&key, &ch))
		return -1;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", ch->fd);
	n = readlink(link, path, len - 1);
	cache_chunk_close(ch);
	if (n < 0)
		return -1;
	path[n] = '\0';
	return 0;
}

static void set_time(const char *k, time_t t)
{
	struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
	char path[512];

	CU_ASSERT_EQUAL_FATAL(obj_path(k, path, sizeof(path)), 0);
	CU_ASSERT_EQUAL(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Open after a crash: a file with a bad header, a truncated one, a misnamed one and a
 * temp file are removed and logged; the LRU is ordered by the files' times. */
static void test_recovery(void)
{
	static const char *keep[] = {"a", "b", "c", "d"};
	static const time_t when[] = {1000, 3000, 2000, 4000};
	char path[512], junk[128];
	struct cache_stats st;
	uint64_t s;
	int fd;

	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(put("b", keep[i], "", 3000, i), 0);
	s = entry_size();
	for (int i = 0; i < 4; i++)
		set_time(keep[i], when[i]);
	CU_ASSERT_EQUAL(put("b", "bad", "", 3000, 9), 0);
	CU_ASSERT_EQUAL(put("b", "trunc", "", 3000, 9), 0);
	CU_ASSERT_EQUAL_FATAL(obj_path("bad", path, sizeof(path)), 0);
	fd = open(path, O_WRONLY);
	CU_ASSERT_EQUAL(pwrite(fd, "X", 1, 50), 1);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(obj_path("trunc", path, sizeof(path)), 0);
	CU_ASSERT_EQUAL(truncate(path, 3000), 0);
	snprintf(junk, sizeof(junk), "%s/tmp/0123456789abcdef0123456789abcdef.1", dir);
	CU_ASSERT_EQUAL(close(open(junk, O_CREAT | O_WRONLY, 0600)), 0);
	snprintf(junk, sizeof(junk), "%s/objects/00/stray", dir);
	CU_ASSERT_EQUAL(close(open(junk, O_CREAT | O_WRONLY, 0600)), 0);
	log_lines = 0;

	/* low watermark: 3 entries; recency from atime: d b c a */
	reopen(5 * s, 90, 60);
	cache_stats(cache, &st);
	CU_ASSERT_EQUAL(st.recovered, 4);
	CU_ASSERT_EQUAL(st.recovery_dropped, 3);
	CU_ASSERT_EQUAL(st.entries, 4);
	CU_ASSERT_EQUAL(st.bytes_used, 4 * s);
	CU_ASSERT_EQUAL(log_lines, 4);
	CU_ASSERT_EQUAL(count_files("tmp"), 0);
	CU_ASSERT_EQUAL(count_objects(), 4);
	CU_ASSERT(!has("bad") && !has("trunc"));
	CU_ASSERT_EQUAL(cache_evict(cache), 1);
	CU_ASSERT(!has("a"));
	for (int i = 1; i < 4; i++) {
		struct cache_key k = {"b", keep[i], ""};
		struct cache_chunk *ch;

		CU_ASSERT_EQUAL_FATAL(open_one(&k, &ch), 0);
		CU_ASSERT(chunk_is_body(ch, 3000, (unsigned)i));
		cache_chunk_close(ch);
	}
}

static bool is_hex_name(const char *name, size_t len)
{
	if (strlen(name) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789abcdef", name[i]))
			return false;
	return true;
}

static void test_names(void)
{
	static const char *key = "secret/../etc/passwd with spaces";
	struct cache_meta m = {.id = {"bkt", key, "ver"}, .size = 1};
	char path[512], *base, tmp[128];
	struct cache_fill *f;
	struct dirent *d;
	DIR *dd;

	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	dd = opendir(tmp);
	while ((d = readdir(dd))) {
		if (d->d_name[0] == '.')
			continue;
		CU_ASSERT(is_hex_name(d->d_name, 32 + 2) ||
			  strchr(d->d_name, '.') == d->d_name + 32);
		CU_ASSERT(!strstr(d->d_name, "secret") && !strstr(d->d_name, "passwd"));
	}
	closedir(dd);
	CU_ASSERT_EQUAL(cache_fill_write(f, "z", 1), 0);
	CU_ASSERT_EQUAL(cache_fill_commit(f, NULL), 0);
	{
		struct cache_key k = {"bkt", key, "ver"};
		struct cache_chunk *ch;
		char link[64];
		ssize_t n;

		CU_ASSERT_EQUAL_FATAL(open_one(&k, &ch), 0);
		snprintf(link, sizeof(link), "/proc/self/fd/%d", ch->fd);
		n = readlink(link, path, sizeof(path) - 1);
		path[n > 0 ? n : 0] = '\0';
		cache_chunk_close(ch);
	}
	CU_ASSERT(!strstr(path, "secret") && !strstr(path, "passwd"));
	base = strrchr(path, '/');
	CU_ASSERT_FATAL(base != NULL);
	CU_ASSERT(is_hex_name(base + 1, 30));
	CU_ASSERT(is_hex_name(base - 2, 2) || (base[-3] == '/' && strlen(base - 2) == 33));
}

#define THREADS 4
#define PER_THREAD 100

static void *filler(void *arg)
{
	long t = (long)arg, bad = 0;
	char k[32];

	for (int i = 0; i < PER_THREAD; i++) {
		struct cache_key key = {"b", k, ""};
		struct cache_chunk *ch;

		snprintf(k, sizeof(k), "t%ld-%d", t, i);
		if (put("b", k, "", 1000 + (size_t)i * 10, (unsigned)(t * 1000 + i))) {
			bad++;
			continue;
		}
		if (open_one(&key, &ch)) {
			bad++;
			continue;
		}
		if (!chunk_is_body(ch, 1000 + (size_t)i * 10, (unsigned)(t * 1000 + i)))
			bad++;
		cache_chunk_close(ch);
	}
	return (void *)bad;
}

/* Threads filling many distinct keys while the control thread's stats and eviction run. */
static void test_concurrent_fills(void)
{
	pthread_t th[THREADS];
	struct cache_stats st;
	void *bad;

	for (long t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, filler, (void *)t);
	for (int i = 0; i < 50; i++) {
		cache_stats(cache, &st);
		cache_evict(cache);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], &bad);
		CU_ASSERT_EQUAL((long)bad, 0);
	}
	cache_stats(cache, &st);
	CU_ASSERT_EQUAL(st.entries, THREADS * PER_THREAD);
	CU_ASSERT_EQUAL(st.fills_committed, THREADS * PER_THREAD);
	CU_ASSERT_EQUAL(count_objects(), THREADS * PER_THREAD);
}

/* A follower in this thread streams a fill written by another thread, woken by it. */
struct stream {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int wakes;
	struct cache_fill *f;
};

#define WRITES 64
#define WRITE_LEN 8192

static void stream_wake(void *arg)
{
	struct stream *s = arg;

	pthread_mutex_lock(&s->mu);
	s->wakes++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void *stream_writer(void *arg)
{
	struct stream *s = arg;
	static char body[WRITES * WRITE_LEN];

	fill_body(body, sizeof(body), 5);
	for (int i = 0; i < WRITES; i++) {
		if (cache_fill_write(s->f, body + i * WRITE_LEN, WRITE_LEN))
			break;
		usleep(200);
	}
	cache_fill_commit(s->f, NULL);
	return NULL;
}

static void test_follow_thread(void)
{
	struct cache_meta m = {.id = {"b", "stream", ""}, .size = WRITES * WRITE_LEN};
	struct stream s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL};
	struct cache_fill_status fs;
	struct cache_follower *fl;
	pthread_t th;
	uint64_t off, seen = 0;
	int fd;

	CU_ASSERT_EQUAL_FATAL(cache_chunk_begin(cache, &m, 0, &s.f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL_FATAL(cache_chunk_follow(cache, &m, 0, stream_wake, &s, &fl), 0);
	fd = cache_follower_fd(fl, &off);
	pthread_create(&th, NULL, stream_writer, &s);
	for (;;) {
		pthread_mutex_lock(&s.mu);
		cache_follower_status(fl, &fs);
		while (fs.state == CACHE_FILL_RUNNING && fs.written == seen) {
			pthread_cond_wait(&s.cv, &s.mu);
			cache_follower_status(fl, &fs);
		}
		pthread_mutex_unlock(&s.mu);
		seen = fs.written;
		if (fs.state != CACHE_FILL_RUNNING)
			break;
	}
	CU_ASSERT_EQUAL(fs.state, CACHE_FILL_COMMITTED);
	CU_ASSERT(fd_has_body(fd, off, WRITES * WRITE_LEN, 5));
	cache_follower_close(fl);
	pthread_join(th, NULL);
	CU_ASSERT(s.wakes >= 2);
	CU_ASSERT(has("stream"));
}

/* A second store on the directory (another lotad) is refused while the first is open:
 * its recovery would remove the first's running fills from tmp/. */
static void test_one_store_per_dir(void)
{
	struct cache_opts o = opts_cap(1 << 30);
	struct cache *second = NULL;
	struct cache_meta m = {.id = {"b", "k", "v"}, .size = 4096, .etag = "\"e\""};
	struct cache_fill *f;

	CU_ASSERT_EQUAL(cache_chunk_begin(cache, &m, 0, &f), CACHE_BEGIN_FILL);
	CU_ASSERT_EQUAL(cache_open(dir, &o, &second), -EBUSY);
	CU_ASSERT_PTR_NULL(second);
	cache_fill_abort(f, 0);
	cache_close(cache);
	cache = NULL;
	CU_ASSERT_EQUAL(cache_open(dir, &o, &cache), 0); /* the lock went with the store */
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"fill, commit, open round trip", test_roundtrip},
	    {"commit with wrong size or CRC leaves nothing", test_bad_commit},
	    {"bounds on keys, metadata, sizes", test_bad_args},
	    {"abort leaves nothing, tells followers", test_abort},
	    {"one fill per chunk, followers see progress, their bound", test_followers},
	    {"splice path: write_pos + advance keeps the CRC", test_advance},
	    {"deferred CRC: advance_nocrc, computed at commit", test_advance_nocrc},
	    {"reader survives invalidate and evict", test_reader_survives},
	    {"invalidate: exact tuple, null version, running fill", test_invalidate_versions},
	    {"a new version replaces the held one", test_replace},
	    {"LRU order and eviction to the low watermark", test_lru_evict},
	    {"reservations, inline eviction, ENOSPC", test_space},
	    {"recovery after a crash", test_recovery},
	    {"file names never contain the key", test_names},
	    {"concurrent fills of distinct keys", test_concurrent_fills},
	    {"follower woken from the writer's thread", test_follow_thread},
	    {"followers woken once per CACHE_WAKE_BYTES", test_wake_batching},
	    {"one store per directory (flock)", test_one_store_per_dir},
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

/* Opening and closing a store: directory layout, capacity and watermarks, recovery of
 * the index from the files on disk (headers only), statistics and logging.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache-int.h"

#define DEFAULT_CAPACITY ((uint64_t)1 << 40)
#define SCAN_BUF 4096
/* Recovery scans the 256 fan-out directories with this many threads: warm, it is bound
 * by syscalls (open, fstat, pread, close per file); cold, by the disk's queue depth. */
#define SCAN_THREADS 16

/* What one recovery thread found, before the entries are ordered into the LRU. */
struct scan {
	struct cache *c;
	int first; /* scans directories first, first + SCAN_THREADS, ... */
	int err;
	uint64_t dropped;
	struct entry **v;
	size_t n, cap;
};

void cache_log(struct cache *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!c->opts.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->opts.log(c->opts.log_arg, line);
}

uint64_t cache_default_capacity(const char *dir)
{
	struct statvfs sv;
	uint64_t fs;

	if (statvfs(dir, &sv))
		return 0;
	if (sv.f_frsize && sv.f_blocks > UINT64_MAX / sv.f_frsize)
		return DEFAULT_CAPACITY;
	fs = (uint64_t)sv.f_blocks * sv.f_frsize;
	fs = fs / 10 * 9;
	return fs < DEFAULT_CAPACITY ? fs : DEFAULT_CAPACITY;
}

static int set_capacity(struct cache *c, const char *dir, const struct cache_opts *o)
{
	unsigned high = o->high_pct ? o->high_pct : 90, low = o->low_pct ? o->low_pct : 80;

	c->capacity = o->capacity ? o->capacity : cache_default_capacity(dir);
	if (!c->capacity || high > 100 || low >= high)
		return -EINVAL;
	/* divide first: capacity may be near UINT64_MAX */
	c->high = c->capacity / 100 * high + c->capacity % 100 * high / 100;
	c->low = c->capacity / 100 * low + c->capacity % 100 * low / 100;
	return 0;
}

static int open_subdir(int parent, const char *name, int *fd)
{
	if (mkdirat(parent, name, 0700) && errno != EEXIST)
		return -errno;
	*fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

/* A crash leaves running fills in tmp/: none of them was committed, all go. */
static int clean_tmp(struct cache *c)
{
	int fd = dup(c->tmpfd), n = 0;
	struct dirent *d;
	DIR *dir;

	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		if (unlinkat(c->tmpfd, d->d_name, 0) == 0)
			n++;
	}
	closedir(dir);
	if (n)
		cache_log(c, "cache: removed %d unfinished fills from tmp/", n);
	return 0;
}

static int scan_push(struct scan *s, struct entry *e)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct entry **v = reallocarray(s->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = e;
	return 0;
}

/* Builds the index entry of one committed file from its header, or says why it is bad. */
static int scan_entry(int fd, const uint8_t hash[CACHE_HASH_LEN], struct entry **out)
{
	uint8_t buf[SCAN_BUF], *big = NULL, want[CACHE_HASH_LEN];
	struct entry_hdr h;
	struct stat st;
	struct cache_key k;
	char tuple[CACHE_BUCKET_MAX + CACHE_KEY_MAX + CACHE_VERSION_MAX + 3];
	int err = fstat(fd, &st) ? -errno : 0;

	if (err)
		goto out;
	err = entry_read(fd, buf, sizeof(buf), &big, &h);
	if (err)
		goto out;
	err = -EBADMSG;
	if (h.size > UINT64_MAX - h.header_len || (uint64_t)st.st_size != h.header_len + h.size)
		goto out;
	memcpy(tuple, h.field[0], h.field_len[0]);
	tuple[h.field_len[0]] = '\0';
	k.bucket = tuple;
	k.key = memcpy(tuple + h.field_len[0] + 1, h.field[1], h.field_len[1]);
	tuple[h.field_len[0] + h.field_len[1] + 1] = '\0';
	k.version = memcpy(tuple + h.field_len[0] + h.field_len[1] + 2, h.field[2], h.field_len[2]);
	tuple[h.field_len[0] + h.field_len[1] + h.field_len[2] + 2] = '\0';
	key_hash(&k, want);
	if (memcmp(want, hash, CACHE_HASH_LEN) || memchr(k.key, 0, h.field_len[1]) ||
	    memchr(k.bucket, 0, h.field_len[0]) || memchr(k.version, 0, h.field_len[2]))
		goto out;
	err = -ENOMEM;
	*out = index_new(hash, k.bucket, h.field_len[0], k.key, h.field_len[1], k.version,
			 h.field_len[2]);
	if (!*out)
		goto out;
	(*out)->file_size = (uint64_t)st.st_size;
	(*out)->stamp = st.st_atime > st.st_mtime ? st.st_atime : st.st_mtime;
	err = 0;
out:
	free(big);
	return err;
}

/* Opens one file of a fan-out directory; bad files are removed and logged, only
 * allocation failures stop the scan. */
static int scan_file(struct cache *c, int dfd, const char *dname, const char *fname, struct scan *s)
{
	uint8_t hash[CACHE_HASH_LEN];
	struct entry *e = NULL;
	int fd = -1, err = hash_from_name(dname, fname, hash);

	if (!err) {
		fd = openat(dfd, fname, O_RDONLY | O_NOATIME | O_CLOEXEC);
		if (fd < 0 && errno == EPERM)
			fd = openat(dfd, fname, O_RDONLY | O_CLOEXEC);
		err = fd < 0 ? -errno : scan_entry(fd, hash, &e);
	}
	if (fd >= 0)
		close(fd);
	if (err == -ENOMEM)
		return err;
	if (err) {
		cache_log(c, "cache: objects/%s/%s: %s: removed", dname, fname, strerror(-err));
		unlinkat(dfd, fname, 0);
		s->dropped++;
		return 0;
	}
	err = scan_push(s, e);
	if (err)
		free(e);
	return err;
}

static int scan_dir(struct cache *c, int i, struct scan *s)
{
	char name[3];
	struct dirent *d;
	DIR *dir;
	int dfd, err;

	snprintf(name, sizeof(name), "%02x", i);
	err = open_subdir(c->objfd, name, &dfd);
	if (err)
		return err;
	dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return -errno;
	}
	while (!err && (d = readdir(dir)))
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			err = scan_file(c, dfd, name, d->d_name, s);
	closedir(dir);
	return err;
}

static int by_recency(const void *a, const void *b)
{
	const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;

	return (x->stamp < y->stamp) - (x->stamp > y->stamp);
}

static void *scan_worker(void *arg)
{
	struct scan *s = arg;

	for (int i = s->first; !s->err && i < 256; i += SCAN_THREADS)
		s->err = scan_dir(s->c, i, s);
	return NULL;
}

/* Scans in parallel, then gathers every thread's findings into s[0]. */
static int scan_all(struct cache *c, struct scan s[SCAN_THREADS])
{
	pthread_t th[SCAN_THREADS];
	bool is_started[SCAN_THREADS];
	int err = 0;

	for (int t = 0; t < SCAN_THREADS; t++) {
		s[t].c = c;
		s[t].first = t;
		is_started[t] = !pthread_create(&th[t], NULL, scan_worker, &s[t]);
	}
	for (int t = 0; t < SCAN_THREADS; t++) {
		if (is_started[t])
			pthread_join(th[t], NULL);
		else
			scan_worker(&s[t]);
		c->st.recovery_dropped += s[t].dropped;
		if (!err)
			err = s[t].err;
	}
	for (int t = 1; t < SCAN_THREADS; t++) {
		while (!err && s[t].n) {
			err = scan_push(&s[0], s[t].v[s[t].n - 1]);
			s[t].n -= !err;
		}
	}
	return err;
}

/* Rebuilds the index, most recent first in the LRU. */
static int recover(struct cache *c)
{
	struct scan s[SCAN_THREADS] = {0};
	int err = clean_tmp(c);

	if (err || (err = scan_all(c, s)))
		goto out;
	if (s[0].n)
		qsort(s[0].v, s[0].n, sizeof(*s[0].v), by_recency);
	for (size_t i = 0; i < s[0].n; i++) {
		index_add(c, s[0].v[i]);
		lru_append(c, s[0].v[i]);
	}
	c->st.recovered = s[0].n;
	s[0].n = 0;
out:
	for (int t = 0; t < SCAN_THREADS; t++) {
		for (size_t i = 0; i < s[t].n; i++)
			free(s[t].v[i]);
		free(s[t].v);
	}
	return err;
}

static void free_store(struct cache *c)
{
	struct entry *e, *next;

	for (e = c->lru_head; e; e = next) {
		next = e->lru_next;
		free(e);
	}
	htab_free(&c->entries);
	htab_free(&c->fills);
	if (c->tmpfd >= 0)
		close(c->tmpfd);
	if (c->objfd >= 0)
		close(c->objfd);
	if (c->dirfd >= 0)
		close(c->dirfd);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int cache_open(const char *dir, const struct cache_opts *opts, struct cache **out)
{
	static const struct cache_opts none;
	struct cache *c = calloc(1, sizeof(*c));
	int err = -ENOMEM;

	*out = NULL;
	if (!c)
		return err;
	c->dirfd = c->objfd = c->tmpfd = -1;
	pthread_mutex_init(&c->mu, NULL);
	c->opts = opts ? *opts : none;
	if ((err = htab_init(&c->entries, 1024)) || (err = htab_init(&c->fills, 64)))
		goto err;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		goto err;
	}
	c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dirfd < 0) {
		err = -errno;
		goto err;
	}
	if ((err = set_capacity(c, dir, &c->opts)) ||
	    (err = open_subdir(c->dirfd, "objects", &c->objfd)) ||
	    (err = open_subdir(c->dirfd, "tmp", &c->tmpfd)) || (err = recover(c)))
		goto err;
	*out = c;
	return 0;
err:
	free_store(c);
	return err;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	free_store(c);
}

void cache_stats(struct cache *c, struct cache_stats *st)
{
	pthread_mutex_lock(&c->mu);
	*st = c->st;
	st->entries = c->entries.count;
	st->fills_running = c->fills.count;
	st->bytes_used = c->used;
	st->bytes_reserved = c->reserved;
	st->capacity = c->capacity;
	st->high_watermark = c->high;
	st->low_watermark = c->low;
	pthread_mutex_unlock(&c->mu);
}

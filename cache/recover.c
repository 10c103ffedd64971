/* Recovery: rebuilding the index from the chunk files on disk (headers only), at open
 * and when a directory comes back (health.c). Bad, truncated and misnamed files are
 * removed, and so are the chunks of a key's older versions: the newest version found
 * (by its chunks' mtime, the time they were committed) is the one a key holds. Also
 * the making and opening of the store's subdirectories, which every scan needs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache-int.h"

#define SCAN_BUF 4096

/* What one recovery thread found. */
struct scan {
	struct cache *c;
	int objfd;
	int first; /* scans directories first, first + SCAN_THREADS, ... */
	int err;
	uint64_t dropped, old_format;
	struct scan_rec *v;
	size_t n, cap;
};

/* A crash leaves running fills in tmp/: none of them was committed, all go. */
int recover_clean_tmp(struct cache *c, int tmpfd)
{
	int fd = dup(tmpfd), n = 0;
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
		if (unlinkat(tmpfd, d->d_name, 0) == 0)
			n++;
	}
	closedir(dir);
	if (n)
		cache_log(c, "cache: removed %d unfinished fills from tmp/", n);
	return 0;
}

static int scan_push(struct scan *s, const struct scan_rec *r)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct scan_rec *v = reallocarray(s->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = *r;
	return 0;
}

/* The chunk's place in its object is consistent with the object's size and chunk size. */
static bool is_layout_ok(const struct entry_hdr *h, uint64_t file_size)
{
	uint64_t n = cache_chunk_count(h->size, h->chunk_size);

	return h->chunk_size && n <= CACHE_CHUNKS_MAX && h->index < n &&
	       h->len == cache_chunk_len(h->size, h->chunk_size, h->index) &&
	       file_size == h->header_len + h->len;
}

/* The object (a fresh one) a valid header names, or -EBADMSG. */
static int scan_obj(const struct entry_hdr *h, struct obj **out)
{
	char s[ENTRY_NFIELDS - 2][CACHE_KEY_MAX + 1];
	struct cache_key k = {s[0], s[1], s[2]};
	struct version v = {.etag = s[3], .size = h->size, .chunk_size = h->chunk_size};

	for (int i = 0; i < 4; i++) {
		if (memchr(h->field[i], 0, h->field_len[i]))
			return -EBADMSG;
		memcpy(s[i], h->field[i], h->field_len[i]);
		s[i][h->field_len[i]] = '\0';
	}
	if (key_check(&k))
		return -EBADMSG;
	v.nchunks = (uint32_t)cache_chunk_count(h->size, h->chunk_size);
	*out = obj_new(&k, &v);
	return *out ? 0 : -ENOMEM;
}

/* Builds the record of one committed file from its header, or says why it is bad. */
static int scan_chunk(int fd, const uint8_t hash[CACHE_HASH_LEN], struct scan_rec *r)
{
	uint8_t buf[SCAN_BUF], *big = NULL, want[CACHE_HASH_LEN];
	struct entry_hdr h;
	struct stat st;
	int err = fstat(fd, &st) ? -errno : 0;

	if (err || (err = entry_read(fd, buf, sizeof(buf), &big, &h)))
		goto out;
	err = -EBADMSG;
	if (!is_layout_ok(&h, (uint64_t)st.st_size) || (err = scan_obj(&h, &r->obj)))
		goto out;
	chunk_hash(r->obj->seed, h.index, want);
	err = -ENOMEM;
	r->ch = memcmp(want, hash, CACHE_HASH_LEN) ? NULL : calloc(1, sizeof(*r->ch));
	if (!r->ch) {
		err = memcmp(want, hash, CACHE_HASH_LEN) ? -EBADMSG : -ENOMEM;
		free(r->obj);
		goto out;
	}
	memcpy(r->ch->hn.hash, hash, CACHE_HASH_LEN);
	r->ch->index = h.index;
	r->ch->header_len = h.header_len;
	r->ch->crc = h.crc;
	r->ch->stamp = st.st_atime > st.st_mtime ? st.st_atime : st.st_mtime;
	r->stamp = r->ch->stamp;
	r->mtime = st.st_mtime;
	memcpy(&r->key, r->obj->hn.hash, sizeof(r->key));
	err = 0;
out:
	free(big);
	return err;
}

/* Opens one file of a fan-out directory; bad files are removed and logged (those of an
 * older format only counted, for one line at the end), only allocation failures stop
 * the scan. */
static int scan_file(struct scan *s, int dfd, const char *dname, const char *fname)
{
	uint8_t hash[CACHE_HASH_LEN];
	struct scan_rec r = {0};
	int fd = -1, err = hash_from_name(dname, fname, hash);

	if (!err) {
		fd = openat(dfd, fname, O_RDONLY | O_NOATIME | O_CLOEXEC);
		if (fd < 0 && errno == EPERM)
			fd = openat(dfd, fname, O_RDONLY | O_CLOEXEC);
		err = fd < 0 ? -errno : scan_chunk(fd, hash, &r);
	}
	if (fd >= 0)
		close(fd);
	if (err == -ENOMEM)
		return err;
	if (err) {
		if (err == -EPROTONOSUPPORT)
			s->old_format++;
		else
			cache_log(s->c, "cache: objects/%s/%s: %s: removed", dname, fname,
				  strerror(-err));
		unlinkat(dfd, fname, 0);
		s->dropped++;
		return 0;
	}
	err = scan_push(s, &r);
	if (err) {
		free(r.ch);
		free(r.obj);
	}
	return err;
}

static int scan_dir(struct scan *s, int i)
{
	char name[3];
	struct dirent *d;
	DIR *dir;
	int dfd, err;

	snprintf(name, sizeof(name), "%02x", i);
	err = open_subdir(s->objfd, name, &dfd);
	if (err)
		return err;
	dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return -errno;
	}
	while (!err && (d = readdir(dir)))
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			err = scan_file(s, dfd, name, d->d_name);
	closedir(dir);
	return err;
}

static void *scan_worker(void *arg)
{
	struct scan *s = arg;

	for (int i = s->first; !s->err && i < 256; i += SCAN_THREADS)
		s->err = scan_dir(s, i);
	return NULL;
}

void recover_free(struct scan_rec *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].ch);
		free(v[i].obj);
	}
	free(v);
}

/* Moves every thread's findings into s[0]. */
static int scan_gather(struct scan s[SCAN_THREADS])
{
	int err = 0;

	for (int t = 1; t < SCAN_THREADS; t++) {
		while (!err && s[t].n) {
			err = scan_push(&s[0], &s[t].v[s[t].n - 1]);
			s[t].n -= !err;
		}
	}
	return err;
}

/* Scans objfd's 256 fan-out directories in parallel; *out holds one record per good
 * file (free with recover_free), counted in the store's recovery statistics. */
int recover_scan(struct cache *c, int objfd, struct scan_rec **out, size_t *n)
{
	struct scan s[SCAN_THREADS] = {0};
	pthread_t th[SCAN_THREADS];
	bool is_started[SCAN_THREADS];
	uint64_t dropped = 0, old = 0;
	int err = 0;

	for (int t = 0; t < SCAN_THREADS; t++) {
		s[t] = (struct scan){.c = c, .objfd = objfd, .first = t};
		is_started[t] = !pthread_create(&th[t], NULL, scan_worker, &s[t]);
	}
	for (int t = 0; t < SCAN_THREADS; t++) {
		if (is_started[t])
			pthread_join(th[t], NULL);
		else
			scan_worker(&s[t]);
		dropped += s[t].dropped;
		old += s[t].old_format;
		if (!err)
			err = s[t].err;
	}
	if (!err)
		err = scan_gather(s);
	for (int t = 1; t < SCAN_THREADS; t++)
		recover_free(s[t].v, s[t].n);
	if (old)
		cache_log(c, "cache: removed %llu files of an older format (whole objects)",
			  (unsigned long long)old);
	pthread_mutex_lock(&c->mu);
	c->st.recovery_dropped += dropped;
	pthread_mutex_unlock(&c->mu);
	*out = s[0].v;
	*n = s[0].n;
	return err;
}

/* Groups records by key (the first 8 bytes of its hash, then the rest), newest first. */
static int by_key_then_newest(const void *a, const void *b)
{
	const struct scan_rec *x = a, *y = b;
	int d = (x->key > y->key) - (x->key < y->key);

	if (!d)
		d = memcmp(x->obj->hn.hash, y->obj->hn.hash, CACHE_HASH_LEN);
	return d ? d : (x->mtime < y->mtime) - (x->mtime > y->mtime);
}

static int by_recency(const void *a, const void *b)
{
	const struct scan_rec *x = a, *y = b;

	return (x->stamp < y->stamp) - (x->stamp > y->stamp);
}

static bool is_same_version(const struct obj *a, const struct obj *b)
{
	struct cache_key k;
	struct version v = {.size = b->size, .chunk_size = b->chunk_size};

	obj_key(b, &k);
	v.etag = k.version + b->version_len + 1;
	return obj_is_key(a, &k) && obj_is_version(a, &v);
}

/* Keeps, of each key, the chunks of its newest version (the first of its group once
 * sorted), which then share that record's object; removes the others' files and
 * records. */
static uint64_t pick_versions(int objfd, struct scan_rec *v, size_t *n)
{
	char name[CACHE_NAME_LEN];
	struct obj *held = NULL;
	uint64_t superseded = 0;
	size_t kept = 0;

	qsort(v, *n, sizeof(*v), by_key_then_newest);
	for (size_t i = 0; i < *n; i++) {
		if (!held || memcmp(held->hn.hash, v[i].obj->hn.hash, CACHE_HASH_LEN)) {
			held = v[i].obj;
		} else if (is_same_version(held, v[i].obj)) {
			free(v[i].obj);
			v[i].obj = held;
		} else {
			hash_name(v[i].ch->hn.hash, name);
			unlinkat(objfd, name, 0);
			free(v[i].ch);
			free(v[i].obj);
			superseded++;
			continue;
		}
		v[kept++] = v[i];
	}
	*n = kept;
	return superseded;
}

/* Indexes what recover_scan found (and frees v), most recent first in the LRU; returns
 * how many chunks of older versions it removed. The index must be empty: at open, or
 * after a degraded store dropped it. */
uint64_t recover_merge_locked(struct cache *c, int objfd, struct scan_rec *v, size_t n)
{
	uint64_t superseded = n ? pick_versions(objfd, v, &n) : 0;

	if (n)
		qsort(v, n, sizeof(*v), by_recency);
	htab_reserve(&c->objs, c->objs.count + n);
	htab_reserve(&c->chunks, c->chunks.count + n);
	for (size_t i = 0; i < n; i++) {
		struct obj *o = v[i].obj;

		if (!o->ncommitted)
			htab_insert(&c->objs, &o->hn);
		v[i].ch->obj = o;
		index_add(c, v[i].ch);
		lru_append(c, v[i].ch);
	}
	free(v);
	c->st.recovered += n;
	c->st.recovery_superseded += superseded;
	return superseded;
}

int open_subdir(int parent, const char *name, int *fd)
{
	if (mkdirat(parent, name, 0700) && errno != EEXIST)
		return -errno;
	*fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

/* Rebuilds the index from tmpfd's and objfd's directories. The fan-out directories it
 * creates are made durable once, so that a commit's durability needs only its own. */
int store_recover(struct cache *c, int objfd, int tmpfd)
{
	struct scan_rec *v = NULL;
	uint64_t superseded;
	size_t n = 0;
	int err = recover_clean_tmp(c, tmpfd);

	if (!err)
		err = recover_scan(c, objfd, &v, &n);
	if (err) {
		recover_free(v, n);
		return err;
	}
	if (!c->opts.is_fdatasync_skipped)
		fsync(objfd);
	pthread_mutex_lock(&c->mu);
	superseded = recover_merge_locked(c, objfd, v, n);
	pthread_mutex_unlock(&c->mu);
	if (superseded)
		cache_log(c, "cache: removed %llu chunks of keys' older versions",
			  (unsigned long long)superseded);
	return 0;
}

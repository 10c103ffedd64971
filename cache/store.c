/* Opening and closing a store: directory layout, capacity, watermarks and chunk size,
 * the index rebuilt from the files on disk (recover.c), and statistics.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache-int.h"

#define DEFAULT_CAPACITY ((uint64_t)1 << 40)

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

	c->chunk_size = o->chunk_size ? o->chunk_size : CACHE_CHUNK_SIZE_DEFAULT;
	if (c->chunk_size < CACHE_CHUNK_SIZE_MIN || c->chunk_size % CACHE_CHUNK_ALIGN)
		return -EINVAL;
	c->capacity = o->capacity ? o->capacity : cache_default_capacity(dir);
	if (!c->capacity || high > 100 || low >= high)
		return -EINVAL;
	/* divide first: capacity may be near UINT64_MAX */
	c->high = c->capacity / 100 * high + c->capacity % 100 * high / 100;
	c->low = c->capacity / 100 * low + c->capacity % 100 * low / 100;
	return 0;
}

static void free_store(struct cache *c)
{
	struct chunk *ch, *next;

	for (ch = c->lru_head; ch; ch = next) {
		next = ch->lru_next;
		free(ch);
	}
	for (size_t i = 0; c->objs.bucket && i < c->objs.nbuckets; i++) {
		for (struct hnode *n = c->objs.bucket[i], *nn; n; n = nn) {
			nn = n->next;
			free(n);
		}
	}
	htab_free(&c->objs);
	htab_free(&c->chunks);
	htab_free(&c->fills);
	if (c->scrub.fd >= 0)
		close(c->scrub.fd);
	if (c->tmpfd >= 0)
		close(c->tmpfd);
	if (c->objfd >= 0)
		close(c->objfd);
	if (c->dirfd >= 0)
		close(c->dirfd);
	if (c->lockfd >= 0)
		close(c->lockfd); /* and its lock goes */
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->ctl_mu);
	free(c->path);
	free(c);
}

/* A second store on the directory would take the first's fills in tmp/ for a dead run's
 * leftovers and remove them: one store per directory, by flock() on dir/lock. Opened
 * read-only: a file open for writing would keep the filesystem from being remounted
 * read-only. A filesystem that cannot lock it so (NFS wants a writable descriptor) is
 * used unlocked, and the log says so. */
static int lock_dir(struct cache *c)
{
	c->lockfd = openat(c->dirfd, "lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	if (c->lockfd >= 0 && flock(c->lockfd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return -EBUSY;
	cache_log(c,
		  "cache: %s: cannot lock the directory (%s): a second lotad on it would not "
		  "be refused",
		  c->path, strerror(errno));
	return 0;
}

int cache_open(const char *dir, const struct cache_opts *opts, struct cache **out)
{
	static const struct cache_opts none;
	struct cache *c = calloc(1, sizeof(*c));
	int err = -ENOMEM;

	*out = NULL;
	if (!c)
		return err;
	c->dirfd = c->objfd = c->tmpfd = c->lockfd = c->scrub.fd = -1;
	c->scrub.pass = 1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->ctl_mu, NULL);
	c->opts = opts ? *opts : none;
	c->path = strdup(dir);
	if (!c->path || (err = htab_init(&c->objs, 1024)) || (err = htab_init(&c->chunks, 1024)) ||
	    (err = htab_init(&c->fills, 64)))
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
	if ((err = set_capacity(c, dir, &c->opts)) || (err = lock_dir(c)) ||
	    (err = health_init(c)) || (err = open_subdir(c->dirfd, "objects", &c->objfd)) ||
	    (err = open_subdir(c->dirfd, "tmp", &c->tmpfd)) ||
	    (err = store_recover(c, c->objfd, c->tmpfd)))
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
	st->entries = c->chunks.count;
	st->objects = c->objs.count;
	st->chunk_size = c->chunk_size;
	st->fills_running = c->nfills;
	st->is_degraded = c->health.is_degraded;
	st->degraded_error = c->health.error;
	st->bytes_used = c->used;
	st->bytes_reserved = c->reserved;
	st->capacity = c->capacity;
	st->high_watermark = c->high;
	st->low_watermark = c->low;
	pthread_mutex_unlock(&c->mu);
}

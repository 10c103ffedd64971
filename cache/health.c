/* The store's watch on its directory (issue 13): noticing that the cache directory went,
 * was replaced or stopped taking writes, degrading (no new fills, no claims on chunks
 * whose files are gone), and recovering by itself when it is usable again. Called from
 * the daemon's control thread; the directory fds keep their numbers (dup2), so workers
 * using them concurrently never see a closed or reused fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache-int.h"

#define PROBE_NAME "probe"

int health_init(struct cache *c)
{
	struct stat st;

	if (fstat(c->dirfd, &st))
		return -errno;
	c->health.dev = st.st_dev;
	c->health.ino = st.st_ino;
	return 0;
}

/* Whether the directory takes new files: what every fill starts with. */
static int probe_write(int tmpfd)
{
	int fd = openat(tmpfd, PROBE_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	close(fd);
	return unlinkat(tmpfd, PROBE_NAME, 0) ? -errno : 0;
}

/* The subdirectory name of dirfd is still the one fd was opened on. */
static int same_subdir(int dirfd, const char *name, int fd)
{
	struct stat a, b;

	if (fstatat(dirfd, name, &a, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (fstat(fd, &b))
		return -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? 0 : -ESTALE;
}

/* 0 if the directory at the path is the store's and takes writes; else why not, with
 * *is_gone when the files the index names are not there any more. */
static int probe_dir(struct cache *c, bool *is_gone)
{
	struct stat st;
	int err = 0;

	*is_gone = true;
	if (stat(c->path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_dev != c->health.dev || st.st_ino != c->health.ino)
		return -ESTALE;
	if ((err = same_subdir(c->dirfd, "objects", c->objfd)) ||
	    (err = same_subdir(c->dirfd, "tmp", c->tmpfd)))
		return err;
	*is_gone = false;
	return probe_write(c->tmpfd);
}

/* Forgets every chunk: their files are gone with the directory. */
static void drop_index_locked(struct cache *c)
{
	while (c->lru_tail) {
		struct chunk *ch = c->lru_tail;
		struct obj *o = ch->obj;

		index_drop(c, ch);
		obj_put_locked(c, o);
		c->st.lost_chunks++;
	}
	c->health.is_index_dropped = true;
}

static const char *reason(int err)
{
	return err == -ESTALE ? "replaced by another directory" : strerror(-err);
}

static void degrade(struct cache *c, int err, bool is_gone)
{
	bool is_new;

	pthread_mutex_lock(&c->mu);
	is_new = !c->health.is_degraded;
	if (is_new) {
		c->health.is_degraded = true;
		c->st.degradations++;
		fill_detach_all_locked(c);
	}
	c->health.error = err;
	if (is_gone && !c->health.is_index_dropped)
		drop_index_locked(c);
	pthread_mutex_unlock(&c->mu);
	if (is_new)
		cache_log(c, "cache: %s: %s: degraded, nothing is cached until it is usable again",
			  c->path, reason(err));
}

/* Opens the directory at the path as the store's new one: on the filesystem it was on at
 * open (a mount point left empty by an unmount is not the cache), with objects/ and tmp/
 * (created if needed) and taking writes. */
static int reopen_dir(struct cache *c, int fds[3], ino_t *ino)
{
	struct stat st;
	int err;

	fds[0] = open(c->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fds[0] < 0)
		return -errno;
	if (fstat(fds[0], &st))
		return -errno;
	if (st.st_dev != c->health.dev)
		return -EXDEV;
	*ino = st.st_ino;
	if ((err = open_subdir(fds[0], "objects", &fds[1])) ||
	    (err = open_subdir(fds[0], "tmp", &fds[2])))
		return err;
	return probe_write(fds[2]);
}

/* Puts the new directory in place of the old one under the same fd numbers and, when the
 * index was dropped or the directory is another one, rebuilds the index from it. */
static int recover_dir(struct cache *c, int fds[3], ino_t ino)
{
	bool is_rescan;
	int err = 0;

	pthread_mutex_lock(&c->mu);
	is_rescan = c->health.is_index_dropped || ino != c->health.ino;
	if (is_rescan && !c->health.is_index_dropped)
		drop_index_locked(c);
	pthread_mutex_unlock(&c->mu);
	if (dup2(fds[0], c->dirfd) < 0 || dup2(fds[1], c->objfd) < 0 || dup2(fds[2], c->tmpfd) < 0)
		return -errno;
	if (is_rescan)
		err = store_recover(c, c->objfd, c->tmpfd);
	if (err)
		return err;
	pthread_mutex_lock(&c->mu);
	c->health.is_degraded = c->health.is_index_dropped = false;
	c->health.error = 0;
	c->health.ino = ino;
	c->st.dir_recoveries++;
	pthread_mutex_unlock(&c->mu);
	cache_log(c, "cache: %s: usable again, caching resumes%s", c->path,
		  is_rescan ? " (rescanned)" : "");
	return 0;
}

static int try_recover(struct cache *c)
{
	int fds[3] = {-1, -1, -1}, err;
	ino_t ino = 0;

	err = reopen_dir(c, fds, &ino);
	if (!err)
		err = recover_dir(c, fds, ino);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return err;
}

int cache_health_check(struct cache *c)
{
	bool is_gone, is_degraded;
	int err;

	pthread_mutex_lock(&c->ctl_mu);
	pthread_mutex_lock(&c->mu);
	is_degraded = c->health.is_degraded;
	pthread_mutex_unlock(&c->mu);
	if (!is_degraded) {
		err = probe_dir(c, &is_gone);
	} else {
		err = try_recover(c);
		is_gone = err == -ENOENT || err == -ENOTDIR || err == -EXDEV;
	}
	if (err)
		degrade(c, err, is_gone);
	pthread_mutex_unlock(&c->ctl_mu);
	return err;
}

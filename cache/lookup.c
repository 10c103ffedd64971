/* Reading committed entries: lookup (with LRU recency) and invalidation by key. A lookup
 * opens the file outside the lock, then checks that its entry is still indexed: while it
 * is, its path names its file (see struct entry), so the fd is the right one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache-int.h"

#define LOOKUP_BUF 4096

/* Finds k, refreshes its recency; says which entry (id) and whether to stamp the file. */
static int lookup_locked(struct cache *c, const struct cache_key *k, uint8_t hash[CACHE_HASH_LEN],
			 uint64_t *id, bool *is_stamp_due)
{
	time_t now = time(NULL);
	struct entry *e;
	int err = -ENOENT;

	pthread_mutex_lock(&c->mu);
	e = index_find(c, k);
	if (e) {
		lru_touch(c, e);
		memcpy(hash, e->hn.hash, CACHE_HASH_LEN);
		*id = e->id;
		*is_stamp_due = now - e->stamp >= CACHE_STAMP_SECS;
		if (*is_stamp_due)
			e->stamp = now;
		err = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return err;
}

static bool is_still_indexed(struct cache *c, const uint8_t hash[CACHE_HASH_LEN], uint64_t id)
{
	struct hnode *n;
	bool yes;

	pthread_mutex_lock(&c->mu);
	n = htab_find(&c->entries, hash);
	yes = n && ((struct entry *)n)->id == id;
	pthread_mutex_unlock(&c->mu);
	return yes;
}

/* The file's atime is the recency a restart sees; O_RDONLY is enough for the owner. */
static void stamp_file(int fd)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_OMIT}};

	futimens(fd, ts);
}

int cache_lookup(struct cache *c, const struct cache_key *k, struct cache_obj **out)
{
	uint8_t hash[CACHE_HASH_LEN], buf[LOOKUP_BUF], *big = NULL;
	char name[CACHE_NAME_LEN];
	struct cache_obj *o = NULL;
	struct entry_hdr h;
	bool is_stamp_due;
	uint64_t id;
	int fd = -1, err = key_check(k);

	*out = NULL;
	if (err || (err = lookup_locked(c, k, hash, &id, &is_stamp_due)))
		goto out;
	hash_name(hash, name);
	fd = openat(c->objfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno == ENOENT ? -ENOENT : -errno;
		goto out;
	}
	err = entry_read(fd, buf, sizeof(buf), &big, &h);
	if (err)
		goto out;
	err = -ENOENT;
	if (!is_still_indexed(c, hash, id) || !entry_tuple_eq(&h, k))
		goto out;
	err = -ENOMEM;
	o = calloc(1, sizeof(*o));
	if (!o || entry_meta_dup(&h, &o->meta, (char **)&o->priv))
		goto out;
	if (is_stamp_due)
		stamp_file(fd);
	o->fd = fd;
	o->body_offset = h.header_len;
	*out = o;
	o = NULL;
	fd = -1;
	err = 0;
out:
	free(o);
	if (fd >= 0)
		close(fd);
	free(big);
	return err;
}

void cache_obj_close(struct cache_obj *o)
{
	if (!o)
		return;
	close(o->fd);
	free(o->priv);
	free(o);
}

static int invalidate_one_locked(struct cache *c, const struct cache_key *k)
{
	struct entry *e = index_find(c, k);

	fill_mark_stale_locked(c, k);
	if (!e)
		return 0;
	unlink_entry_locked(c, e);
	c->st.invalidations++;
	return 1;
}

int cache_invalidate(struct cache *c, const struct cache_key *k)
{
	struct cache_key null_version = {.bucket = k->bucket, .key = k->key, .version = ""};
	int err = key_check(k), n = 0;

	if (err)
		return err;
	pthread_mutex_lock(&c->mu);
	n += invalidate_one_locked(c, k);
	if (k->version && k->version[0])
		n += invalidate_one_locked(c, &null_version);
	pthread_mutex_unlock(&c->mu);
	return n;
}

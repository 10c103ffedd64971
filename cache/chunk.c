/* Reading committed chunks: open (with LRU recency), verification of a chunk's CRC-32
 * and length before its first byte is served, and dropping a chunk found corrupt or
 * gone. An open takes the fd outside the lock, then checks that its chunk is still
 * indexed: while it is, its path names its file (see struct chunk), so the fd is right.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache-int.h"

struct chunk *chunk_by_id_locked(struct cache *c, const uint8_t hash[CACHE_HASH_LEN], uint64_t id)
{
	struct chunk *ch = (struct chunk *)htab_find(&c->chunks, hash);

	return ch && ch->id == id ? ch : NULL;
}

/* The committed chunk index of k's version v. */
static int chunk_ref_locked(struct cache *c, const struct cache_key *k, const struct version *v,
			    uint32_t index, struct chunk **out)
{
	struct obj *o = obj_find_locked(c, k);

	*out = NULL;
	if (!o || !obj_is_version(o, v))
		return -ENOENT;
	if (index >= o->nchunks)
		return -ERANGE;
	*out = obj_chunk_locked(c, o, index);
	return *out ? 0 : -ENOENT;
}

/* Drops chunk (hash, id) if it is still indexed; true if this call dropped it. */
static bool drop_by_id(struct cache *c, const uint8_t hash[CACHE_HASH_LEN], uint64_t id,
		       uint64_t *counter)
{
	struct chunk *ch;
	struct obj *o;

	pthread_mutex_lock(&c->mu);
	ch = chunk_by_id_locked(c, hash, id);
	if (ch) {
		o = ch->obj;
		unlink_chunk_locked(c, ch);
		obj_put_locked(c, o);
		(*counter)++;
	}
	pthread_mutex_unlock(&c->mu);
	return ch != NULL;
}

void chunk_drop_corrupt(struct cache *c, const uint8_t hash[CACHE_HASH_LEN], uint64_t id,
			const char *why)
{
	char name[CACHE_NAME_LEN];

	hash_name(hash, name);
	if (drop_by_id(c, hash, id, &c->st.corrupt_chunks))
		cache_log(c, "cache: objects/%s: corrupt chunk (%s): dropped", name, why);
}

/* An indexed chunk whose file cannot be opened is not claimed any longer: its file went
 * (the directory was removed or replaced) or its disk fails. Resource errors say nothing
 * of the file and drop nothing. */
static bool is_file_lost(int err)
{
	return err == -ENOENT || err == -EACCES || err == -EIO || err == -ENOTDIR ||
	       err == -ESTALE || err == -EPERM;
}

/* Opens chunk (hash, id) read-only; -ENOENT if it is not indexed (any more). */
int chunk_open_fd(struct cache *c, const uint8_t hash[CACHE_HASH_LEN], uint64_t id, int flags)
{
	char name[CACHE_NAME_LEN];
	bool is_indexed;
	int fd, err;

	hash_name(hash, name);
	fd = openat(c->objfd, name, O_RDONLY | O_CLOEXEC | flags);
	if (fd < 0 && errno == EPERM && (flags & O_NOATIME)) /* not the file's owner */
		fd = openat(c->objfd, name, O_RDONLY | O_CLOEXEC | (flags & ~O_NOATIME));
	if (fd < 0) {
		err = -errno;
		if (is_file_lost(err) && drop_by_id(c, hash, id, &c->st.lost_chunks))
			cache_log(c, "cache: objects/%s: open: %s: chunk dropped", name,
				  strerror(-err));
		return is_file_lost(err) ? -ENOENT : err;
	}
	pthread_mutex_lock(&c->mu);
	is_indexed = chunk_by_id_locked(c, hash, id) != NULL;
	pthread_mutex_unlock(&c->mu);
	if (!is_indexed) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/* The file's atime is the recency a restart sees; O_RDONLY is enough for the owner. */
static void stamp_file(int fd)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_OMIT}};

	futimens(fd, ts);
}

/* Finds the chunk, refreshes its recency and copies what the handle needs. */
static int open_locked(struct cache *c, const struct cache_key *k, const struct version *v,
		       uint32_t index, struct chunk_handle *h, bool *is_stamp_due)
{
	struct chunk *ch;
	time_t now = time(NULL);
	int err;

	pthread_mutex_lock(&c->mu);
	err = chunk_ref_locked(c, k, v, index, &ch);
	if (!err) {
		lru_touch(c, ch);
		memcpy(h->hash, ch->hn.hash, CACHE_HASH_LEN);
		h->id = ch->id;
		h->header_len = ch->header_len;
		h->crc = ch->crc;
		h->pub.len = cache_chunk_len(ch->obj->size, ch->obj->chunk_size, index);
		h->pub.offset = (uint64_t)index * ch->obj->chunk_size;
		h->pub.index = index;
		h->pub.is_verified = ch->verified_pass != 0;
		*is_stamp_due = now - ch->stamp >= CACHE_STAMP_SECS;
		if (*is_stamp_due)
			ch->stamp = now;
	}
	pthread_mutex_unlock(&c->mu);
	return err;
}

/* A verified chunk is not read again before it is sent: a file cut or grown since (by
 * hand, a failing disk) is caught by its length, one fstat per open, and dropped. */
static bool is_file_whole(struct cache *c, const struct chunk_handle *h, int fd)
{
	struct stat st;
	char why[96];

	if (fstat(fd, &st) != 0)
		return true; /* says nothing of the file: the read will tell */
	if ((uint64_t)st.st_size == h->header_len + h->pub.len)
		return true;
	snprintf(why, sizeof(why), "file is %lld bytes, %llu expected", (long long)st.st_size,
		 (unsigned long long)(h->header_len + h->pub.len));
	chunk_drop_corrupt(c, h->hash, h->id, why);
	return false;
}

/* Opens chunk index of k's version v. */
static int chunk_open(struct cache *c, const struct cache_key *k, const struct version *v,
		      uint32_t index, struct chunk_handle **out)
{
	struct chunk_handle *h = calloc(1, sizeof(*h));
	bool is_stamp_due = false;
	int fd;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	fd = open_locked(c, k, v, index, h, &is_stamp_due);
	if (!fd)
		fd = chunk_open_fd(c, h->hash, h->id, 0);
	if (fd >= 0 && !is_file_whole(c, h, fd)) {
		close(fd);
		fd = -ENOENT;
	}
	if (fd < 0) {
		free(h);
		return fd;
	}
	if (is_stamp_due)
		stamp_file(fd);
	h->c = c;
	h->pub.fd = fd;
	h->pub.body_offset = h->header_len;
	*out = h;
	return 0;
}

int cache_chunk_open(struct cache *c, const struct cache_meta *m, uint32_t index,
		     struct cache_chunk **out)
{
	struct chunk_handle *h;
	struct version v;
	int err = key_check(&m->id);

	*out = NULL;
	if (err || (err = version_resolve(c, m, &v)) ||
	    (err = chunk_open(c, &m->id, &v, index, &h)))
		return err;
	*out = &h->pub;
	return 0;
}

void cache_chunk_close(struct cache_chunk *ch)
{
	if (!ch)
		return;
	close(ch->fd);
	free(ch);
}

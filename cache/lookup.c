/* What a caller can ask of the store about an object: its metadata (from a running fill,
 * or a committed chunk's header), the state of each of its chunks, and dropping every
 * chunk of a key (invalidation). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache-int.h"

/* Tries of cache_object_lookup when the chunk whose header it reads goes meanwhile. */
#define OBJECT_LOOKUP_TRIES 4

struct object_handle {
	struct cache_object pub;
	char *buf;
};

/* What a running fill or, without one, a committed chunk's header says of k's object.
 * -EAGAIN: the chunk went between the lock and the read; ask again. */
static int object_meta(struct cache *c, const struct cache_key *k, struct object_handle *h)
{
	uint8_t hash[CACHE_HASH_LEN], buf[4096], *big = NULL;
	struct entry_hdr eh;
	struct obj *o;
	uint64_t id = 0;
	int fd, err = -ENOENT;

	pthread_mutex_lock(&c->mu);
	o = obj_find_locked(c, k);
	if (o) {
		h->pub.nchunks = o->nchunks;
		h->pub.ncommitted = o->ncommitted;
		h->pub.nfilling = o->nfills;
		if (o->fills)
			err = meta_dup(&o->fills->meta, &h->pub.meta, &h->buf);
		else if (o->chunks)
			id = o->chunks->id;
		if (id)
			memcpy(hash, o->chunks->hn.hash, CACHE_HASH_LEN);
	}
	pthread_mutex_unlock(&c->mu);
	if (!id)
		return err;
	fd = chunk_open_fd(c, hash, id, 0);
	if (fd < 0)
		return fd == -ENOENT ? -EAGAIN : fd;
	err = entry_read(fd, buf, sizeof(buf), &big, &eh);
	if (!err)
		err = entry_tuple_eq(&eh, k) ? entry_meta_dup(&eh, &h->pub.meta, &h->buf) : -EAGAIN;
	close(fd);
	free(big);
	return err;
}

int cache_object_lookup(struct cache *c, const struct cache_key *k, struct cache_object **out)
{
	struct object_handle *h;
	int err = key_check(k);

	*out = NULL;
	if (err)
		return err;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	err = -EAGAIN;
	for (int i = 0; i < OBJECT_LOOKUP_TRIES && err == -EAGAIN; i++)
		err = object_meta(c, k, h);
	if (err) {
		free(h);
		return err == -EAGAIN ? -ENOENT : err;
	}
	*out = &h->pub;
	return 0;
}

void cache_object_release(struct cache_object *o)
{
	struct object_handle *h = (struct object_handle *)o;

	if (!h)
		return;
	free(h->buf);
	free(h);
}

int cache_chunk_states(struct cache *c, const struct cache_meta *m, uint32_t first, uint32_t n,
		       enum cache_chunk_state *out)
{
	struct version v;
	struct obj *o;
	bool is_held;
	int err = key_check(&m->id);

	if (err || (err = version_resolve(c, m, &v)))
		return err;
	if (first > v.nchunks || n > v.nchunks - first)
		return -ERANGE;
	for (uint32_t i = 0; i < n; i++)
		out[i] = CACHE_CHUNK_ABSENT;
	pthread_mutex_lock(&c->mu);
	o = obj_find_locked(c, &m->id);
	is_held = o && obj_is_version(o, &v);
	if (is_held) {
		for (uint32_t i = 0; i < n; i++) {
			if (obj_chunk_locked(c, o, first + i))
				out[i] = CACHE_CHUNK_COMMITTED;
			else if (obj_fill_locked(c, o, first + i))
				out[i] = CACHE_CHUNK_FILLING;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return is_held ? 0 : -ENOENT;
}

static int invalidate_one_locked(struct cache *c, const struct cache_key *k)
{
	struct obj *o = obj_find_locked(c, k);
	int n;

	if (!o)
		return 0;
	n = obj_drop_locked(c, o);
	c->st.invalidations += (uint64_t)n;
	return n;
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

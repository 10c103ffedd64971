/* Objects: the one version a key holds (ETag, size, chunk size), how it is cut into
 * chunks, what a caller can ask about it (metadata, per-chunk state), and dropping it
 * whole (invalidation, a newer version).
 */
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

uint64_t cache_chunk_count(uint64_t size, uint64_t chunk_size)
{
	if (!chunk_size)
		return 0;
	return size ? (size - 1) / chunk_size + 1 : 1;
}

uint64_t cache_chunk_len(uint64_t size, uint64_t chunk_size, uint64_t index)
{
	uint64_t off;

	if (index >= cache_chunk_count(size, chunk_size))
		return 0;
	off = index * chunk_size; /* index <= (size - 1) / chunk_size: no overflow */
	return size - off < chunk_size ? size - off : chunk_size;
}

uint64_t cache_chunk_size(const struct cache *c)
{
	return c->chunk_size;
}

int version_resolve(const struct cache *c, const struct cache_meta *m, struct version *v)
{
	uint64_t n;

	v->etag = m->etag ? m->etag : "";
	v->size = m->size;
	v->chunk_size = m->chunk_size ? m->chunk_size : c->chunk_size;
	if (strnlen(v->etag, CACHE_ETAG_MAX + 1) > CACHE_ETAG_MAX)
		return -E2BIG;
	n = cache_chunk_count(v->size, v->chunk_size);
	if (n > CACHE_CHUNKS_MAX)
		return -EFBIG;
	v->nchunks = (uint32_t)n;
	return 0;
}

struct obj *obj_new(const struct cache_key *k, const struct version *v)
{
	const char *ver = k->version ? k->version : "";
	size_t b = strlen(k->bucket), kl = strlen(k->key), vl = strlen(ver), el = strlen(v->etag);
	struct obj *o = calloc(1, sizeof(*o) + b + kl + vl + el + 4);
	char *p;

	if (!o)
		return NULL;
	version_hashes(k, v, o->hn.hash, o->seed);
	o->size = v->size;
	o->chunk_size = v->chunk_size;
	o->nchunks = v->nchunks;
	o->bucket_len = (uint16_t)b;
	o->key_len = (uint16_t)kl;
	o->version_len = (uint16_t)vl;
	o->etag_len = (uint16_t)el;
	p = o->strs;
	memcpy(p, k->bucket, b + 1);
	memcpy(p += b + 1, k->key, kl + 1);
	memcpy(p += kl + 1, ver, vl + 1);
	memcpy(p + vl + 1, v->etag, el + 1);
	return o;
}

void obj_key(const struct obj *o, struct cache_key *k)
{
	k->bucket = o->strs;
	k->key = o->strs + o->bucket_len + 1;
	k->version = k->key + o->key_len + 1;
}

static const char *obj_etag(const struct obj *o)
{
	return o->strs + o->bucket_len + o->key_len + o->version_len + 3;
}

bool obj_is_key(const struct obj *o, const struct cache_key *k)
{
	struct cache_key mine;

	obj_key(o, &mine);
	return !strcmp(mine.bucket, k->bucket) && !strcmp(mine.key, k->key) &&
	       !strcmp(mine.version, k->version ? k->version : "");
}

bool obj_is_version(const struct obj *o, const struct version *v)
{
	return o->size == v->size && o->chunk_size == v->chunk_size &&
	       !strcmp(obj_etag(o), v->etag);
}

/* The object of exactly k, or NULL (also when another tuple holds k's hash). */
struct obj *obj_find_locked(struct cache *c, const struct cache_key *k)
{
	uint8_t hash[CACHE_HASH_LEN];
	struct hnode *n;

	key_hash(k, hash);
	n = htab_find(&c->objs, hash);
	return n && obj_is_key((struct obj *)n, k) ? (struct obj *)n : NULL;
}

/* Frees o once it has neither committed chunks nor running fills. */
void obj_put_locked(struct cache *c, struct obj *o)
{
	if (o->ncommitted || o->nfills)
		return;
	htab_remove(&c->objs, &o->hn);
	free(o);
}

/* Drops every committed chunk of o (files removed) and makes its running fills stale;
 * frees o. Returns the number of chunks dropped. */
int obj_drop_locked(struct cache *c, struct obj *o)
{
	int n = 0;

	while (o->chunks) {
		unlink_chunk_locked(c, o->chunks);
		n++;
	}
	while (o->fills)
		fill_detach_locked(c, o->fills);
	obj_put_locked(c, o);
	return n;
}

struct chunk *obj_chunk_locked(struct cache *c, struct obj *o, uint32_t index)
{
	uint8_t hash[CACHE_HASH_LEN];
	struct chunk *ch;

	chunk_hash(o->seed, index, hash);
	ch = (struct chunk *)htab_find(&c->chunks, hash);
	return ch && ch->obj == o && ch->index == index ? ch : NULL;
}

struct cache_fill *obj_fill_locked(struct cache *c, struct obj *o, uint32_t index)
{
	uint8_t hash[CACHE_HASH_LEN];
	struct cache_fill *f;

	chunk_hash(o->seed, index, hash);
	f = (struct cache_fill *)htab_find(&c->fills, hash);
	return f && f->obj == o && f->index == index ? f : NULL;
}

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

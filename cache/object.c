/* Objects: the record of the one version a key holds (its key, ETag, size, chunk size,
 * committed chunks and running fills), found by key and freed when nothing holds it.
 * Looking objects up for callers and dropping them whole are lookup.c's and fill.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "cache-int.h"

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

/* The in-memory index: a hash table from tuple hash to committed entry (and, reusing the
 * same table code, to running fill), plus the LRU list. Everything here runs under the
 * store's lock and does no I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache-int.h"

#define HTAB_MAX_BUCKETS ((size_t)1 << 26)

int htab_init(struct htab *t, size_t nbuckets)
{
	t->bucket = calloc(nbuckets, sizeof(*t->bucket));
	if (!t->bucket)
		return -ENOMEM;
	t->nbuckets = nbuckets;
	t->count = 0;
	return 0;
}

void htab_free(struct htab *t)
{
	free(t->bucket);
	t->bucket = NULL;
}

static size_t slot(const struct htab *t, const uint8_t hash[CACHE_HASH_LEN])
{
	uint64_t v;

	memcpy(&v, hash, sizeof(v));
	return (size_t)(v & (t->nbuckets - 1));
}

struct hnode *htab_find(struct htab *t, const uint8_t hash[CACHE_HASH_LEN])
{
	struct hnode *n;

	for (n = t->bucket[slot(t, hash)]; n; n = n->next)
		if (!memcmp(n->hash, hash, CACHE_HASH_LEN))
			return n;
	return NULL;
}

/* Doubles the table past a load of 1; on allocation failure it keeps the old size and
 * only gets slower, which is why insert cannot fail. */
static void htab_grow(struct htab *t)
{
	struct htab bigger;

	if (t->nbuckets >= HTAB_MAX_BUCKETS || htab_init(&bigger, t->nbuckets * 2))
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct hnode *n = t->bucket[i], *next;

		for (; n; n = next) {
			size_t s = slot(&bigger, n->hash);

			next = n->next;
			n->next = bigger.bucket[s];
			bigger.bucket[s] = n;
		}
	}
	bigger.count = t->count;
	free(t->bucket);
	*t = bigger;
}

void htab_insert(struct htab *t, struct hnode *n)
{
	size_t s;

	if (t->count >= t->nbuckets)
		htab_grow(t);
	s = slot(t, n->hash);
	n->next = t->bucket[s];
	t->bucket[s] = n;
	t->count++;
}

void htab_remove(struct htab *t, struct hnode *n)
{
	struct hnode **pp = &t->bucket[slot(t, n->hash)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			t->count--;
			return;
		}
	}
}

struct entry *index_new(const uint8_t hash[CACHE_HASH_LEN], const char *bucket, size_t blen,
			const char *key, size_t klen, const char *version, size_t vlen)
{
	struct entry *e = calloc(1, sizeof(*e) + blen + klen + vlen + 3);

	if (!e)
		return NULL;
	memcpy(e->hn.hash, hash, CACHE_HASH_LEN);
	e->bucket_len = (uint16_t)blen;
	e->key_len = (uint16_t)klen;
	e->version_len = (uint16_t)vlen;
	memcpy(e->tuple, bucket, blen);
	memcpy(e->tuple + blen + 1, key, klen);
	memcpy(e->tuple + blen + klen + 2, version, vlen);
	return e;
}

static bool entry_is(const struct entry *e, const struct cache_key *k)
{
	const char *v = k->version ? k->version : "";

	return !strcmp(e->tuple, k->bucket) && !strcmp(e->tuple + e->bucket_len + 1, k->key) &&
	       !strcmp(e->tuple + e->bucket_len + e->key_len + 2, v);
}

/* The entry of exactly k, or NULL (also when another tuple holds k's hash). */
struct entry *index_find(struct cache *c, const struct cache_key *k)
{
	uint8_t hash[CACHE_HASH_LEN];
	struct hnode *n;

	key_hash(k, hash);
	n = htab_find(&c->entries, hash);
	if (!n || !entry_is((struct entry *)n, k))
		return NULL;
	return (struct entry *)n;
}

static void lru_unlink(struct cache *c, struct entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

void lru_push_head(struct cache *c, struct entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = e;
	else
		c->lru_tail = e;
	c->lru_head = e;
}

void lru_touch(struct cache *c, struct entry *e)
{
	lru_unlink(c, e);
	lru_push_head(c, e);
}

/* Recovery adds entries most recent first, so they go at the tail. */
void lru_append(struct cache *c, struct entry *e)
{
	e->lru_next = NULL;
	e->lru_prev = c->lru_tail;
	if (c->lru_tail)
		c->lru_tail->lru_next = e;
	else
		c->lru_head = e;
	c->lru_tail = e;
}

/* Indexes e (not in the LRU yet) and counts its bytes. */
void index_add(struct cache *c, struct entry *e)
{
	e->id = ++c->next_id;
	htab_insert(&c->entries, &e->hn);
	c->used += e->file_size;
}

/* Unindexes and frees e; the caller has dealt with its file. */
void index_drop(struct cache *c, struct entry *e)
{
	htab_remove(&c->entries, &e->hn);
	lru_unlink(c, e);
	c->used -= e->file_size;
	free(e);
}

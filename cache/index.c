/* The in-memory index: hash tables (key hash to object, name hash to committed chunk and
 * to running fill), the per-object list of its chunks, and the LRU list of chunks.
 * Everything here runs under the store's lock and does no I/O.
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

/* Resizes the table to nbuckets (a power of two); on allocation failure it keeps the old
 * size and only gets slower, which is why insert cannot fail. */
static void htab_resize(struct htab *t, size_t nbuckets)
{
	struct htab bigger;

	if (nbuckets > HTAB_MAX_BUCKETS || htab_init(&bigger, nbuckets))
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

/* Grows the table once for count nodes, rather than doubling on the way (recovery). */
void htab_reserve(struct htab *t, size_t count)
{
	size_t n = t->nbuckets;

	while (n < count && n < HTAB_MAX_BUCKETS)
		n *= 2;
	if (n > t->nbuckets)
		htab_resize(t, n);
}

/* Doubles the table past a load of 1. */
void htab_insert(struct htab *t, struct hnode *n)
{
	size_t s;

	if (t->count >= t->nbuckets && t->nbuckets < HTAB_MAX_BUCKETS)
		htab_resize(t, t->nbuckets * 2);
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

/* The first node in a slot at or after *slot (updated), NULL past the end: for code that
 * empties a table, removing each node it gets, in one sweep. */
struct hnode *htab_next(const struct htab *t, size_t *slot)
{
	for (; *slot < t->nbuckets; (*slot)++)
		if (t->bucket[*slot])
			return t->bucket[*slot];
	return NULL;
}

uint64_t chunk_file_size(const struct chunk *ch)
{
	return ch->header_len + cache_chunk_len(ch->obj->size, ch->obj->chunk_size, ch->index);
}

/* A chunk leaving the LRU moves the scrubber's cursor on first (toward the head, the
 * way it walks), so a pass neither stops nor skips. */
static void lru_unlink(struct cache *c, struct chunk *ch)
{
	if (c->scrub.cursor == ch)
		c->scrub.cursor = ch->lru_prev;
	if (ch->lru_prev)
		ch->lru_prev->lru_next = ch->lru_next;
	else
		c->lru_head = ch->lru_next;
	if (ch->lru_next)
		ch->lru_next->lru_prev = ch->lru_prev;
	else
		c->lru_tail = ch->lru_prev;
	ch->lru_prev = ch->lru_next = NULL;
}

/* A chunk committed while a scrub pass walks, after its cursor fell off the head, is
 * still part of the pass. */
void lru_push_head(struct cache *c, struct chunk *ch)
{
	if (c->scrub.is_walking && !c->scrub.cursor)
		c->scrub.cursor = ch;
	ch->lru_prev = NULL;
	ch->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = ch;
	else
		c->lru_tail = ch;
	c->lru_head = ch;
}

void lru_touch(struct cache *c, struct chunk *ch)
{
	if (c->lru_head == ch)
		return;
	lru_unlink(c, ch);
	lru_push_head(c, ch);
}

/* Recovery adds chunks most recent first, so they go at the tail. */
void lru_append(struct cache *c, struct chunk *ch)
{
	ch->lru_next = NULL;
	ch->lru_prev = c->lru_tail;
	if (c->lru_tail)
		c->lru_tail->lru_next = ch;
	else
		c->lru_head = ch;
	c->lru_tail = ch;
}

/* Indexes ch (ch->obj set, not in the LRU yet) and counts its bytes. */
void index_add(struct cache *c, struct chunk *ch)
{
	struct obj *o = ch->obj;

	ch->id = ++c->next_id;
	htab_insert(&c->chunks, &ch->hn);
	ch->obj_prev = NULL;
	ch->obj_next = o->chunks;
	if (o->chunks)
		o->chunks->obj_prev = ch;
	o->chunks = ch;
	o->ncommitted++;
	c->used += chunk_file_size(ch);
}

/* Unindexes and frees ch; the caller has dealt with its file, and with its object
 * (obj_put_locked) once it may be empty. */
void index_drop(struct cache *c, struct chunk *ch)
{
	struct obj *o = ch->obj;

	htab_remove(&c->chunks, &ch->hn);
	lru_unlink(c, ch);
	if (ch->obj_prev)
		ch->obj_prev->obj_next = ch->obj_next;
	else
		o->chunks = ch->obj_next;
	if (ch->obj_next)
		ch->obj_next->obj_prev = ch->obj_prev;
	o->ncommitted--;
	c->used -= chunk_file_size(ch);
	free(ch);
}

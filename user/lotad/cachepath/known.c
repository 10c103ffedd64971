/* known.h: a direct-mapped table, one slot per key hash under one mutex; a slot holds
 * its key's identity and a deep copy of the version's metadata. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cachepath/keyid.h"
#include "cachepath/known.h"
#include "cachepath/objmeta.h"

struct known_slot {
	bool is_used;
	uint64_t hash;
	char *id; /* keyid_make() */
	size_t id_len;
	struct objmeta om;
};

struct known {
	pthread_mutex_t mu;
	struct known_slot slot[KNOWN_SLOTS];
};

int known_new(struct known **out)
{
	struct known *kn = calloc(1, sizeof(*kn));

	if (!kn)
		return -ENOMEM;
	pthread_mutex_init(&kn->mu, NULL);
	*out = kn;
	return 0;
}

static void clear_slot(struct known_slot *s)
{
	if (!s->is_used)
		return;
	free(s->id);
	objmeta_free(&s->om);
	memset(s, 0, sizeof(*s));
}

void known_free(struct known *kn)
{
	if (!kn)
		return;
	for (size_t i = 0; i < KNOWN_SLOTS; i++)
		clear_slot(&kn->slot[i]);
	pthread_mutex_destroy(&kn->mu);
	free(kn);
}

/* k's slot, and whether it holds k (id/n/hash: k's identity). */
static struct known_slot *slot_of(struct known *kn, const char *id, size_t n, uint64_t hash,
				  bool *is_k)
{
	struct known_slot *s = &kn->slot[hash % KNOWN_SLOTS];

	*is_k = s->is_used && s->hash == hash && s->id_len == n && memcmp(s->id, id, n) == 0;
	return s;
}

void known_put(struct known *kn, const struct cache_meta *m)
{
	struct known_slot fresh = {.is_used = true};
	struct known_slot *s;
	bool is_k;

	fresh.id_len = keyid_make(&m->id, &fresh.id);
	if (!fresh.id_len)
		return;
	if (objmeta_copy(&fresh.om, m) < 0) {
		free(fresh.id);
		objmeta_free(&fresh.om);
		return;
	}
	fresh.hash = keyid_hash(fresh.id, fresh.id_len);
	pthread_mutex_lock(&kn->mu);
	s = slot_of(kn, fresh.id, fresh.id_len, fresh.hash, &is_k);
	clear_slot(s); /* the key's older version, or another key's: the newer entry wins */
	*s = fresh;
	pthread_mutex_unlock(&kn->mu);
}

int known_get(struct known *kn, const struct cache_key *k, struct objmeta *out)
{
	char *id = NULL;
	size_t n = keyid_make(k, &id);
	struct known_slot *s;
	bool is_k;
	int r = -ENOENT;

	memset(out, 0, sizeof(*out));
	if (!n)
		return -ENOMEM;
	pthread_mutex_lock(&kn->mu);
	s = slot_of(kn, id, n, keyid_hash(id, n), &is_k);
	if (is_k)
		r = objmeta_copy(out, &s->om.meta);
	pthread_mutex_unlock(&kn->mu);
	free(id);
	return r;
}

void known_drop(struct known *kn, const struct cache_key *k)
{
	char *id = NULL;
	size_t n = keyid_make(k, &id);
	struct known_slot *s;
	bool is_k;

	if (!n)
		return;
	pthread_mutex_lock(&kn->mu);
	s = slot_of(kn, id, n, keyid_hash(id, n), &is_k);
	if (is_k)
		clear_slot(s);
	pthread_mutex_unlock(&kn->mu);
	free(id);
}

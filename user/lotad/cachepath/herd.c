/* The per-key leader/waiter table behind herd.h: a small chained hash under its own
 * mutex. Entries live only while a leader is deciding, so the table stays tiny. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cache.h"
#include "cachepath/herd.h"
#include "cachepath/keyid.h"

#define HERD_BUCKETS 256
#define HERD_WAITERS_MAX 4096
#define UNCACHEABLE_SLOTS 4096
#define UNCACHEABLE_TTL_S 30

struct herd_slot {
	struct herd_slot *next;
	uint64_t hash;
	char *id; /* bucket \0 key \0 version */
	size_t id_len;
	struct herd_waiter *waiters;
	unsigned nwaiters;
};

struct herd {
	pthread_mutex_t mu;
	struct herd_slot *table[HERD_BUCKETS];
	/* Direct-mapped memory of keys found uncacheable: a collision only costs a herd. */
	struct {
		uint64_t hash;
		time_t until;
	} uncacheable[UNCACHEABLE_SLOTS];
};

struct herd *herd_new(void)
{
	struct herd *h = calloc(1, sizeof(*h));

	if (h)
		pthread_mutex_init(&h->mu, NULL);
	return h;
}

/* Every waiter has left and every leader released (the workers have stopped). */
void herd_free(struct herd *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < HERD_BUCKETS; i++) {
		while (h->table[i]) {
			struct herd_slot *s = h->table[i];

			h->table[i] = s->next;
			free(s->id);
			free(s);
		}
	}
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static struct herd_slot **find(struct herd *hd, const char *id, size_t n, uint64_t h)
{
	struct herd_slot **pp = &hd->table[h % HERD_BUCKETS];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->id_len == n && memcmp((*pp)->id, id, n) == 0)
			break;
	return pp;
}

int herd_join(struct herd *hd, const struct cache_key *k, struct herd_waiter *w)
{
	char *id = NULL;
	size_t n = keyid_make(k, &id);
	uint64_t h = keyid_hash(id, n);
	struct herd_slot **pp, *s;
	int r = 1;

	if (!n)
		return 2; /* no memory: behave as without coalescing */
	pthread_mutex_lock(&hd->mu);
	pp = find(hd, id, n, h);
	if (hd->uncacheable[h % UNCACHEABLE_SLOTS].hash == h &&
	    hd->uncacheable[h % UNCACHEABLE_SLOTS].until > time(NULL)) {
		r = 2;
	} else if (*pp) {
		s = *pp;
		if (s->nwaiters >= HERD_WAITERS_MAX) {
			r = -EUSERS;
		} else {
			w->next = s->waiters;
			w->slot = s;
			w->h = hd;
			s->waiters = w;
			s->nwaiters++;
			r = 0;
		}
	} else if ((s = calloc(1, sizeof(*s))) != NULL) {
		s->hash = h;
		s->id = id;
		s->id_len = n;
		id = NULL;
		*pp = s;
	}
	pthread_mutex_unlock(&hd->mu);
	free(id);
	return r;
}

void herd_release(struct herd *hd, const struct cache_key *k)
{
	char *id = NULL;
	size_t n = keyid_make(k, &id);
	struct herd_slot **pp, *s = NULL;
	struct herd_waiter *w, *next;

	if (!n)
		return;
	pthread_mutex_lock(&hd->mu);
	pp = find(hd, id, n, keyid_hash(id, n));
	if (*pp) {
		s = *pp;
		*pp = s->next;
		/* Wake under the lock: a waiter leaving concurrently must not free w first. */
		for (w = s->waiters; w; w = next) {
			next = w->next;
			w->slot = NULL;
			event_active(w->wake, EV_READ, 0);
		}
	}
	pthread_mutex_unlock(&hd->mu);
	if (s)
		free(s->id);
	free(s);
	free(id);
}

void herd_note_uncacheable(struct herd *hd, const struct cache_key *k)
{
	char *id = NULL;
	size_t n = keyid_make(k, &id);
	uint64_t h = keyid_hash(id, n);

	if (!n)
		return;
	pthread_mutex_lock(&hd->mu);
	hd->uncacheable[h % UNCACHEABLE_SLOTS].hash = h;
	hd->uncacheable[h % UNCACHEABLE_SLOTS].until = time(NULL) + UNCACHEABLE_TTL_S;
	pthread_mutex_unlock(&hd->mu);
	free(id);
}

void herd_leave(struct herd_waiter *w)
{
	struct herd_waiter **pp;

	if (!w->h)
		return;
	pthread_mutex_lock(&w->h->mu);
	if (w->slot) {
		for (pp = &w->slot->waiters; *pp; pp = &(*pp)->next) {
			if (*pp == w) {
				*pp = w->next;
				w->slot->nwaiters--;
				break;
			}
		}
		w->slot = NULL;
	}
	pthread_mutex_unlock(&w->h->mu);
}

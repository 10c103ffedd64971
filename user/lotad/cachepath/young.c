/* young.h: a direct-mapped table of version hashes under one mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cachepath/young.h"
#include "http.h"

struct young {
	pthread_mutex_t mu;
	uint64_t slot[YOUNG_SLOTS]; /* a marked version's hash; 0: free */
};

int young_new(struct young **out)
{
	struct young *y = calloc(1, sizeof(*y));

	if (!y)
		return -ENOMEM;
	pthread_mutex_init(&y->mu, NULL);
	*out = y;
	return 0;
}

void young_free(struct young *y)
{
	if (!y)
		return;
	pthread_mutex_destroy(&y->mu);
	free(y);
}

/* FNV-1a of s and its terminating NUL, continuing from h. */
static uint64_t hash_on(uint64_t h, const char *s)
{
	do {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	} while (*s++);
	return h;
}

/* The version's identity and ETag, hashed (every validated read asks: no allocation);
 * never 0. */
static uint64_t version_hash(const struct cache_meta *m)
{
	uint64_t h = 1469598103934665603ULL;

	h = hash_on(h, m->id.bucket ? m->id.bucket : "");
	h = hash_on(h, m->id.key ? m->id.key : "");
	h = hash_on(h, m->id.version ? m->id.version : "");
	h = hash_on(h, m->etag ? m->etag : "");
	return h ? h : 1;
}

/* Does resp's Date fall within m's Last-Modified second (or before it)? False when either
 * is missing or unreadable: then nothing can be told, and nothing is marked. */
static bool is_within_lm_second(const struct cache_meta *m, const struct http_msg *resp)
{
	const struct http_header *date = http_find(resp, "date");
	time_t now, lm;

	return date && m->last_modified && m->last_modified[0] &&
	       http_parse_date(date->value.p, date->value.n, &now) == 0 &&
	       http_parse_date(m->last_modified, strlen(m->last_modified), &lm) == 0 && now <= lm;
}

static void set(struct young *y, const struct cache_meta *m, bool mark)
{
	uint64_t h = version_hash(m);
	uint64_t *s;

	if (!h)
		return;
	pthread_mutex_lock(&y->mu);
	s = &y->slot[h % YOUNG_SLOTS];
	if (mark)
		*s = h;
	else if (*s == h)
		*s = 0;
	pthread_mutex_unlock(&y->mu);
}

void young_note(struct young *y, const struct cache_meta *m, const struct http_msg *resp)
{
	if (y && is_within_lm_second(m, resp))
		set(y, m, true);
}

bool young_is(struct young *y, const struct cache_meta *m)
{
	uint64_t h;
	bool is;

	if (!y || !(h = version_hash(m)))
		return false;
	pthread_mutex_lock(&y->mu);
	is = y->slot[h % YOUNG_SLOTS] == h;
	pthread_mutex_unlock(&y->mu);
	return is;
}

void young_forget(struct young *y, const struct cache_meta *m)
{
	if (y)
		set(y, m, false);
}

void young_checked(struct young *y, const struct cache_meta *m, const struct http_msg *resp)
{
	if (y && !is_within_lm_second(m, resp))
		set(y, m, false);
}

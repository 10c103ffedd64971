/* The origins of lotad and which one each bucket's requests go to. The pins and the
 * region list are fixed at start (read without a lock); the learned locations are a
 * fixed array of slots chained from a hash table, under one mutex, reused oldest first. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "exchange/origin.h"
#include "exchange/origins.h"
#include "lotad.h"
#include "s3.h"

#define HASH_SIZE (2 * ORIGINS_BUCKETS_MAX)
#define ITEM_MAX 1100 /* one "name=URL" of a list */

struct pin {
	char bucket[S3_BUCKET_MAX];
	struct origin *o;
};

struct region {
	char name[ORIGINS_REGION_MAX];
	struct origin *o;
};

struct slot {
	char bucket[S3_BUCKET_MAX];
	struct origin *o; /* NULL while learning */
	time_t expires;
	bool is_used, is_learning;
	int next; /* the hash chain, -1 at its end */
	unsigned nwaiters;
	struct event *waiters[ORIGINS_WAITERS_MAX];
};

struct origins {
	struct origin *all[ORIGINS_MAX]; /* all[0] is the default, the caller's */
	size_t n;
	struct region regions[ORIGINS_MAX];
	size_t nregions;
	struct pin pins[ORIGINS_MAX];
	size_t npins;
	pthread_mutex_t mu; /* guards what follows */
	int heads[HASH_SIZE];
	struct slot *slots;
	unsigned hand; /* the next slot to reuse */
};

static unsigned hash_of(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % HASH_SIZE;
}

/* The origin of url: one already made for it, or a new one. */
static struct origin *origin_of_url(struct origins *t, const char *url, const char *ca_file,
				    char *err, size_t errlen)
{
	struct origin *o;

	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->all[i]->url, url) == 0)
			return t->all[i];
	if (t->n == ORIGINS_MAX) {
		snprintf(err, errlen, "more than %d distinct origins", ORIGINS_MAX);
		return NULL;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (origin_init(o, url, ca_file, err, errlen) < 0) {
		origin_free(o);
		free(o);
		return NULL;
	}
	o->connect_ms = t->all[0]->connect_ms; /* origin-timeout's, until origin-timeouts */
	o->read_ms = t->all[0]->read_ms;
	t->all[t->n++] = o;
	return o;
}

static bool is_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

/* One "name=URL" of a list: name and url point into item. */
static int split_item(char *item, char **name, char **url)
{
	char *eq = strchr(item, '=');

	if (!eq)
		return -EINVAL;
	*eq = '\0';
	*name = item;
	*url = eq + 1;
	while (**name == ' ')
		(*name)++;
	for (char *e = eq; e > *name && e[-1] == ' '; e--)
		e[-1] = '\0';
	while (**url == ' ')
		(*url)++;
	for (char *e = *url + strlen(*url); e > *url && e[-1] == ' '; e--)
		e[-1] = '\0';
	return 0;
}

static int add_region(struct origins *t, const char *name, struct origin *o, char *err,
		      size_t errlen)
{
	if (origins_of_region(t, name)) {
		snprintf(err, errlen, "region-origins: region '%s' is named twice", name);
		return -EINVAL;
	}
	snprintf(t->regions[t->nregions].name, ORIGINS_REGION_MAX, "%s", name);
	t->regions[t->nregions++].o = o;
	if (!o->region[0])
		snprintf(o->region, sizeof(o->region), "%s", name); /* lotad signs for it */
	return 0;
}

static int add_pin(struct origins *t, const char *bucket, struct origin *o, char *err,
		   size_t errlen)
{
	for (size_t i = 0; i < t->npins; i++)
		if (strcmp(t->pins[i].bucket, bucket) == 0) {
			snprintf(err, errlen, "bucket-origins: bucket '%s' is named twice", bucket);
			return -EINVAL;
		}
	snprintf(t->pins[t->npins].bucket, S3_BUCKET_MAX, "%s", bucket);
	t->pins[t->npins++].o = o;
	return 0;
}

/* Parses "name=URL,..." of key into regions (is_region) or pins. */
static int parse_list(struct origins *t, const char *key, const char *list, bool is_region,
		      const char *ca_file, char *err, size_t errlen)
{
	char item[ITEM_MAX], *name, *url, e[512];
	struct origin *o;

	while (*list) {
		size_t n = strcspn(list, ",");

		if (n >= sizeof(item) || (is_region ? t->nregions : t->npins) == ORIGINS_MAX) {
			snprintf(err, errlen, "%s: too long or too many entries", key);
			return -EINVAL;
		}
		memcpy(item, list, n);
		item[n] = '\0';
		list += n + (list[n] == ',');
		if (split_item(item, &name, &url) < 0 ||
		    !is_name_ok(name, is_region ? ORIGINS_REGION_MAX : S3_BUCKET_MAX) || !*url) {
			snprintf(err, errlen, "%s: '%s' is not NAME=URL", key, item);
			return -EINVAL;
		}
		o = origin_of_url(t, url, ca_file, e, sizeof(e));
		if (!o) {
			snprintf(err, errlen, "%s: %s: %s", key, name, e);
			return -EINVAL;
		}
		if ((is_region ? add_region : add_pin)(t, name, o, err, errlen) < 0)
			return -EINVAL;
	}
	return 0;
}

/* A duration: N (seconds, as origin-timeout), Ns or Nms, 1 ms to a day. */
static int parse_ms(const char *s, const char *end, unsigned *out)
{
	uint64_t v = 0, mult = 1000;
	const char *p = s;

	for (; p < end && *p >= '0' && *p <= '9'; p++)
		if ((v = v * 10 + (uint64_t)(*p - '0')) > ORIGIN_TIMEOUT_MAX_MS)
			return -EINVAL;
	if (p == s)
		return -EINVAL;
	if (end - p == 2 && memcmp(p, "ms", 2) == 0)
		mult = 1;
	else if (!(end - p == 1 && *p == 's') && p != end)
		return -EINVAL;
	v *= mult;
	if (v == 0 || v > ORIGIN_TIMEOUT_MAX_MS)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* "CONNECT/READ" into o's timeouts; a connect longer than a read wait could not be one. */
static int parse_timeouts(const char *v, unsigned *connect_ms, unsigned *read_ms)
{
	const char *slash = strchr(v, '/');

	if (!slash || parse_ms(v, slash, connect_ms) < 0 ||
	    parse_ms(slash + 1, slash + 1 + strlen(slash + 1), read_ms) < 0 ||
	    *connect_ms > *read_ms)
		return -EINVAL;
	return 0;
}

/* The origin an origin-timeouts entry names: "default", or a region's. */
static struct origin *origin_named(struct origins *t, const char *name)
{
	return strcmp(name, "default") == 0 ? t->all[0] : origins_of_region(t, name);
}

int origins_set_timeouts(struct origins *t, const char *list, char *err, size_t errlen)
{
	char item[ITEM_MAX], *name, *value;
	bool is_set[ORIGINS_MAX] = {false};

	while (*list) {
		size_t n = strcspn(list, ","), i;
		struct origin *o;
		unsigned c, r;

		if (n >= sizeof(item)) {
			snprintf(err, errlen, "origin-timeouts: entry too long");
			return -EINVAL;
		}
		memcpy(item, list, n);
		item[n] = '\0';
		list += n + (list[n] == ',');
		if (split_item(item, &name, &value) < 0 || parse_timeouts(value, &c, &r) < 0) {
			snprintf(err, errlen,
				 "origin-timeouts: '%s' is not NAME=CONNECT/READ (e.g. 2s/30s, "
				 "500ms/10s; connect at most read, both 1ms to 1d)",
				 item);
			return -EINVAL;
		}
		if (!(o = origin_named(t, name))) {
			snprintf(err, errlen,
				 "origin-timeouts: '%s' is neither default nor a region of "
				 "region-origins",
				 name);
			return -EINVAL;
		}
		for (i = 0; t->all[i] != o; i++)
			;
		if (is_set[i]) {
			snprintf(err, errlen, "origin-timeouts: origin %s is named twice", o->url);
			return -EINVAL;
		}
		is_set[i] = true;
		o->connect_ms = c;
		o->read_ms = r;
	}
	return 0;
}

int origins_new(struct origin *def, const char *regions, const char *pins, const char *ca_file,
		struct origins **out, char *err, size_t errlen)
{
	struct origins *t = calloc(1, sizeof(*t));
	int r = -ENOMEM;

	if (!t || !(t->slots = calloc(ORIGINS_BUCKETS_MAX, sizeof(*t->slots))))
		goto fail;
	t->all[t->n++] = def;
	memset(t->heads, 0xff, sizeof(t->heads)); /* -1: empty */
	pthread_mutex_init(&t->mu, NULL);
	r = parse_list(t, "region-origins", regions, true, ca_file, err, errlen);
	if (r == 0)
		r = parse_list(t, "bucket-origins", pins, false, ca_file, err, errlen);
	if (r == 0) {
		*out = t;
		return 0;
	}
	origins_free(t);
	return r;
fail:
	if (t)
		free(t->slots);
	free(t);
	snprintf(err, errlen, "origins: out of memory");
	return r;
}

void origins_free(struct origins *t)
{
	if (!t)
		return;
	for (size_t i = 1; i < t->n; i++) {
		origin_free(t->all[i]);
		free(t->all[i]);
	}
	pthread_mutex_destroy(&t->mu);
	free(t->slots);
	free(t);
}

bool origins_is_learning(const struct origins *t)
{
	return t && t->nregions > 0;
}

struct origin *origins_of_region(struct origins *t, const char *region)
{
	for (size_t i = 0; i < t->nregions; i++)
		if (strcmp(t->regions[i].name, region) == 0)
			return t->regions[i].o;
	return NULL;
}

static struct origin *pinned(const struct origins *t, const char *bucket)
{
	for (size_t i = 0; i < t->npins; i++)
		if (strcmp(t->pins[i].bucket, bucket) == 0)
			return t->pins[i].o;
	return NULL;
}

static struct slot *find(struct origins *t, const char *bucket)
{
	for (int i = t->heads[hash_of(bucket)]; i >= 0; i = t->slots[i].next)
		if (strcmp(t->slots[i].bucket, bucket) == 0)
			return &t->slots[i];
	return NULL;
}

static void unlink_slot(struct origins *t, struct slot *s)
{
	int *p = &t->heads[hash_of(s->bucket)];
	int idx = (int)(s - t->slots);

	while (*p >= 0 && *p != idx)
		p = &t->slots[*p].next;
	if (*p == idx)
		*p = s->next;
	s->is_used = false;
}

/* A slot for bucket: a free one, or the oldest that no request waits on; NULL if every
 * slot is being learned. */
static struct slot *take_slot(struct origins *t, const char *bucket)
{
	for (unsigned tries = 0; tries < ORIGINS_BUCKETS_MAX; tries++) {
		struct slot *s = &t->slots[t->hand];
		unsigned h;

		t->hand = (t->hand + 1) % ORIGINS_BUCKETS_MAX;
		if (s->is_used && s->is_learning)
			continue;
		if (s->is_used)
			unlink_slot(t, s);
		memset(s, 0, sizeof(*s));
		snprintf(s->bucket, sizeof(s->bucket), "%s", bucket);
		s->is_used = true;
		h = hash_of(bucket);
		s->next = t->heads[h];
		t->heads[h] = (int)(s - t->slots);
		return s;
	}
	return NULL;
}

static bool is_fresh(const struct slot *s, time_t now)
{
	return s && s->o && now < s->expires;
}

struct origin *origins_lookup(struct origins *t, const char *bucket)
{
	struct origin *o = pinned(t, bucket);
	struct slot *s;

	if (o || !t->nregions || !bucket[0])
		return o ? o : t->all[0];
	pthread_mutex_lock(&t->mu);
	s = find(t, bucket);
	o = s && s->o ? s->o : t->all[0]; /* a stale entry still says more than nothing */
	pthread_mutex_unlock(&t->mu);
	return o;
}

struct origin *origins_for(const struct lotad *d, const char *bucket)
{
	return d->origins ? origins_lookup(d->origins, bucket) : d->origin;
}

bool origins_needs_learning(struct origins *t, const char *bucket, time_t now)
{
	bool is_needed;

	if (!t->nregions || !bucket[0] || pinned(t, bucket))
		return false;
	pthread_mutex_lock(&t->mu);
	is_needed = !is_fresh(find(t, bucket), now);
	pthread_mutex_unlock(&t->mu);
	return is_needed;
}

enum origins_verdict origins_claim(struct origins *t, const char *bucket, time_t now,
				   struct event *waiter)
{
	enum origins_verdict v = ORIGINS_LEARN;
	struct slot *s;

	if (!t->nregions || !bucket[0] || pinned(t, bucket))
		return ORIGINS_KNOWN;
	pthread_mutex_lock(&t->mu);
	s = find(t, bucket);
	if (is_fresh(s, now)) {
		v = ORIGINS_KNOWN;
	} else if (s && s->is_learning) {
		/* Too many waiting already: this one asks too (a second answer is the same). */
		if (waiter && s->nwaiters < ORIGINS_WAITERS_MAX) {
			s->waiters[s->nwaiters++] = waiter;
			v = ORIGINS_WAIT;
		}
	} else if (s || (s = take_slot(t, bucket)) != NULL) {
		s->is_learning = true;
	}
	pthread_mutex_unlock(&t->mu);
	return v;
}

void origins_unwait(struct origins *t, const char *bucket, struct event *waiter)
{
	struct slot *s;

	pthread_mutex_lock(&t->mu);
	s = find(t, bucket);
	for (unsigned i = 0; s && i < s->nwaiters; i++)
		if (s->waiters[i] == waiter) {
			s->waiters[i] = s->waiters[--s->nwaiters];
			break;
		}
	pthread_mutex_unlock(&t->mu);
}

static void wake_all(struct slot *s)
{
	for (unsigned i = 0; i < s->nwaiters; i++)
		event_active(s->waiters[i], EV_READ, 0);
	s->nwaiters = 0;
}

void origins_abandon(struct origins *t, const char *bucket)
{
	struct slot *s;

	pthread_mutex_lock(&t->mu);
	s = find(t, bucket);
	if (s && s->is_learning) {
		wake_all(s);
		unlink_slot(t, s);
	}
	pthread_mutex_unlock(&t->mu);
}

static void set_slot(struct origins *t, const char *bucket, struct origin *o, time_t expires)
{
	struct slot *s = find(t, bucket);

	if (!s)
		s = take_slot(t, bucket);
	if (!s)
		return;
	s->o = o;
	s->expires = expires;
	s->is_learning = false;
	wake_all(s);
}

struct origin *origins_learned(struct origins *t, const char *bucket, const char *region,
			       time_t now)
{
	struct origin *o = region ? origins_of_region(t, region[0] ? region : "us-east-1") : NULL;
	time_t ttl = o ? ORIGINS_TTL_S : ORIGINS_UNKNOWN_TTL_S;

	if (!o)
		o = t->all[0];
	pthread_mutex_lock(&t->mu);
	set_slot(t, bucket, o, now + ttl);
	pthread_mutex_unlock(&t->mu);
	return o;
}

void origins_moved(struct origins *t, const char *bucket, const char *region, time_t now)
{
	struct origin *o = region && region[0] ? origins_of_region(t, region) : NULL;
	struct slot *s;

	if (!t->nregions || pinned(t, bucket))
		return;
	pthread_mutex_lock(&t->mu);
	if (o) {
		set_slot(t, bucket, o, now + ORIGINS_TTL_S);
	} else if ((s = find(t, bucket)) != NULL && !s->is_learning) {
		unlink_slot(t, s);
	}
	pthread_mutex_unlock(&t->mu);
}

size_t origins_count(const struct origins *t)
{
	return t->n;
}

struct origin *origins_at(const struct origins *t, size_t i)
{
	return i < t->n ? t->all[i] : NULL;
}

size_t origins_known(struct origins *t)
{
	size_t n = 0;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < ORIGINS_BUCKETS_MAX; i++)
		n += t->slots[i].is_used && !t->slots[i].is_learning;
	pthread_mutex_unlock(&t->mu);
	return n;
}

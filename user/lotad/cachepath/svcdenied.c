/* svcdenied.h: a direct-mapped table of bucket names, one slot per name hash, each with
 * the time it stops counting; a mark lost to a collision only costs a refused fill more. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cachepath/svcdenied.h"
#include "log.h"

struct svcdenied_slot {
	char bucket[CACHE_BUCKET_MAX + 1];
	time_t until; /* CLOCK_MONOTONIC seconds; 0: free */
};

struct svcdenied {
	pthread_mutex_t mu;
	struct svcdenied_slot slot[SVCDENIED_SLOTS];
};

int svcdenied_new(struct svcdenied **out)
{
	struct svcdenied *sd = calloc(1, sizeof(*sd));

	if (!sd)
		return -ENOMEM;
	pthread_mutex_init(&sd->mu, NULL);
	*out = sd;
	return 0;
}

void svcdenied_free(struct svcdenied *sd)
{
	if (!sd)
		return;
	pthread_mutex_destroy(&sd->mu);
	free(sd);
}

static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static struct svcdenied_slot *slot_of(struct svcdenied *sd, const char *bucket)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (const char *p = bucket; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return &sd->slot[h % SVCDENIED_SLOTS];
}

void svcdenied_note(struct svcdenied *sd, const char *bucket, int status)
{
	struct svcdenied_slot *s;
	bool is_new;

	if (!sd || status != 403 || strlen(bucket) > CACHE_BUCKET_MAX)
		return;
	pthread_mutex_lock(&sd->mu);
	s = slot_of(sd, bucket);
	is_new = s->until <= now_s() || strcmp(s->bucket, bucket) != 0;
	strcpy(s->bucket, bucket);
	s->until = now_s() + SVCDENIED_TTL_S;
	pthread_mutex_unlock(&sd->mu);
	if (is_new)
		log_warn("cache: the service credentials are refused on bucket %s (403): for %d s "
			 "its reads are cached only from the clients' own whole-object GETs",
			 bucket, SVCDENIED_TTL_S);
}

bool svcdenied_has(struct svcdenied *sd, const char *bucket)
{
	struct svcdenied_slot *s;
	bool has;

	if (!sd)
		return false;
	pthread_mutex_lock(&sd->mu);
	s = slot_of(sd, bucket);
	has = s->until > now_s() && strcmp(s->bucket, bucket) == 0;
	pthread_mutex_unlock(&sd->mu);
	return has;
}

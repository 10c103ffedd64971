/* One thread that commits fills in arrival order and makes their directory entries durable
 * in batches (cache_sync). The queue is bounded by the cache's own bound on running fills
 * (CACHE_MAX_FILLS). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cachepath/committer.h"
#include "log.h"
#include "metrics.h"

struct job {
	struct cache_fill *f;
	char *label;
	struct job *next;
};

struct committer {
	struct cache *cache;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	struct job *head, **tail;
	bool is_stopping;
	pthread_t thread;
	/* Commit thread only: */
	bool is_unsynced;	    /* commits were made since the last sync */
	uint64_t unsynced_since_ms; /* when the first of them was made */
	int sync_err;		    /* the last cache_sync() error, logged once */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* CLOCK_MONOTONIC, ms from now: for the condition variable's timed wait. */
static struct timespec deadline_after(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* One line when syncing starts failing and one when it works again; the directories stay
 * due, so nothing is forgotten meanwhile. */
static void sync_now(struct committer *cm)
{
	int r = cache_sync(cm->cache);

	cm->is_unsynced = false;
	if (r >= 0) {
		metric_add(M_cache_dir_syncs, (uint64_t)r);
		if (r > 0)
			metric_add(M_cache_sync_batches, 1);
		if (cm->sync_err)
			log_info("cache: committed chunks are made durable again");
		cm->sync_err = 0;
		return;
	}
	metric_add(M_cache_sync_errors, 1);
	if (r != cm->sync_err)
		log_warn("cache: cannot make committed chunks durable (fsync of a directory): %s; "
			 "a power loss may forget them, retrying",
			 strerror(-r));
	cm->sync_err = r;
}

/* Any thread (the commit thread, or a worker out of memory); true if committed. */
static bool commit_fill(struct cache_fill *f, const char *label)
{
	int r = cache_fill_commit(f, NULL);

	if (r == 0) {
		metric_add(M_cache_fills_committed, 1);
		return true;
	}
	metric_add(M_cache_fills_aborted, 1);
	if (r != -ESTALE)
		log_warn("cache: commit of %s failed: %s", label ? label : "?", strerror(-r));
	return false;
}

/* A burst of commits ended (or went on for COMMITTER_SYNC_MS): sync. While idle, sync
 * every COMMITTER_IDLE_SYNC_MS anyway, for commits made on other threads and for
 * directories whose sync failed, unless the store is degraded (its directory may be
 * gone: nothing to sync there, and the directories stay due). */
static bool is_sync_due(struct committer *cm, bool is_idle, bool is_timeout)
{
	struct cache_stats st;

	if (cm->is_unsynced)
		return is_idle || now_ms() - cm->unsynced_since_ms >= COMMITTER_SYNC_MS;
	if (!is_timeout)
		return false;
	cache_stats(cm->cache, &st);
	return !st.is_degraded;
}

/* The next job, or NULL when stopping with nothing left; syncs when the queue runs dry. */
static struct job *next_job(struct committer *cm)
{
	struct job *j;
	struct timespec until;
	bool is_timeout = false;

	pthread_mutex_lock(&cm->mu);
	while (!cm->head && !cm->is_stopping) {
		if (is_sync_due(cm, true, is_timeout)) {
			pthread_mutex_unlock(&cm->mu);
			sync_now(cm);
			pthread_mutex_lock(&cm->mu);
			is_timeout = false;
			continue;
		}
		until = deadline_after(COMMITTER_IDLE_SYNC_MS);
		is_timeout = pthread_cond_timedwait(&cm->cv, &cm->mu, &until) == ETIMEDOUT;
	}
	j = cm->head;
	if (j) {
		cm->head = j->next;
		if (!cm->head)
			cm->tail = &cm->head;
	}
	pthread_mutex_unlock(&cm->mu);
	return j;
}

static void *committer_main(void *arg)
{
	struct committer *cm = arg;
	struct job *j;

	while ((j = next_job(cm)) != NULL) {
		if (commit_fill(j->f, j->label) && !cm->is_unsynced) {
			cm->is_unsynced = true;
			cm->unsynced_since_ms = now_ms();
		}
		free(j->label);
		free(j);
		if (is_sync_due(cm, false, false))
			sync_now(cm);
	}
	if (cm->is_unsynced)
		sync_now(cm); /* stopping: what was committed is made durable first */
	return NULL;
}

static int cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int r = pthread_condattr_init(&a);

	if (r)
		return -r;
	r = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (!r)
		r = pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
	return -r;
}

int committer_new(struct cache *c, struct committer **out)
{
	struct committer *cm = calloc(1, sizeof(*cm));
	int r;

	if (!cm)
		return -ENOMEM;
	cm->cache = c;
	r = cond_init_monotonic(&cm->cv);
	if (r) {
		free(cm);
		return r;
	}
	pthread_mutex_init(&cm->mu, NULL);
	cm->tail = &cm->head;
	r = pthread_create(&cm->thread, NULL, committer_main, cm);
	if (r != 0) {
		pthread_cond_destroy(&cm->cv);
		pthread_mutex_destroy(&cm->mu);
		free(cm);
		return -r;
	}
	*out = cm;
	return 0;
}

void committer_free(struct committer *cm)
{
	if (!cm)
		return;
	pthread_mutex_lock(&cm->mu);
	cm->is_stopping = true;
	pthread_cond_signal(&cm->cv);
	pthread_mutex_unlock(&cm->mu);
	pthread_join(cm->thread, NULL);
	pthread_cond_destroy(&cm->cv);
	pthread_mutex_destroy(&cm->mu);
	free(cm);
}

void committer_commit(struct committer *cm, struct cache_fill *f, const char *label)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		/* No memory: commit here rather than lose the fill; the commit thread's idle
		 * sync makes it durable. */
		commit_fill(f, label);
		return;
	}
	j->f = f;
	j->label = label ? strdup(label) : NULL;
	pthread_mutex_lock(&cm->mu);
	*cm->tail = j;
	cm->tail = &j->next;
	pthread_cond_signal(&cm->cv);
	pthread_mutex_unlock(&cm->mu);
}

/* One thread that commits fills in arrival order. The queue is bounded by the cache's
 * own bound on running fills (CACHE_MAX_FILLS). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "committer.h"
#include "log.h"
#include "metrics.h"

struct job {
	struct cache_fill *f;
	char *label;
	struct job *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct job *head, **tail = &head;
static bool is_running;

static void commit_fill(struct cache_fill *f, const char *label)
{
	int r = cache_fill_commit(f, NULL);

	if (r == 0) {
		metric_add(M_cache_fills_committed, 1);
	} else {
		metric_add(M_cache_fills_aborted, 1);
		if (r != -ESTALE)
			log_warn("cache: commit of %s failed: %s", label ? label : "?", strerror(-r));
	}
}

static void *committer_main(void *arg)
{
	for (;;) {
		struct job *j;

		pthread_mutex_lock(&mu);
		while (!head)
			pthread_cond_wait(&cv, &mu);
		j = head;
		head = j->next;
		if (!head)
			tail = &head;
		pthread_mutex_unlock(&mu);
		commit_fill(j->f, j->label);
		free(j->label);
		free(j);
	}
	return NULL;
}

int committer_start(void)
{
	pthread_t t;
	int r = pthread_create(&t, NULL, committer_main, NULL);

	if (r != 0)
		return -r;
	pthread_detach(t);
	is_running = true;
	return 0;
}

void committer_commit(struct cache_fill *f, const char *label)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j || !is_running) {
		free(j); /* no thread or no memory: commit here rather than lose the fill */
		commit_fill(f, label);
		return;
	}
	j->f = f;
	j->label = label ? strdup(label) : NULL;
	pthread_mutex_lock(&mu);
	*tail = j;
	tail = &j->next;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

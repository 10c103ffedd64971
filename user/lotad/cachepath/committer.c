/* One thread that commits fills in arrival order. The queue is bounded by the cache's
 * own bound on running fills (CACHE_MAX_FILLS). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, **tail;
	bool is_stopping;
	pthread_t thread;
};

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
	struct committer *cm = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&cm->mu);
		while (!cm->head && !cm->is_stopping)
			pthread_cond_wait(&cm->cv, &cm->mu);
		j = cm->head;
		if (j) {
			cm->head = j->next;
			if (!cm->head)
				cm->tail = &cm->head;
		}
		pthread_mutex_unlock(&cm->mu);
		if (!j)
			return NULL; /* stopping, and nothing left */
		commit_fill(j->f, j->label);
		free(j->label);
		free(j);
	}
}

int committer_new(struct committer **out)
{
	struct committer *cm = calloc(1, sizeof(*cm));
	int r;

	if (!cm)
		return -ENOMEM;
	pthread_mutex_init(&cm->mu, NULL);
	pthread_cond_init(&cm->cv, NULL);
	cm->tail = &cm->head;
	r = pthread_create(&cm->thread, NULL, committer_main, cm);
	if (r != 0) {
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
		commit_fill(f, label); /* no memory: commit here rather than lose the fill */
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

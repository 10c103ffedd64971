/* Clear: drop every committed chunk at an operator's request (lotactl evict --all).
 * Running fills are left alone and commit as usual; open handles keep reading. */
#include "cache-int.h"

int cache_clear(struct cache *c)
{
	int n = 0;

	/* One chunk per lock hold, as cache_evict() does, so workers interleave. */
	for (;;) {
		int r;

		pthread_mutex_lock(&c->mu);
		r = evict_one_locked(c);
		pthread_mutex_unlock(&c->mu);
		if (r)
			break;
		n++;
	}
	return n;
}

/* Space: LRU eviction of chunks between the watermarks, removal of a chunk's file, and the
 * pressure signal that tells the daemon's control thread to run cache_evict(). Usage
 * counts committed files plus the reservations of running fills, so concurrent fills
 * cannot together overshoot what eviction keeps free.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cache-int.h"

/* Removes ch's file and ch (not its object: see obj_put_locked). Under the lock so that
 * no commit can rename a new file onto the same path in between (see struct chunk);
 * unlinking is metadata I/O, no body bytes. A degraded store does not log each one. */
int unlink_chunk_locked(struct cache *c, struct chunk *ch)
{
	char name[CACHE_NAME_LEN];
	int err = 0;

	hash_name(ch->hn.hash, name);
	if (unlinkat(c->objfd, name, 0) && errno != ENOENT) {
		err = -errno;
		if (!c->health.is_degraded)
			cache_log(c, "cache: objects/%s: unlink: %s", name, strerror(errno));
	}
	index_drop(c, ch);
	return err;
}

/* Evicts the least recently used chunk; -ENOENT when there is none. */
int evict_one_locked(struct cache *c)
{
	struct chunk *ch = c->lru_tail;
	struct obj *o;

	if (!ch)
		return -ENOENT;
	o = ch->obj;
	c->st.evictions++;
	c->st.evicted_bytes += chunk_file_size(ch);
	unlink_chunk_locked(c, ch);
	obj_put_locked(c, o);
	return 0;
}

int cache_evict(struct cache *c)
{
	int n = 0;

	for (;;) {
		bool is_done;

		pthread_mutex_lock(&c->mu);
		is_done = c->used + c->reserved <= c->low || evict_one_locked(c);
		if (is_done)
			c->is_pressure_signaled = false;
		pthread_mutex_unlock(&c->mu);
		if (is_done)
			break;
		n++;
	}
	return n;
}

/* True once per crossing of the high watermark: the caller then calls pressure_signal()
 * after dropping the lock. cache_evict() re-arms it. */
bool pressure_check_locked(struct cache *c)
{
	if (c->used + c->reserved <= c->high || c->is_pressure_signaled)
		return false;
	c->is_pressure_signaled = true;
	return true;
}

void pressure_signal(struct cache *c)
{
	if (c->opts.on_pressure)
		c->opts.on_pressure(c->opts.pressure_arg);
}

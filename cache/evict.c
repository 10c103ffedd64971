/* Space: LRU eviction between the watermarks, removal of an entry's file, and the
 * pressure signal that tells the daemon's control thread to run cache_evict(). Usage
 * counts committed files plus the reservations of running fills, so concurrent fills
 * cannot together overshoot what eviction keeps free.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cache-int.h"

/* Removes e's file and e. Under the lock so that no commit can rename a new file onto the
 * same path in between (see struct entry); unlinking is metadata I/O, no body bytes. */
int unlink_entry_locked(struct cache *c, struct entry *e)
{
	char name[CACHE_NAME_LEN];
	int err = 0;

	hash_name(e->hn.hash, name);
	if (unlinkat(c->objfd, name, 0) && errno != ENOENT) {
		err = -errno;
		cache_log(c, "cache: objects/%s: unlink: %s", name, strerror(errno));
	}
	index_drop(c, e);
	return err;
}

/* Evicts the least recently used entry; -ENOENT when there is none. */
int evict_one_locked(struct cache *c)
{
	struct entry *e = c->lru_tail;

	if (!e)
		return -ENOENT;
	c->st.evictions++;
	c->st.evicted_bytes += e->file_size;
	unlink_entry_locked(c, e);
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

/* The calls of remote.h: each goes to the ops the cluster registered, and answers
 * "this node's" when there is no cluster, no live peer or no way to fetch a chunk here. */
#include <errno.h>
#include <stddef.h>

#include "cachepath/cachepath-t.h"
#include "cachepath/fills.h"
#include "cachepath/remote.h"

void remote_register(struct cachepath *cp, const struct remote_ops *ops, void *arg)
{
	cp->remote = ops;
	cp->remote_arg = arg;
}

/* A peer that fails mid-chunk is replaced by lotad's own ranged GET, and a chunk a peer
 * asks for is filled with the service credentials: without them, nothing spreads. */
bool remote_is_spread(const struct cachepath *cp)
{
	return cp->remote && cp->cache && cp->svc && cp->remote->is_spread(cp->remote_arg);
}

bool remote_is_remote(const struct cachepath *cp, const struct cache_meta *m, uint64_t index)
{
	return remote_is_spread(cp) && cp->remote->is_remote(cp->remote_arg, m, index);
}

int remote_open(const struct cachepath *cp, struct exchange *x, const struct cache_meta *m,
		uint64_t index, uint64_t pos, uint64_t end, struct remote_src **out)
{
	if (!remote_is_spread(cp))
		return REMOTE_HERE;
	return cp->remote->open(cp->remote_arg, x, m, index, pos, end, out);
}

enum remote_result remote_pump(const struct cachepath *cp, struct remote_src *s,
			       struct evbuffer *out, uint64_t *moved)
{
	*moved = 0;
	return cp->remote ? cp->remote->pump(s, out, moved) : REMOTE_FAILED;
}

void remote_close(const struct cachepath *cp, struct remote_src *s)
{
	if (s && cp->remote)
		cp->remote->close(s);
}

int remote_prefetch(const struct cachepath *cp, struct worker *w, const struct cache_meta *m,
		    uint64_t index)
{
	if (!remote_is_spread(cp))
		return REMOTE_HERE;
	return cp->remote->prefetch(cp->remote_arg, w, m, index);
}

void remote_want(struct cachepath *cp, struct worker *w, const struct cache_meta *m, uint64_t index)
{
	enum cache_chunk_state st = CACHE_CHUNK_ABSENT;
	struct fills *f;
	int r;

	if (remote_is_remote(cp, m, index)) {
		/* -ENOENT: this node holds no chunk of the version at all */
		r = cache_chunk_states(cp->cache, m, (uint32_t)index, 1, &st);
		if ((r == 0 || r == -ENOENT) && st == CACHE_CHUNK_ABSENT &&
		    remote_prefetch(cp, w, m, index) == REMOTE_THERE)
			return;
	}
	f = fills_of(cp, w);
	if (f)
		fills_want(f, m, index, FILLS_FOR_READ);
}

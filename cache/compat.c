/* COMPATIBILITY: the whole-object API that the daemon (user/) calls today, on top of the
 * chunk store: an object is stored as one chunk, cut with a chunk size of the larger of
 * its size and the store's (so an object no larger than a chunk has the very file the
 * chunk API gives it). This file goes away when the daemon reads chunks (issue 12).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "cache-int.h"

#define LOOKUP_BUF 4096

static void whole_meta(const struct cache *c, const struct cache_meta *in, struct cache_meta *out)
{
	*out = *in;
	out->chunk_size = in->size > c->chunk_size ? in->size : c->chunk_size;
}

/* Drops the committed version m: the whole-object API replaces it with a new fill. */
static void drop_version(struct cache *c, const struct cache_meta *m)
{
	struct version v;
	struct obj *o;

	if (version_resolve(c, m, &v))
		return;
	pthread_mutex_lock(&c->mu);
	o = obj_find_locked(c, &m->id);
	if (o && obj_is_version(o, &v))
		obj_drop_locked(c, o);
	pthread_mutex_unlock(&c->mu);
}

int cache_fill_begin(struct cache *c, const struct cache_meta *meta, struct cache_fill **out)
{
	struct cache_meta m;
	int r;

	whole_meta(c, meta, &m);
	r = cache_chunk_begin(c, &m, 0, out);
	if (r == CACHE_BEGIN_COMMITTED) {
		drop_version(c, &m);
		r = cache_chunk_begin(c, &m, 0, out);
	}
	return r == CACHE_BEGIN_FOLLOW || r == CACHE_BEGIN_COMMITTED ? -EEXIST : r;
}

/* The object's metadata from the header of its one chunk, opened in h. */
static int obj_from_chunk(const struct cache_key *k, struct chunk_handle *h, struct cache_obj *o)
{
	uint8_t buf[LOOKUP_BUF], *big = NULL;
	struct entry_hdr eh;
	int err = h->nchunks == 1 ? entry_read(h->pub.fd, buf, sizeof(buf), &big, &eh) : -ENOENT;

	if (!err && !entry_tuple_eq(&eh, k))
		err = -ENOENT;
	if (!err)
		err = entry_meta_dup(&eh, &o->meta, (char **)&o->priv);
	free(big);
	return err;
}

int cache_lookup(struct cache *c, const struct cache_key *k, struct cache_obj **out)
{
	struct chunk_handle *h = NULL;
	struct cache_obj *o = NULL;
	int err = key_check(k);

	*out = NULL;
	if (err || (err = chunk_open(c, k, NULL, 0, &h)))
		return err == -ERANGE ? -ENOENT : err;
	o = calloc(1, sizeof(*o));
	err = o ? obj_from_chunk(k, h, o) : -ENOMEM;
	if (err) {
		free(o);
		cache_chunk_close(&h->pub);
		return err;
	}
	o->fd = h->pub.fd;
	o->body_offset = h->pub.body_offset;
	free(h);
	*out = o;
	return 0;
}

void cache_obj_close(struct cache_obj *o)
{
	if (!o)
		return;
	close(o->fd);
	free(o->priv);
	free(o);
}

int cache_fill_follow(struct cache *c, const struct cache_key *k, cache_wake_fn wake, void *arg,
		      struct cache_follower **out)
{
	struct cache_follower *fl;
	struct cache_fill *f = NULL;
	struct obj *o;
	int err = key_check(k);

	*out = NULL;
	if (err)
		return err;
	fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	pthread_mutex_lock(&c->mu);
	o = obj_find_locked(c, k);
	if (o && o->nchunks == 1)
		f = obj_fill_locked(c, o, 0);
	err = f ? follow_attach_locked(c, f, wake, arg, fl) : -ENOENT;
	pthread_mutex_unlock(&c->mu);
	if (err)
		free(fl);
	else
		*out = fl;
	return err;
}

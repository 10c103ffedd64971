/* Followers: readers attached to a running chunk fill. They read its temp file by offset
 * while it grows (the fd stays valid after commit: the rename keeps the inode) and are
 * woken by the writer through a callback, never with a lock held.
 */
#include <errno.h>
#include <stdlib.h>

#include "cache-int.h"

/* Attaches fl to f, counted; -EUSERS past CACHE_FILL_MAX_FOLLOWERS. */
static int follow_attach_locked(struct cache *c, struct cache_fill *f, cache_wake_fn wake,
				void *arg, struct cache_follower *fl)
{
	int err = -EUSERS;

	fl->wake = wake;
	fl->arg = arg;
	pthread_mutex_lock(&f->mu);
	if (f->nfollowers < CACHE_FILL_MAX_FOLLOWERS) {
		f->followers[f->nfollowers++] = fl;
		f->refs++;
		fl->f = f;
		err = 0;
	}
	pthread_mutex_unlock(&f->mu);
	if (err)
		c->st.followers_refused++;
	else
		c->st.followers++;
	return err;
}

int cache_chunk_follow(struct cache *c, const struct cache_meta *m, uint32_t index,
		       cache_wake_fn wake, void *arg, struct cache_follower **out)
{
	struct cache_follower *fl;
	struct cache_fill *f = NULL;
	struct version v;
	struct obj *o;
	int err = key_check(&m->id);

	*out = NULL;
	if (err || (err = version_resolve(c, m, &v)))
		return err;
	fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	pthread_mutex_lock(&c->mu);
	o = obj_find_locked(c, &m->id);
	if (o && obj_is_version(o, &v) && index < o->nchunks)
		f = obj_fill_locked(c, o, index);
	err = f ? follow_attach_locked(c, f, wake, arg, fl) : -ENOENT;
	pthread_mutex_unlock(&c->mu);
	if (err)
		free(fl);
	else
		*out = fl;
	return err;
}

void cache_follower_status(struct cache_follower *fl, struct cache_fill_status *st)
{
	struct cache_fill *f = fl->f;

	pthread_mutex_lock(&f->mu);
	st->state = f->state;
	st->written = f->written;
	st->size = f->size;
	st->error = f->error;
	pthread_mutex_unlock(&f->mu);
}

int cache_follower_fd(struct cache_follower *fl, uint64_t *body_offset)
{
	*body_offset = fl->f->header_len;
	return fl->f->fd;
}

const struct cache_meta *cache_follower_meta(struct cache_follower *fl)
{
	return &fl->f->meta;
}

void cache_follower_close(struct cache_follower *fl)
{
	struct cache_fill *f;

	if (!fl)
		return;
	f = fl->f;
	pthread_mutex_lock(&f->mu);
	for (unsigned i = 0; i < f->nfollowers; i++) {
		if (f->followers[i] == fl) {
			f->followers[i] = f->followers[--f->nfollowers];
			break;
		}
	}
	/* a wake round that copied fl before it left may still be calling it */
	while (f->notifying)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	fill_unref(f);
	free(fl);
}

/* Fills: one writer per chunk streams its bytes into tmp/, followers read the same file
 * while it grows and are woken as bytes land; commit verifies length and CRC-32,
 * fdatasync()s and renames into objects/. Lock order: store lock, then a fill's own lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cache-int.h"

#define READBACK_BUF 65536

static void fill_free(struct cache_fill *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->hdr);
	free(f->metabuf);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void fill_unref(struct cache_fill *f)
{
	bool is_last;

	pthread_mutex_lock(&f->mu);
	is_last = --f->refs == 0;
	pthread_mutex_unlock(&f->mu);
	if (is_last)
		fill_free(f);
}

/* Wakes every follower outside the locks; followers leaving meanwhile wait for the round
 * to finish (cache_follower_close), so no wake runs after its follower is gone. */
static void fill_notify(struct cache_fill *f)
{
	struct {
		cache_wake_fn wake;
		void *arg;
	} w[CACHE_FILL_MAX_FOLLOWERS];
	unsigned n = 0;

	pthread_mutex_lock(&f->mu);
	for (unsigned i = 0; i < f->nfollowers; i++) {
		if (f->followers[i]->wake) {
			w[n].wake = f->followers[i]->wake;
			w[n++].arg = f->followers[i]->arg;
		}
	}
	f->notifying++;
	pthread_mutex_unlock(&f->mu);
	for (unsigned i = 0; i < n; i++)
		w[i].wake(w[i].arg);
	pthread_mutex_lock(&f->mu);
	if (--f->notifying == 0)
		pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void fill_finish(struct cache_fill *f, enum cache_fill_state state, int error)
{
	pthread_mutex_lock(&f->mu);
	f->state = state;
	f->error = error;
	pthread_mutex_unlock(&f->mu);
	fill_notify(f);
	fill_unref(f);
}

/* Reserves f's bytes. Past the high watermark it first evicts a few LRU chunks inline
 * (the rest is the control thread's job, which *is_over asks for); past the capacity it
 * refuses, so concurrent fills never overshoot together. */
static int reserve_locked(struct cache *c, struct cache_fill *f, bool *is_over)
{
	if (c->nfills >= CACHE_MAX_FILLS)
		return -EAGAIN;
	if (f->reserve > c->high)
		return -EFBIG;
	*is_over = c->used + c->reserved + f->reserve > c->high;
	for (int i = 0; i < CACHE_EVICT_INLINE && c->used + c->reserved + f->reserve > c->high; i++)
		if (evict_one_locked(c))
			break;
	if (c->used + c->reserved > c->capacity - f->reserve)
		return -ENOSPC;
	c->reserved += f->reserve;
	return 0;
}

/* The object f fills: the one k holds if it is f's version; else a new one, and the
 * version k held is dropped (its chunks removed, its fills stale): one version per key. */
static int fill_obj_locked(struct cache *c, struct cache_fill *f, struct obj **out)
{
	struct obj *o = (struct obj *)htab_find(&c->objs, f->obj_hash);

	if (o && !obj_is_key(o, &f->meta.id))
		return -EBUSY; /* another key with the same hash: do not cache */
	if (o && !obj_is_version(o, &f->v)) {
		c->st.invalidations += (uint64_t)obj_drop_locked(c, o);
		o = NULL;
	}
	if (!o) {
		o = obj_new(&f->meta.id, &f->v);
		if (!o)
			return -ENOMEM;
		htab_insert(&c->objs, &o->hn);
	}
	*out = o;
	return 0;
}

/* Whether f's chunk is committed or being filled already (a verdict), free (0), or its
 * name is another identity's (-EBUSY, astronomically rare). */
static int fill_verdict_locked(struct cache *c, struct cache_fill *f, struct obj *o)
{
	struct chunk *ch = (struct chunk *)htab_find(&c->chunks, f->hn.hash);
	struct cache_fill *other = (struct cache_fill *)htab_find(&c->fills, f->hn.hash);

	if (ch)
		return ch->obj == o && ch->index == f->index ? CACHE_BEGIN_COMMITTED : -EBUSY;
	if (other)
		return other->obj == o && other->index == f->index ? CACHE_BEGIN_FOLLOW : -EBUSY;
	return 0;
}

static void fill_link_locked(struct cache *c, struct cache_fill *f, struct obj *o)
{
	f->obj = o;
	f->obj_prev = NULL;
	f->obj_next = o->fills;
	if (o->fills)
		o->fills->obj_prev = f;
	o->fills = f;
	o->nfills++;
	c->nfills++;
	htab_insert(&c->fills, &f->hn);
	c->st.fills_started++;
}

/* Registers f as the one fill of its chunk, with its space reserved; a verdict other
 * than CACHE_BEGIN_FILL or a negative errno if not. */
static int fill_register(struct cache *c, struct cache_fill *f)
{
	bool is_pressure, is_over = false;
	struct obj *o = NULL;
	int err;

	pthread_mutex_lock(&c->mu);
	err = c->health.is_degraded ? -EIO : 0;
	if (!err && !(err = fill_obj_locked(c, f, &o)) && !(err = fill_verdict_locked(c, f, o))) {
		/* pinned: the inline eviction may take o's last chunk */
		o->nfills++;
		err = reserve_locked(c, f, &is_over);
		o->nfills--;
	}
	if (!err)
		fill_link_locked(c, f, o);
	else if (err < 0 && err != -EBUSY)
		c->st.fills_refused++;
	if (o)
		obj_put_locked(c, o);
	is_pressure = pressure_check_locked(c);
	if (is_over && !c->is_pressure_signaled)
		is_pressure = c->is_pressure_signaled = true;
	pthread_mutex_unlock(&c->mu);
	if (is_pressure)
		pressure_signal(c);
	return err;
}

/* Cheap early answer for a herd or a degraded store, before creating a file;
 * fill_register decides. */
static int fill_precheck(struct cache *c, struct cache_fill *f)
{
	struct obj *o;
	int verdict = 0;

	pthread_mutex_lock(&c->mu);
	o = (struct obj *)htab_find(&c->objs, f->obj_hash);
	if (c->health.is_degraded)
		verdict = -EIO;
	else if (o && obj_is_key(o, &f->meta.id) && obj_is_version(o, &f->v))
		verdict = fill_verdict_locked(c, f, o);
	if (verdict == -EIO)
		c->st.fills_refused++;
	pthread_mutex_unlock(&c->mu);
	return verdict == -EBUSY ? 0 : verdict;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Creates the temp file and writes the header (body CRC still 0). */
static int fill_create(struct cache *c, struct cache_fill *f)
{
	char name[CACHE_NAME_LEN];
	unsigned long long n = __atomic_add_fetch(&c->next_tmp, 1, __ATOMIC_RELAXED);

	hash_name(f->hn.hash, name);
	snprintf(f->tmpname, sizeof(f->tmpname), "%.2s%s.%llu", name, name + 3, n);
	f->fd = openat(c->tmpfd, f->tmpname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (f->fd < 0)
		return -errno;
	return pwrite_all(f->fd, f->hdr, f->header_len, 0);
}

static int fill_new(struct cache *c, const struct cache_meta *meta, uint32_t index,
		    struct cache_fill **out)
{
	struct cache_fill *f = calloc(1, sizeof(*f));
	struct cache_meta m = *meta;
	struct entry_hdr h;
	uint64_t seed[2];
	int err;

	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->c = c;
	f->fd = -1;
	f->refs = 1;
	f->index = index;
	*out = f;
	if ((err = version_resolve(c, meta, &f->v)))
		return err;
	if (index >= f->v.nchunks)
		return -ERANGE;
	m.chunk_size = f->v.chunk_size;
	f->size = cache_chunk_len(f->v.size, f->v.chunk_size, index);
	if ((err = entry_encode(&m, index, f->size, &f->hdr, &f->header_len)) ||
	    (err = entry_decode(f->hdr, f->header_len, &h)) ||
	    (err = entry_meta_dup(&h, &f->meta, &f->metabuf)))
		return err;
	f->v.etag = f->meta.etag;
	if (f->size > UINT64_MAX - f->header_len)
		return -EFBIG;
	f->reserve = f->header_len + f->size;
	version_hashes(&f->meta.id, &f->v, f->obj_hash, seed);
	chunk_hash(seed, index, f->hn.hash);
	return 0;
}

int cache_chunk_begin(struct cache *c, const struct cache_meta *meta, uint32_t index,
		      struct cache_fill **out)
{
	struct cache_fill *f = NULL;
	int err = key_check(&meta->id);

	*out = NULL;
	if (err || (err = fill_new(c, meta, index, &f)) || (err = fill_precheck(c, f)))
		goto out;
	if ((err = fill_create(c, f)) || (err = fill_register(c, f)))
		goto out;
	*out = f;
	return CACHE_BEGIN_FILL;
out:
	if (f && f->fd >= 0)
		unlinkat(c->tmpfd, f->tmpname, 0);
	if (f)
		fill_free(f);
	return err;
}

/* Accounts n new body bytes (the writer alone changes written) and wakes followers once
 * per CACHE_WAKE_BYTES: a wake per small write costs every follower a cross-thread
 * wake-up and a tiny sendfile, and with many followers that dominates. The last bytes
 * and the end of the fill always wake them. */
static void fill_grow(struct cache_fill *f, uint64_t n)
{
	uint64_t written;

	pthread_mutex_lock(&f->mu);
	f->written += n;
	written = f->written;
	pthread_mutex_unlock(&f->mu);
	if (written - f->notified < CACHE_WAKE_BYTES && written < f->size)
		return;
	f->notified = written;
	fill_notify(f);
}

static int crc_catch_up(struct cache_fill *f);

int cache_fill_write(struct cache_fill *f, const void *buf, size_t len)
{
	int err;

	if (len > f->size - f->written)
		return -EFBIG;
	if ((err = crc_catch_up(f)))
		return err;
	err = pwrite_all(f->fd, buf, len, f->header_len + f->written);
	if (err)
		return err;
	f->crc = crc_update(f->crc, buf, len);
	fill_grow(f, len);
	f->crc_upto = f->written;
	return 0;
}

int cache_fill_write_pos(struct cache_fill *f, int *fd, uint64_t *off)
{
	*fd = f->fd;
	*off = f->header_len + f->written;
	return 0;
}

/* CRC of bytes the caller put in the file itself, read back from the page cache. */
static int crc_readback(struct cache_fill *f, uint64_t from, uint64_t n, uint32_t *crc)
{
	uint64_t off = f->header_len + from;
	char *buf = malloc(READBACK_BUF);
	int err = 0;

	*crc = crc_update(0, NULL, 0);
	if (!buf)
		return -ENOMEM;
	while (n) {
		ssize_t r = pread(f->fd, buf, n < READBACK_BUF ? n : READBACK_BUF, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? -errno : -EIO; /* the caller said these bytes were written */
			break;
		}
		*crc = crc_update(*crc, buf, (size_t)r);
		off += (uint64_t)r;
		n -= (uint64_t)r;
	}
	free(buf);
	return err;
}

/* Brings the CRC up to every byte written, reading deferred bytes back. */
static int crc_catch_up(struct cache_fill *f)
{
	uint64_t n = f->written - f->crc_upto;
	uint32_t part;
	int err;

	if (!n)
		return 0;
	err = crc_readback(f, f->crc_upto, n, &part);
	if (err)
		return err;
	f->crc = (uint32_t)crc32_combine64(f->crc, part, (z_off64_t)n);
	f->crc_upto = f->written;
	return 0;
}

int cache_fill_advance(struct cache_fill *f, uint64_t n, const uint32_t *crc)
{
	uint32_t part;
	int err = 0;

	if (n > f->size - f->written || n > INT64_MAX)
		return -EFBIG;
	if ((err = crc_catch_up(f)))
		return err;
	if (crc)
		part = *crc;
	else if ((err = crc_readback(f, f->written, n, &part)))
		return err;
	f->crc = (uint32_t)crc32_combine64(f->crc, part, (z_off64_t)n);
	fill_grow(f, n);
	f->crc_upto = f->written;
	return 0;
}

int cache_fill_advance_nocrc(struct cache_fill *f, uint64_t n)
{
	if (n > f->size - f->written || n > INT64_MAX)
		return -EFBIG;
	fill_grow(f, n);
	return 0;
}

/* Takes f off its object (which may then go) and out of the table of fills. */
void fill_detach_locked(struct cache *c, struct cache_fill *f)
{
	struct obj *o = f->obj;

	if (!o)
		return;
	if (f->obj_prev)
		f->obj_prev->obj_next = f->obj_next;
	else
		o->fills = f->obj_next;
	if (f->obj_next)
		f->obj_next->obj_prev = f->obj_prev;
	o->nfills--;
	htab_remove(&c->fills, &f->hn);
	f->obj = NULL;
}

/* Every running fill goes stale: the store degraded. */
void fill_detach_all_locked(struct cache *c)
{
	struct hnode *n;
	size_t slot = 0;

	while ((n = htab_next(&c->fills, &slot))) {
		struct cache_fill *f = (struct cache_fill *)n;
		struct obj *o = f->obj;

		fill_detach_locked(c, f);
		obj_put_locked(c, o);
	}
}

/* Indexes ch, the chunk f just renamed into place (replacing a file of the same name). */
static void fill_index_locked(struct cache *c, struct cache_fill *f, struct chunk *ch)
{
	struct chunk *old = (struct chunk *)htab_find(&c->chunks, f->hn.hash);

	if (old) {
		struct obj *oo = old->obj;

		index_drop(c, old); /* its file was just replaced */
		if (oo != f->obj)
			obj_put_locked(c, oo);
	}
	memcpy(ch->hn.hash, f->hn.hash, CACHE_HASH_LEN);
	ch->obj = f->obj;
	ch->index = f->index;
	ch->header_len = f->header_len;
	ch->crc = f->crc;
	ch->stamp = time(NULL);
	index_add(c, ch);
	lru_push_head(c, ch);
	c->dirty[f->hn.hash[0] / 8] |= (uint8_t)(1u << (f->hn.hash[0] % 8));
	c->st.fills_committed++;
}

/* Unregisters f and releases its reservation; when is_kept, renames its file into place
 * and indexes ch (the chunk built for it). Returns the final state; *err says why a
 * complete fill was not kept. */
static enum cache_fill_state fill_settle(struct cache *c, struct cache_fill *f, struct chunk *ch,
					 bool is_kept, int *err)
{
	enum cache_fill_state state = is_kept ? CACHE_FILL_COMMITTED : CACHE_FILL_ABORTED;
	char name[CACHE_NAME_LEN];
	struct obj *o;

	hash_name(f->hn.hash, name);
	pthread_mutex_lock(&c->mu);
	o = f->obj;
	if (is_kept && (!o || c->health.is_degraded)) {
		state = CACHE_FILL_DISCARDED;
		*err = -ESTALE;
	} else if (is_kept && renameat(c->tmpfd, f->tmpname, c->objfd, name)) {
		state = CACHE_FILL_DISCARDED;
		*err = -errno;
		cache_log(c, "cache: tmp/%s: rename: %s", f->tmpname, strerror(errno));
	}
	if (state == CACHE_FILL_COMMITTED) {
		fill_index_locked(c, f, ch);
	} else {
		unlinkat(c->tmpfd, f->tmpname, 0);
		c->st.fills_aborted++;
	}
	fill_detach_locked(c, f);
	if (o)
		obj_put_locked(c, o);
	c->nfills--;
	c->reserved -= f->reserve;
	pthread_mutex_unlock(&c->mu);
	return state;
}

void cache_fill_abort(struct cache_fill *f, int error)
{
	int err = 0;

	fill_settle(f->c, f, NULL, false, &err);
	fill_finish(f, CACHE_FILL_ABORTED, error ? error : -ECANCELED);
}

/* Checks size and CRC, writes the final header and makes it durable. */
static int fill_seal(struct cache_fill *f, const uint32_t *expected_crc)
{
	int err;

	if (f->written != f->size)
		return -EPROTO;
	err = crc_catch_up(f);
	if (err)
		return err;
	if (expected_crc && *expected_crc != f->crc)
		return -EBADMSG;
	entry_set_crc(f->hdr, f->header_len, f->crc);
	err = pwrite_all(f->fd, f->hdr, f->header_len, 0);
	if (!err && !f->c->opts.is_fdatasync_skipped && fdatasync(f->fd))
		err = -errno;
	return err;
}

int cache_fill_commit(struct cache_fill *f, const uint32_t *expected_crc)
{
	enum cache_fill_state state;
	struct chunk *ch = NULL;
	int err = fill_seal(f, expected_crc);

	if (!err) {
		ch = calloc(1, sizeof(*ch));
		err = ch ? 0 : -ENOMEM;
	}
	if (err) {
		cache_fill_abort(f, err);
		return err;
	}
	state = fill_settle(f->c, f, ch, true, &err);
	if (state != CACHE_FILL_COMMITTED)
		free(ch);
	fill_finish(f, state, 0);
	return err;
}

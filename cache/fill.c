/* Fills: one writer per key streams a body into tmp/, followers read the same file while
 * it grows and are woken as bytes land; commit verifies size and CRC-32, fdatasync()s
 * and renames into objects/. Lock order: store lock, then a fill's own lock.
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

static bool is_same_key(const struct cache_key *a, const struct cache_key *b)
{
	return !strcmp(a->bucket, b->bucket) && !strcmp(a->key, b->key) &&
	       !strcmp(a->version ? a->version : "", b->version ? b->version : "");
}

bool fill_is_key(const struct cache_fill *f, const struct cache_key *k)
{
	return is_same_key(&f->meta.id, k);
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

/* Reserves f's bytes. Past the high watermark it first evicts a few LRU entries inline
 * (the rest is the control thread's job, which *is_over asks for); past the capacity it
 * refuses, so concurrent fills never overshoot together. */
static int reserve_locked(struct cache *c, struct cache_fill *f, bool *is_over)
{
	if (c->fills.count >= CACHE_MAX_FILLS)
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

/* Registers f as the one fill of its key, with its space reserved. */
static int fill_register(struct cache *c, struct cache_fill *f)
{
	bool is_pressure, is_over = false;
	struct hnode *n;
	int err;

	pthread_mutex_lock(&c->mu);
	n = htab_find(&c->fills, f->hn.hash);
	if (n)
		err =
		    is_same_key(&((struct cache_fill *)n)->meta.id, &f->meta.id) ? -EEXIST : -EBUSY;
	else
		err = reserve_locked(c, f, &is_over);
	if (!err) {
		htab_insert(&c->fills, &f->hn);
		c->st.fills_started++;
	} else if (!n) {
		c->st.fills_refused++;
	}
	is_pressure = pressure_check_locked(c);
	if (is_over && !c->is_pressure_signaled)
		is_pressure = c->is_pressure_signaled = true;
	pthread_mutex_unlock(&c->mu);
	if (is_pressure)
		pressure_signal(c);
	return err;
}

static bool is_fill_running(struct cache *c, const uint8_t hash[CACHE_HASH_LEN])
{
	bool yes;

	pthread_mutex_lock(&c->mu);
	yes = htab_find(&c->fills, hash) != NULL;
	pthread_mutex_unlock(&c->mu);
	return yes;
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

static int fill_new(struct cache *c, const struct cache_meta *meta, struct cache_fill **out)
{
	struct cache_fill *f = calloc(1, sizeof(*f));
	struct entry_hdr h;
	int err;

	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->c = c;
	f->fd = -1;
	f->refs = 1;
	f->size = meta->size;
	*out = f;
	if ((err = entry_encode(meta, &f->hdr, &f->header_len)) ||
	    (err = entry_decode(f->hdr, f->header_len, &h)) ||
	    (err = entry_meta_dup(&h, &f->meta, &f->metabuf)))
		return err;
	if (f->size > UINT64_MAX - f->header_len)
		return -EFBIG;
	f->reserve = f->header_len + f->size;
	key_hash(&meta->id, f->hn.hash);
	return 0;
}

int cache_fill_begin(struct cache *c, const struct cache_meta *meta, struct cache_fill **out)
{
	struct cache_fill *f = NULL;
	int err = key_check(&meta->id);

	*out = NULL;
	if (err || (err = fill_new(c, meta, &f)))
		goto err;
	/* cheap early answer for a herd, before creating a file; fill_register decides */
	if (is_fill_running(c, f->hn.hash)) {
		err = -EEXIST;
		goto err;
	}
	if ((err = fill_create(c, f)) || (err = fill_register(c, f)))
		goto err;
	*out = f;
	return 0;
err:
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
	f->crc = (uint32_t)crc32_z(f->crc, buf, len);
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

	*crc = (uint32_t)crc32_z(0, NULL, 0);
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
		*crc = (uint32_t)crc32_z(*crc, (const unsigned char *)buf, (size_t)r);
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

/* Unregisters f and releases its reservation; when is_kept, renames its file into place
 * and indexes e (the entry built for it), replacing an older entry of the same hash.
 * Returns the final state; *err says why a complete fill was not kept. */
static enum cache_fill_state fill_settle(struct cache *c, struct cache_fill *f, struct entry *e,
					 bool is_kept, int *err)
{
	enum cache_fill_state state = is_kept ? CACHE_FILL_COMMITTED : CACHE_FILL_ABORTED;
	char name[CACHE_NAME_LEN];
	struct hnode *old;

	hash_name(f->hn.hash, name);
	pthread_mutex_lock(&c->mu);
	if (is_kept && f->is_stale) {
		state = CACHE_FILL_DISCARDED;
		*err = -ESTALE;
	} else if (is_kept && renameat(c->tmpfd, f->tmpname, c->objfd, name)) {
		state = CACHE_FILL_DISCARDED;
		*err = -errno;
		cache_log(c, "cache: tmp/%s: rename: %s", f->tmpname, strerror(errno));
	}
	if (state == CACHE_FILL_COMMITTED) {
		old = htab_find(&c->entries, f->hn.hash);
		if (old)
			index_drop(c, (struct entry *)old); /* its file was just replaced */
		index_add(c, e);
		lru_push_head(c, e);
		c->st.fills_committed++;
	} else {
		unlinkat(c->tmpfd, f->tmpname, 0);
		c->st.fills_aborted++;
	}
	htab_remove(&c->fills, &f->hn);
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
	const struct cache_key *id = &f->meta.id;
	enum cache_fill_state state;
	struct entry *e = NULL;
	int err = fill_seal(f, expected_crc);

	if (!err) {
		e = index_new(f->hn.hash, id->bucket, strlen(id->bucket), id->key, strlen(id->key),
			      id->version, strlen(id->version));
		err = e ? 0 : -ENOMEM;
	}
	if (err) {
		free(e);
		cache_fill_abort(f, err);
		return err;
	}
	e->file_size = f->reserve;
	e->stamp = time(NULL);
	state = fill_settle(f->c, f, e, true, &err);
	if (state != CACHE_FILL_COMMITTED)
		free(e);
	fill_finish(f, state, 0);
	return err;
}

/* A write made k stale: a fill running for it must not be committed. */
void fill_mark_stale_locked(struct cache *c, const struct cache_key *k)
{
	uint8_t hash[CACHE_HASH_LEN];
	struct cache_fill *f;

	key_hash(k, hash);
	f = (struct cache_fill *)htab_find(&c->fills, hash);
	if (!f || !is_same_key(&f->meta.id, k))
		return;
	pthread_mutex_lock(&f->mu);
	f->is_stale = true;
	pthread_mutex_unlock(&f->mu);
}

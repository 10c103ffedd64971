/* The scrubber (issue 13): the daemon's control thread calls cache_scrub() with a byte
 * budget; it walks the LRU from the tail (coldest first) and verifies every committed
 * chunk once per pass, unless a reader verified it in this pass already, so corruption
 * of cold data is found before a reader needs it. A chunk larger than a call's budget is
 * read over several calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache-int.h"

#define SCRUB_BUF (1 << 20)
/* Chunks looked at under one hold of the store's lock while skipping verified ones. */
#define SCRUB_SKIP_MAX 4096

enum scrub_pick {
	SCRUB_PICKED, /* c->scrub holds the next chunk to read */
	SCRUB_MORE,   /* only skipped chunks this time: ask again */
	SCRUB_DONE,   /* the pass ended or there is nothing to scrub */
};

/* Moves the cursor to the next chunk due in this pass and takes it. */
static enum scrub_pick pick_locked(struct cache *c, struct chunk **out)
{
	struct scrub *s = &c->scrub;

	if (!s->is_walking) {
		if (!c->lru_tail || c->health.is_degraded)
			return SCRUB_DONE;
		s->cursor = c->lru_tail;
		s->is_walking = true;
	}
	for (int i = 0; i < SCRUB_SKIP_MAX; i++) {
		struct chunk *ch = s->cursor;

		if (!ch) {
			s->is_walking = false;
			s->pass++;
			c->st.scrub_passes++;
			return SCRUB_DONE;
		}
		s->cursor = ch->lru_prev;
		if (ch->verified_pass < s->pass) {
			*out = ch;
			return SCRUB_PICKED;
		}
	}
	return SCRUB_MORE;
}

/* Makes ch the chunk being read. */
static void take_locked(struct cache *c, struct chunk *ch, struct chunk_expect *e)
{
	struct scrub *s = &c->scrub;

	memcpy(s->hash, ch->hn.hash, CACHE_HASH_LEN);
	s->id = ch->id;
	e->header_len = ch->header_len;
	e->crc = s->want = ch->crc;
	e->len = cache_chunk_len(ch->obj->size, ch->obj->chunk_size, ch->index);
	s->off = ch->header_len;
	s->len = e->len;
	s->end = s->off + e->len;
	s->crc = crc_update(0, NULL, 0);
}

/* Opens the chunk being read and checks its length and header; nonzero if it is gone or
 * was dropped. */
static int scrub_open(struct cache *c, const struct chunk_expect *e)
{
	struct scrub *s = &c->scrub;
	char why[160];
	/* O_NOATIME: a file's atime is its LRU recency after a restart; a scrub is no use. */
	int fd = chunk_open_fd(c, s->hash, s->id, O_NOATIME), err;

	if (fd < 0)
		return fd;
	err = verify_head(fd, e, why, sizeof(why));
	if (err == -EBADMSG)
		chunk_drop_corrupt(c, s->hash, s->id, why);
	if (err)
		close(fd);
	else
		s->fd = fd;
	return err;
}

/* Takes the next chunk to read into c->scrub; SCRUB_DONE when the pass is over. */
static enum scrub_pick scrub_next(struct cache *c)
{
	struct chunk_expect e;
	struct chunk *ch = NULL;
	enum scrub_pick r;

	pthread_mutex_lock(&c->mu);
	r = pick_locked(c, &ch);
	if (r == SCRUB_PICKED)
		take_locked(c, ch, &e);
	pthread_mutex_unlock(&c->mu);
	if (r == SCRUB_PICKED && scrub_open(c, &e))
		r = SCRUB_MORE; /* gone or corrupt: on to the next */
	return r;
}

/* The whole body was read: the chunk is verified for this pass, or dropped. */
static void scrub_finish(struct cache *c)
{
	struct scrub *s = &c->scrub;
	struct chunk *ch;
	char why[96];

	close(s->fd);
	s->fd = -1;
	if (s->crc != s->want) {
		snprintf(why, sizeof(why), "body CRC-32 %08x, header says %08x", s->crc, s->want);
		chunk_drop_corrupt(c, s->hash, s->id, why);
	}
	pthread_mutex_lock(&c->mu);
	ch = chunk_by_id_locked(c, s->hash, s->id);
	if (ch && ch->verified_pass < s->pass)
		ch->verified_pass = s->pass;
	c->st.scrub_chunks++;
	c->st.scrub_bytes += s->len;
	pthread_mutex_unlock(&c->mu);
}

/* Reads up to n more bytes of the chunk being read; returns how many, or -ENOMEM. */
static int64_t scrub_read(struct cache *c, void *buf, uint64_t n)
{
	struct scrub *s = &c->scrub;
	char why[160];
	int err;

	if (n > s->end - s->off)
		n = s->end - s->off;
	err = verify_body(s->fd, s->off, n, buf, SCRUB_BUF, &s->crc, why, sizeof(why));
	if (err == -ENOMEM)
		return err;
	s->off += n;
	if (err) {
		chunk_drop_corrupt(c, s->hash, s->id, why);
		close(s->fd);
		s->fd = -1;
	} else if (s->off == s->end) {
		scrub_finish(c);
	}
	return (int64_t)n;
}

int64_t cache_scrub(struct cache *c, uint64_t budget)
{
	enum scrub_pick r = SCRUB_MORE;
	int64_t done = 0, n;
	void *buf = budget ? malloc(SCRUB_BUF) : NULL;

	if (!budget)
		return 0;
	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&c->ctl_mu);
	while ((uint64_t)done < budget && r != SCRUB_DONE) {
		if (c->scrub.fd < 0) {
			r = scrub_next(c);
			continue;
		}
		n = scrub_read(c, buf, budget - (uint64_t)done);
		if (n < 0) {
			done = n;
			break;
		}
		done += n;
	}
	pthread_mutex_unlock(&c->ctl_mu);
	free(buf);
	return done;
}

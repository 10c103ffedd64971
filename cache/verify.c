/* Verification of a committed chunk (issue 13): its file's length, its header, and the
 * CRC-32 of its body against the one written at commit. A reader verifies a chunk before
 * its first byte is sent after it was written or since start (reading it also warms the
 * page cache for the sendfile that follows); the scrubber uses the same checks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache-int.h"

#define VERIFY_BUF (1 << 20)
#define HEAD_BUF 4096

/* 0 if fd's length and header are those of e; -EBADMSG (why says how) if not; another
 * negative errno if it could not tell (no memory). */
int verify_head(int fd, const struct chunk_expect *e, char *why, size_t whylen)
{
	uint8_t buf[HEAD_BUF], *big = NULL;
	struct entry_hdr h;
	struct stat st;
	int err;

	if (fstat(fd, &st)) {
		snprintf(why, whylen, "fstat: %s", strerror(errno));
		return -EBADMSG;
	}
	if ((uint64_t)st.st_size != e->header_len + e->len) {
		snprintf(why, whylen, "file is %lld bytes, the chunk needs %llu",
			 (long long)st.st_size, (unsigned long long)(e->header_len + e->len));
		return -EBADMSG;
	}
	err = entry_read(fd, buf, sizeof(buf), &big, &h);
	free(big);
	if (err == -ENOMEM)
		return err;
	if (err) {
		snprintf(why, whylen, "header: %s", strerror(-err));
		return -EBADMSG;
	}
	if (h.header_len != e->header_len || h.len != e->len || h.crc != e->crc) {
		snprintf(why, whylen, "header changed since it was indexed");
		return -EBADMSG;
	}
	return 0;
}

/* Reads n body bytes at off into buf (bufsz) and folds them into *crc. -EBADMSG (why) if
 * the file ends early or the disk says EIO; those bytes cannot be served. */
int verify_body(int fd, uint64_t off, uint64_t n, void *buf, size_t bufsz, uint32_t *crc, char *why,
		size_t whylen)
{
	while (n) {
		ssize_t r = pread(fd, buf, n < bufsz ? n : bufsz, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, whylen, "read at %llu: %s", (unsigned long long)off,
				 strerror(errno));
			return errno == ENOMEM ? -ENOMEM : -EBADMSG;
		}
		if (r == 0) {
			snprintf(why, whylen, "file ends at %llu", (unsigned long long)off);
			return -EBADMSG;
		}
		*crc = crc_update(*crc, buf, (size_t)r);
		off += (uint64_t)r;
		n -= (uint64_t)r;
	}
	return 0;
}

/* Each thread's read buffer, kept for the thread's life: a new MiB for every chunk would be
 * a new mapping whose pages fault in on each first hit (2-3 ms per MiB where the VM hands
 * free memory back to its host, as these do). */
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static int buf_key_err;

static void buf_key_make(void)
{
	buf_key_err = pthread_key_create(&buf_key, free);
}

static void *thread_buf(void)
{
	void *buf;

	if (pthread_once(&buf_once, buf_key_make) || buf_key_err)
		return NULL;
	buf = pthread_getspecific(buf_key);
	if (!buf && (buf = malloc(VERIFY_BUF)) && pthread_setspecific(buf_key, buf)) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

/* Checks the whole file of h; 0, -EBADMSG (why) or another negative errno. */
static int verify_file(struct chunk_handle *h, char *why, size_t whylen)
{
	struct chunk_expect e = {h->header_len, h->crc, h->pub.len};
	uint32_t crc = crc_update(0, NULL, 0);
	void *buf;
	int err = verify_head(h->pub.fd, &e, why, whylen);

	if (err)
		return err;
	buf = thread_buf();
	if (!buf)
		return -ENOMEM;
	err = verify_body(h->pub.fd, h->header_len, h->pub.len, buf, VERIFY_BUF, &crc, why, whylen);
	if (!err && crc != h->crc) {
		snprintf(why, whylen, "body CRC-32 %08x, header says %08x", crc, h->crc);
		err = -EBADMSG;
	}
	return err;
}

/* Sets the chunk's bit; true if another verification had already set it. */
static bool mark_verified(struct cache *c, struct chunk_handle *h, bool is_done)
{
	struct chunk *ch;
	bool was = false;

	pthread_mutex_lock(&c->mu);
	ch = chunk_by_id_locked(c, h->hash, h->id);
	if (ch) {
		was = ch->verified_pass != 0;
		if (is_done && !was) {
			ch->verified_pass = c->scrub.pass;
			c->st.verified_chunks++;
			c->st.verified_bytes += h->pub.len;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return was;
}

int cache_chunk_verify(struct cache_chunk *pub)
{
	struct chunk_handle *h = (struct chunk_handle *)pub;
	char why[160];
	int err;

	if (pub->is_verified || mark_verified(h->c, h, false)) {
		pub->is_verified = true;
		return 0;
	}
	err = verify_file(h, why, sizeof(why));
	if (err == -EBADMSG)
		chunk_drop_corrupt(h->c, h->hash, h->id, why);
	if (err)
		return err;
	mark_verified(h->c, h, true);
	pub->is_verified = true;
	return 0;
}

/* The chunk file header: encoding at fill begin, CRC patching at commit, decoding and
 * validation at lookup, verification and recovery. Little-endian, self-checking (CRC-32 of
 * the header), and the chunk's body follows at offset header_len. Layout:
 *   0  magic "lotaobj\n"   8  u32 format (2)     12 u32 header_len   16 u64 chunk length
 *   24 u32 body crc32      28 u16 x6 lengths of bucket, key, version, etag,
 *   last_modified, content_type                   40 u32 extra_len    44 u32 chunk index
 *   48 u64 object size     56 u64 chunk size (of the version)
 *   64 the six fields then extra, no separators; last 4 bytes: u32 crc32 of all before.
 * Format 1 (whole objects, before chunks) is refused with -EPROTONOSUPPORT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cache-int.h"

static const size_t FIELD_MAX[ENTRY_NFIELDS] = {
    CACHE_BUCKET_MAX, CACHE_KEY_MAX,	 CACHE_VERSION_MAX,
    CACHE_ETAG_MAX,   CACHE_LASTMOD_MAX, CACHE_CTYPE_MAX,
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void fields_of(const struct cache_meta *m, const char *f[ENTRY_NFIELDS])
{
	f[0] = m->id.bucket;
	f[1] = m->id.key;
	f[2] = m->id.version;
	f[3] = m->etag;
	f[4] = m->last_modified;
	f[5] = m->content_type;
	for (int i = 0; i < ENTRY_NFIELDS; i++)
		if (!f[i])
			f[i] = "";
}

/* Allocates *out with the header of chunk index (len bytes) of m, whose chunk_size is
 * resolved; body CRC 0 until entry_set_crc(). */
int entry_encode(const struct cache_meta *m, uint32_t index, uint64_t len, uint8_t **out,
		 uint32_t *hlen)
{
	const char *f[ENTRY_NFIELDS];
	size_t flen[ENTRY_NFIELDS], total = ENTRY_FIXED_LEN + 4;
	uint8_t *buf, *p;

	fields_of(m, f);
	for (int i = 0; i < ENTRY_NFIELDS; i++) {
		flen[i] = strnlen(f[i], FIELD_MAX[i] + 1);
		if (flen[i] > FIELD_MAX[i])
			return i < 3 ? -ENAMETOOLONG : -E2BIG;
		total += flen[i];
	}
	if (m->extra_len > CACHE_EXTRA_MAX || (m->extra_len && !m->extra))
		return -E2BIG;
	total += m->extra_len;
	buf = calloc(1, total);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, ENTRY_MAGIC, 8);
	put32(buf + 8, ENTRY_FORMAT);
	put32(buf + 12, (uint32_t)total);
	put64(buf + 16, len);
	for (int i = 0; i < ENTRY_NFIELDS; i++)
		put16(buf + 28 + 2 * i, (uint16_t)flen[i]);
	put32(buf + 40, (uint32_t)m->extra_len);
	put32(buf + 44, index);
	put64(buf + 48, m->size);
	put64(buf + 56, m->chunk_size);
	p = buf + ENTRY_FIXED_LEN;
	for (int i = 0; i < ENTRY_NFIELDS; i++) {
		memcpy(p, f[i], flen[i]);
		p += flen[i];
	}
	if (m->extra_len)
		memcpy(p, m->extra, m->extra_len);
	entry_set_crc(buf, (uint32_t)total, 0);
	*out = buf;
	*hlen = (uint32_t)total;
	return 0;
}

void entry_set_crc(uint8_t *hdr, uint32_t len, uint32_t body_crc)
{
	put32(hdr + 24, body_crc);
	put32(hdr + len - 4, (uint32_t)crc32(0, hdr, len - 4));
}

/* Validates buf[0, len) as a whole header; -EAGAIN if only the first len bytes were read
 * and the header (h->header_len) is longer; -EBADMSG if it is not a valid header;
 * -EPROTONOSUPPORT if it is one of another format. */
int entry_decode(const uint8_t *buf, size_t len, struct entry_hdr *h)
{
	uint64_t total = ENTRY_FIXED_LEN + 4;
	const uint8_t *p;

	if (len < 12 || memcmp(buf, ENTRY_MAGIC, 8))
		return -EBADMSG;
	if (get32(buf + 8) != ENTRY_FORMAT)
		return -EPROTONOSUPPORT;
	if (len < ENTRY_FIXED_LEN)
		return -EBADMSG;
	h->header_len = get32(buf + 12);
	h->len = get64(buf + 16);
	h->crc = get32(buf + 24);
	h->extra_len = get32(buf + 40);
	h->index = get32(buf + 44);
	h->size = get64(buf + 48);
	h->chunk_size = get64(buf + 56);
	for (int i = 0; i < ENTRY_NFIELDS; i++) {
		h->field_len[i] = get16(buf + 28 + 2 * i);
		if (h->field_len[i] > FIELD_MAX[i])
			return -EBADMSG;
		total += h->field_len[i];
	}
	if (h->extra_len > CACHE_EXTRA_MAX || total + h->extra_len != h->header_len)
		return -EBADMSG;
	if (h->header_len > len)
		return -EAGAIN;
	if (get32(buf + h->header_len - 4) != (uint32_t)crc32(0, buf, h->header_len - 4))
		return -EBADMSG;
	p = buf + ENTRY_FIXED_LEN;
	for (int i = 0; i < ENTRY_NFIELDS; i++) {
		h->field[i] = (const char *)p;
		p += h->field_len[i];
	}
	h->extra = p;
	return 0;
}

/* Reads and decodes the header of fd into buf (cap bytes, enough for most headers) or,
 * when it is longer, into *big (malloc'ed; the caller frees it). */
int entry_read(int fd, uint8_t *buf, size_t cap, uint8_t **big, struct entry_hdr *h)
{
	ssize_t n = pread(fd, buf, cap, 0);
	int err;

	*big = NULL;
	if (n < 0)
		return -errno;
	err = entry_decode(buf, (size_t)n, h);
	if (err != -EAGAIN || (size_t)n < cap)
		return err == -EAGAIN ? -EBADMSG : err;
	*big = malloc(h->header_len);
	if (!*big)
		return -ENOMEM;
	n = pread(fd, *big, h->header_len, 0);
	if (n < 0)
		return -errno;
	err = entry_decode(*big, (size_t)n, h);
	return err == -EAGAIN ? -EBADMSG : err;
}

/* Fills m with NUL-terminated copies of h's fields in one allocation (*buf). */
int entry_meta_dup(const struct entry_hdr *h, struct cache_meta *m, char **buf)
{
	size_t total = h->extra_len + ENTRY_NFIELDS;
	const char **dst[ENTRY_NFIELDS] = {&m->id.bucket, &m->id.key,	     &m->id.version,
					   &m->etag,	  &m->last_modified, &m->content_type};
	char *p;

	for (int i = 0; i < ENTRY_NFIELDS; i++)
		total += h->field_len[i];
	p = malloc(total ? total : 1);
	if (!p)
		return -ENOMEM;
	*buf = p;
	for (int i = 0; i < ENTRY_NFIELDS; i++) {
		memcpy(p, h->field[i], h->field_len[i]);
		p[h->field_len[i]] = '\0';
		*dst[i] = p;
		p += h->field_len[i] + 1;
	}
	memcpy(p, h->extra, h->extra_len);
	m->extra = p;
	m->extra_len = h->extra_len;
	m->size = h->size;
	m->chunk_size = h->chunk_size;
	return 0;
}

static size_t str_or_empty_len(const char *s)
{
	return s ? strlen(s) : 0;
}

/* Fills m with copies of src's strings in one allocation (*buf); NULL strings become "". */
int meta_dup(const struct cache_meta *src, struct cache_meta *m, char **buf)
{
	const char *from[ENTRY_NFIELDS] = {src->id.bucket, src->id.key,	       src->id.version,
					   src->etag,	   src->last_modified, src->content_type};
	const char **dst[ENTRY_NFIELDS] = {&m->id.bucket, &m->id.key,	     &m->id.version,
					   &m->etag,	  &m->last_modified, &m->content_type};
	size_t total = src->extra_len + ENTRY_NFIELDS;
	char *p;

	for (int i = 0; i < ENTRY_NFIELDS; i++)
		total += str_or_empty_len(from[i]);
	p = malloc(total);
	if (!p)
		return -ENOMEM;
	*m = *src;
	*buf = p;
	for (int i = 0; i < ENTRY_NFIELDS; i++) {
		size_t n = str_or_empty_len(from[i]);

		memcpy(p, n ? from[i] : "", n + 1);
		*dst[i] = p;
		p += n + 1;
	}
	if (src->extra_len)
		memcpy(p, src->extra, src->extra_len);
	m->extra = p;
	return 0;
}

static bool field_eq(const char *f, size_t flen, const char *s)
{
	return strlen(s) == flen && !memcmp(f, s, flen);
}

bool entry_tuple_eq(const struct entry_hdr *h, const struct cache_key *k)
{
	return field_eq(h->field[0], h->field_len[0], k->bucket) &&
	       field_eq(h->field[1], h->field_len[1], k->key) &&
	       field_eq(h->field[2], h->field_len[2], k->version ? k->version : "");
}

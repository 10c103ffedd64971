/* Hashes and names: a 128-bit FNV-1a hash of the length-prefixed (bucket, key, version)
 * tuple keys the objects in memory; a chunk's file is named by the hash of its whole
 * identity (tuple, ETag, object size, chunk size, index), in hex, fanned out as
 * objects/ab/cdef... A path is never built from the key itself. FNV is not
 * collision-resistant; a collision only makes two identities share a name, which the
 * index refuses (-EBUSY) and recovery rejects (the header carries the full identity), so
 * it costs a miss, never a wrong body.
 */
#include <errno.h>
#include <string.h>

#include "cache-int.h"

static const char HEX[] = "0123456789abcdef";

static const char *version_of(const struct cache_key *k)
{
	return k->version ? k->version : "";
}

/* 0 if the tuple is usable: bucket and key present and every part within its bound. */
int key_check(const struct cache_key *k)
{
	if (!k || !k->bucket || !k->key || !k->bucket[0])
		return -EINVAL;
	if (strnlen(k->bucket, CACHE_BUCKET_MAX + 1) > CACHE_BUCKET_MAX ||
	    strnlen(k->key, CACHE_KEY_MAX + 1) > CACHE_KEY_MAX ||
	    strnlen(version_of(k), CACHE_VERSION_MAX + 1) > CACHE_VERSION_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static unsigned __int128 fnv_bytes(unsigned __int128 h, const void *p, size_t len)
{
	/* times the FNV-128 prime 2^88 + 2^8 + 0x3b, as a shift and a small multiply */
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h = (h << 88) + h * 0x13b;
	}
	return h;
}

/* Each part is prefixed by its 32-bit little-endian length so ("ab","c") != ("a","bc"). */
static unsigned __int128 fnv_part(unsigned __int128 h, const char *s)
{
	size_t len = strlen(s);
	unsigned char pre[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};

	h = fnv_bytes(h, pre, sizeof(pre));
	return fnv_bytes(h, s, len);
}

static unsigned __int128 fnv_u64(unsigned __int128 h, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	return fnv_bytes(h, b, sizeof(b));
}

static unsigned __int128 fnv_tuple(const struct cache_key *k)
{
	unsigned __int128 h =
	    ((unsigned __int128)0x6c62272e07bb0142ULL << 64) | 0x62b821756295c58dULL;

	h = fnv_part(h, k->bucket);
	h = fnv_part(h, k->key);
	return fnv_part(h, version_of(k));
}

static void hash_out(unsigned __int128 h, uint8_t hash[CACHE_HASH_LEN])
{
	for (int i = CACHE_HASH_LEN - 1; i >= 0; i--) {
		hash[i] = (uint8_t)h;
		h >>= 8;
	}
}

void key_hash(const struct cache_key *k, uint8_t hash[CACHE_HASH_LEN])
{
	hash_out(fnv_tuple(k), hash);
}

/* The key's hash and the state after the version's part of a chunk identity, kept per
 * object so that a chunk's name costs only its index. The tag keeps chunk names apart
 * from key hashes. */
void version_hashes(const struct cache_key *k, const struct version *v,
		    uint8_t key[CACHE_HASH_LEN], uint64_t seed[2])
{
	unsigned __int128 h = fnv_tuple(k);

	hash_out(h, key);
	h = fnv_part(h, "chunk");
	h = fnv_part(h, v->etag);
	h = fnv_u64(h, v->size);
	h = fnv_u64(h, v->chunk_size);
	seed[0] = (uint64_t)(h >> 64);
	seed[1] = (uint64_t)h;
}

void chunk_hash(const uint64_t seed[2], uint32_t index, uint8_t hash[CACHE_HASH_LEN])
{
	unsigned __int128 h = (unsigned __int128)seed[0] << 64 | seed[1];

	hash_out(fnv_u64(h, index), hash);
}

/* "ab/cdef...": the first byte names one of 256 fan-out directories. */
void hash_name(const uint8_t hash[CACHE_HASH_LEN], char name[CACHE_NAME_LEN])
{
	char *p = name;

	for (int i = 0; i < CACHE_HASH_LEN; i++) {
		*p++ = HEX[hash[i] >> 4];
		*p++ = HEX[hash[i] & 15];
		if (i == 0)
			*p++ = '/';
	}
	*p = '\0';
}

static int hex_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Parses a fan-out directory name (2 hex) and a file name (30 hex) back into the hash;
 * -EINVAL for anything else, so stray files are recognized. */
int hash_from_name(const char *dir, const char *file, uint8_t hash[CACHE_HASH_LEN])
{
	char hex[2 * CACHE_HASH_LEN];

	if (strlen(dir) != 2 || strlen(file) != 2 * CACHE_HASH_LEN - 2)
		return -EINVAL;
	memcpy(hex, dir, 2);
	memcpy(hex + 2, file, 2 * CACHE_HASH_LEN - 2);
	for (int i = 0; i < CACHE_HASH_LEN; i++) {
		int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		hash[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

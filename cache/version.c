/* A version's geometry: how many chunks an object of a size is cut into, how long each
 * is, and the version tuple (ETag, size, chunk size) a caller's metadata resolves to. */
#include <errno.h>
#include <string.h>

#include "cache-int.h"

uint64_t cache_chunk_count(uint64_t size, uint64_t chunk_size)
{
	if (!chunk_size)
		return 0;
	return size ? (size - 1) / chunk_size + 1 : 1;
}

uint64_t cache_chunk_len(uint64_t size, uint64_t chunk_size, uint64_t index)
{
	uint64_t off;

	if (index >= cache_chunk_count(size, chunk_size))
		return 0;
	off = index * chunk_size; /* index <= (size - 1) / chunk_size: no overflow */
	return size - off < chunk_size ? size - off : chunk_size;
}

uint64_t cache_chunk_size(const struct cache *c)
{
	return c->chunk_size;
}

int version_resolve(const struct cache *c, const struct cache_meta *m, struct version *v)
{
	uint64_t n;

	v->etag = m->etag ? m->etag : "";
	v->size = m->size;
	v->chunk_size = m->chunk_size ? m->chunk_size : c->chunk_size;
	if (strnlen(v->etag, CACHE_ETAG_MAX + 1) > CACHE_ETAG_MAX)
		return -E2BIG;
	n = cache_chunk_count(v->size, v->chunk_size);
	if (n > CACHE_CHUNKS_MAX)
		return -EFBIG;
	v->nchunks = (uint32_t)n;
	return 0;
}

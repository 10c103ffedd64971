/* Chunk arithmetic. Every quantity is a uint64_t and no step can overflow for a size and a
 * chunk size the store accepts (chunk_size >= 1, size < 2^63). */
#include "chunkmap.h"

uint64_t chunkmap_count(uint64_t size, uint64_t chunk_size)
{
	return size == 0 ? 1 : (size - 1) / chunk_size + 1;
}

uint64_t chunkmap_start(uint64_t chunk_size, uint64_t index)
{
	return index * chunk_size;
}

uint64_t chunkmap_len(uint64_t size, uint64_t chunk_size, uint64_t index)
{
	uint64_t start = index * chunk_size;

	if (index >= chunkmap_count(size, chunk_size) || start >= size)
		return 0;
	return size - start < chunk_size ? size - start : chunk_size;
}

void chunkmap_span(uint64_t size, uint64_t chunk_size, uint64_t first, uint64_t last,
		   uint64_t *from, uint64_t *to)
{
	if (size == 0) {
		*from = *to = 0;
		return;
	}
	*from = first / chunk_size;
	*to = last / chunk_size;
}

struct chunk_part chunkmap_part(uint64_t size, uint64_t chunk_size, uint64_t first, uint64_t last,
				uint64_t index)
{
	uint64_t start = index * chunk_size, len = chunkmap_len(size, chunk_size, index);
	uint64_t a = first > start ? first : start, b = last < start + len - 1 ? last : start + len - 1;
	struct chunk_part p = {index, 0, 0};

	if (len == 0 || first > last || last < start || first >= start + len)
		return p;
	p.off = a - start;
	p.len = b - a + 1;
	return p;
}

/* Where bytes of an object live in its chunks: fixed-size chunks aligned from offset 0
 * (the last one shorter; a zero-length object is one empty chunk), as the store keeps
 * them (cache/cache.h). Pure arithmetic. */
#ifndef LOTA_CHUNKMAP_H
#define LOTA_CHUNKMAP_H

#include <stdbool.h>
#include <stdint.h>

/* A part of one chunk: bytes [off, off + len) of chunk index. */
struct chunk_part {
	uint64_t index;
	uint64_t off, len;
};

/* The chunks that hold bytes [first, last] (inclusive, last < size) of an object of
 * size bytes cut into chunk_size pieces: indices [*from, *to]. For size 0 (first = 0,
 * last = 0 by convention) the one empty chunk 0. */
void chunkmap_span(uint64_t size, uint64_t chunk_size, uint64_t first, uint64_t last,
		   uint64_t *from, uint64_t *to);
/* The part of chunk index that [first, last] covers (len 0 if none). */
struct chunk_part chunkmap_part(uint64_t size, uint64_t chunk_size, uint64_t first, uint64_t last,
				uint64_t index);
/* Where chunk index starts in the object, and how long it is. */
uint64_t chunkmap_start(uint64_t chunk_size, uint64_t index);
uint64_t chunkmap_len(uint64_t size, uint64_t chunk_size, uint64_t index);
uint64_t chunkmap_count(uint64_t size, uint64_t chunk_size);

#endif

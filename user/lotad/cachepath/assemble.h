/* The body of a read served from chunks (assemble.c). */
#ifndef LOTA_ASSEMBLE_H
#define LOTA_ASSEMBLE_H

#include <stdbool.h>
#include <stdint.h>

struct exchange;
struct cachepath;
struct cache_meta;
struct fills_spill;

/* Serves bytes [first, last] of version m (copied) as x's body: sets x's mover. The
 * caller has written the response head. spill (or NULL): the stream this reader adopted
 * (fills_adopt), whose bytes it gets where the store could not keep them; the assembler
 * releases it. */
int assemble_start(struct exchange *x, struct cachepath *cp, const struct cache_meta *m,
		   uint64_t first, uint64_t last, struct fills_spill *spill);
/* The same for a chunk another node asked this one for (its owner, as it sees the
 * cluster): every chunk is this node's to serve, so that no request goes two hops. */
int assemble_start_owner(struct exchange *x, struct cachepath *cp, const struct cache_meta *m,
			 uint64_t first, uint64_t last);
/* Can every chunk of [first, last] be had? Without service credentials only those
 * committed or being filled can; with them, all. */
bool assemble_can_serve(struct cachepath *cp, const struct cache_meta *m, uint64_t first,
			uint64_t last);

#endif

/* A committed chunk's own opaque extra field, read from the header of the file its handle
 * holds open: for data the daemon keeps per chunk rather than per version (an SSE-C
 * chunk's tag), consistent with the bytes read through the same fd. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cache-int.h"

int cache_chunk_extra(const struct cache_chunk *ch, void *buf, size_t cap, size_t *len)
{
	uint8_t small[4096], *big = NULL;
	struct entry_hdr h;
	int err = entry_read(ch->fd, small, sizeof(small), &big, &h);

	if (err == 0 && (h.index != ch->index || h.len != ch->len))
		err = -EBADMSG; /* not the header of the chunk this handle is about */
	if (err == 0 && h.extra_len > cap)
		err = -E2BIG;
	if (err == 0) {
		memcpy(buf, h.extra, h.extra_len);
		*len = h.extra_len;
	}
	free(big);
	return err;
}

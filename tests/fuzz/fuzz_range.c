/* libFuzzer target for user/range.c: the Range parser against an object size taken from
 * the input, the formatters, and the Content-Range parser. Checks the invariants a
 * server relies on: a partial range always lies inside the object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[RANGE_CONTENT_RANGE_MAX];
	struct content_range cr;
	struct range r;
	uint64_t obj = 0;
	char *copy;

	if (size >= 8) {
		memcpy(&obj, data, 8);
		/* small sizes are where the edges are */
		if (data[0] & 1)
			obj &= 0xff;
		data += 8;
		size -= 8;
	}
	/* a copy of exactly size bytes, so ASan catches any read past the end */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (range_parse(copy, size, obj, &r) == RANGE_PARTIAL) {
		if (r.first > r.last || r.last >= obj)
			abort();
		if (range_format(&r, obj, buf, sizeof(buf)) != 0)
			abort();
		if (range_parse_content_range(buf, strlen(buf), &cr) != 0 || cr.first != r.first ||
		    cr.last != r.last || cr.size != obj)
			abort();
	}
	if (range_format_unsatisfied(obj, buf, sizeof(buf)) != 0)
		abort();
	if (range_parse_content_range(copy, size, &cr) == 0 && cr.has_range &&
	    (cr.first > cr.last || (cr.size_known && cr.last >= cr.size)))
		abort();
	free(copy);
	return 0;
}

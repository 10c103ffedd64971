/* libFuzzer target for user/peerhdr.c: the x-lota-peer value parser on arbitrary bytes.
 * Whatever it accepts has exactly one spelling: written back, it is the same bytes, and
 * read again, the same fields. Nothing may crash or read past the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerhdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[PEERHDR_VALUE_MAX];
	struct peerhdr h, again;
	/* a copy of exactly size bytes, so ASan catches any read past the end */
	char *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (peerhdr_parse(copy, size, &h) == 0) {
		if (peerhdr_check_node(h.node, strlen(h.node)) != 0 || h.ts < 0)
			abort();
		if (peerhdr_format(&h, out, sizeof(out)) != 0 || strlen(out) != size ||
		    memcmp(out, copy, size) != 0)
			abort();
		if (peerhdr_parse(out, strlen(out), &again) != 0 ||
		    strcmp(again.node, h.node) != 0 || again.ts != h.ts ||
		    memcmp(again.nonce, h.nonce, sizeof(h.nonce)) != 0 ||
		    memcmp(again.sig, h.sig, sizeof(h.sig)) != 0)
			abort();
	}
	free(copy);
	return 0;
}

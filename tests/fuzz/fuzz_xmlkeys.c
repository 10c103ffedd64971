/* libFuzzer: the DeleteObjects body scanner never reads out of bounds and every key
 * it reports is non-empty and bounded. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmlkeys.h"

static void check(void *arg, const char *key, const char *version)
{
	if (!key[0] || strlen(key) > 1024 || strlen(version) > 1024)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	xmlkeys_each(copy, size, check, NULL);
	free(copy);
	return 0;
}

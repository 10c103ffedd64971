/* keyid.h. */
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cachepath/keyid.h"

size_t keyid_make(const struct cache_key *k, char **out)
{
	const char *v = k->version ? k->version : "";
	size_t a = strlen(k->bucket) + 1, b = strlen(k->key) + 1, c = strlen(v) + 1;
	char *id = malloc(a + b + c);

	if (!id)
		return 0;
	memcpy(id, k->bucket, a);
	memcpy(id + a, k->key, b);
	memcpy(id + a + b, v, c);
	*out = id;
	return a + b + c;
}

uint64_t keyid_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	while (n--) {
		h ^= (unsigned char)*p++;
		h *= 1099511628211ULL;
	}
	return h;
}

/* A key's identity as one string (bucket \0 key \0 version \0) and its hash, for the
 * cache path's tables (the herd, the versions known). */
#ifndef LOTA_KEYID_H
#define LOTA_KEYID_H

#include <stddef.h>
#include <stdint.h>

struct cache_key;

/* Its length, the string (malloc'd) in *out; 0 if out of memory. */
size_t keyid_make(const struct cache_key *k, char **out);
/* FNV-1a of the n bytes at p. */
uint64_t keyid_hash(const char *p, size_t n);

#endif

/* The keys a DeleteObjects request body names (<Object><Key>..</Key><VersionId>..
 * </VersionId></Object>), so that a multi-object delete can drop them from the cache. */
#ifndef LOTA_XMLKEYS_H
#define LOTA_XMLKEYS_H

#include <stddef.h>

/* Calls fn for each <Object> with its key and version ("" when none), entities decoded.
 * Returns the number of objects, or -EBADMSG for a malformed body (fn may have been
 * called for the objects before the fault). */
int xmlkeys_each(const char *xml, size_t n, void (*fn)(void *arg, const char *key, const char *version),
		 void *arg);

#endif

/* Cache metadata taken from an origin's response head: ETag, Last-Modified,
 * Content-Type and the headers a hit replays (x-amz-meta-*, Content-Encoding, ...). */
#ifndef LOTA_OBJMETA_H
#define LOTA_OBJMETA_H

#include "cache.h"
#include "http-t.h"

#define OBJMETA_EXTRA_MAX CACHE_EXTRA_MAX
/* Request and response fields of SSE-C (customer-provided keys), as the origin names them. */
#define OBJMETA_SSEC_PREFIX "x-amz-server-side-encryption-customer-"

struct objmeta {
	struct cache_meta meta;
	char *etag, *last_modified, *content_type, *extra;
	char *bucket, *key, *version; /* objmeta_copy only: the identity, owned */
};

/* size: the whole object's size. -E2BIG if the replayed headers are too big, -ENODATA
 * without an ETag or for a zero-byte object (never cached), -EPERM for an SSE-C object
 * (its plaintext is never stored: the origin answers If-None-Match before it checks the
 * customer key, so a 304 would not prove the next reader has the key), -ENOMEM. Free
 * with objmeta_free() in every case. */
int objmeta_from_response(struct objmeta *om, const struct cache_key *k, uint64_t size,
			  const struct http_msg *m);
/* A deep copy of src (identity and every string), for a fill that outlives the request
 * that learned it. -ENOMEM. Free with objmeta_free() in every case. */
int objmeta_copy(struct objmeta *om, const struct cache_meta *src);
void objmeta_free(struct objmeta *om);

#endif

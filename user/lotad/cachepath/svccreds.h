/* lotad's own credentials (service-credentials), for the requests it makes itself: chunk
 * fills, lotad's HEADs, pre-staging. Loaded at start, reloaded by the control thread when
 * the file changes, and used by every worker to sign: each request copies them under a
 * lock, so a reload never tears a signature. */
#ifndef LOTA_SVCCREDS_H
#define LOTA_SVCCREDS_H

#include <stddef.h>

struct evbuffer;
struct cache_key;
struct svccreds;
struct origin;

/* Extra request headers lotad signs (Range, If-Match). */
struct svccreds_header {
	const char *name;
	const char *value;
};

/* path: the shared-credentials file; region: the signing region (us-east-1 defers to the
 * profile's). -errno with err set if the file is unusable. */
int svccreds_new(const char *path, const char *region, struct svccreds **out, char *err,
		 size_t errlen);
void svccreds_free(struct svccreds *sc);
/* Control thread: reload if the file changed (a bad new file keeps the old ones). */
void svccreds_reload(struct svccreds *sc);
/* Appends a whole request head for method on k (path-style, versionId in the query) to
 * out, signed with the service credentials for origin o (its host, and its region if it
 * serves one: region-origins), with the given extra headers signed too. Any thread. */
int svccreds_request(struct svccreds *sc, const char *method, const struct origin *o,
		     const struct cache_key *k, const struct svccreds_header *extra, size_t n_extra,
		     struct evbuffer *out);
/* The same for a request on a bucket itself (/bucket?query, query already encoded). */
int svccreds_bucket_request(struct svccreds *sc, const char *method, const struct origin *o,
			    const char *bucket, const char *query, struct evbuffer *out);

#endif

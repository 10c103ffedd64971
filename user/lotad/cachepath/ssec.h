/* ssec.c: reads of SSE-C objects, cached sealed under the customer's key. */
#ifndef LOTA_SSEC_H
#define LOTA_SSEC_H

#include <stdbool.h>

#include "cachepath/cachepath-t.h"

/* The node's secret (dir/ssec.secret, made on first use): -errno if it cannot be had,
 * and then SSE-C reads are relayed, never cached. */
int ssec_new(const char *dir, struct ssec **out);
void ssec_free(struct ssec *s);
void ssec_route(struct cachepath *cp, struct route *rt);
/* The request's three SSE-C fields, each once, spelled as S3 spells them (any case), the
 * algorithm AES256: f[0] algorithm, f[1] key, f[2] key MD5. false: anything else of the
 * SSE-C family, which only the origin may judge. */
bool ssec_find_fields(const struct http_msg *m, const struct http_header *f[3]);
/* Fields that leave a read to the origin alone: If-Range, a second Range, the client's
 * own conditions. */
bool ssec_has_other_bypass(const struct http_msg *m);

#endif

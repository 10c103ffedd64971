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

#endif

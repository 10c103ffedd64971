/* ssecstage.c: pre-staging an SSE-C object, with the key in the HEAD. */
#ifndef LOTA_SSECSTAGE_H
#define LOTA_SSECSTAGE_H

#include "cachepath/cachepath-t.h"

/* The route of a HEAD with Range: bytes=0-0 and the three SSE-C fields; asked before the
 * plain pre-staging route, which relays the others. */
void ssecstage_route(struct cachepath *cp, struct route *rt);

#endif

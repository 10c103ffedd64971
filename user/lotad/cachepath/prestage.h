/* prestage.c: HEAD with Range: bytes=0-0 answers once the object is cached. */
#ifndef LOTA_PRESTAGE_H
#define LOTA_PRESTAGE_H

#include <stdbool.h>

#include "cachepath/cachepath-t.h"

void prestage_route(struct cachepath *cp, struct route *rt);

#endif

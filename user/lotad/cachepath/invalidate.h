/* invalidate.c: writes drop what they change. */
#ifndef LOTA_INVALIDATE_H
#define LOTA_INVALIDATE_H

#include <stdbool.h>

#include "cachepath/cachepath-t.h"

#define MULTI_DELETE_BODY_MAX (2 * 1024 * 1024) /* 1000 keys of 1 KiB, with their XML */
void invalidate_route(struct cachepath *cp, struct route *rt);

#endif

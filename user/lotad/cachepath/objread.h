/* objread.c: the read route. */
#ifndef LOTA_OBJREAD_H
#define LOTA_OBJREAD_H

#include <stdbool.h>

#include "cachepath/cachepath-t.h"

void objread_route(struct cachepath *cp, struct route *rt);

#endif

/* prestage.c: HEAD with Range: bytes=0-0 answers once the object is cached. */
#ifndef LOTA_PRESTAGE_H
#define LOTA_PRESTAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "cachepath/cachepath-t.h"

struct http_msg;

void prestage_route(struct cachepath *cp, struct route *rt);
/* The whole object's size from a pre-staging HEAD's answer: a 206's Content-Range or a
 * 200's Content-Length. -ENODATA if it does not say. */
int prestage_object_size(const struct http_msg *m, uint64_t *size);

#endif

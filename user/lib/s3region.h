/* Where an S3 answer says the bucket it was about lives: a 301 (PermanentRedirect), or a
 * 400 AuthorizationHeaderMalformed naming the region, in x-amz-bucket-region or, as AWS
 * S3 sends it, only in the error body's <Region>. Pure: no I/O, bounded input. */
#ifndef LOTA_S3REGION_H
#define LOTA_S3REGION_H

#include <stddef.h>

#include "http-t.h"

#define S3REGION_MAX 64	       /* bytes of a region name, NUL included */
#define S3REGION_BODY_MAX 2048 /* error body bytes looked at (AWS's is about 400) */

enum s3region_verdict {
	S3REGION_NONE,	/* nothing about where the bucket lives */
	S3REGION_NAMED, /* region holds the region named */
	S3REGION_MOVED, /* it lives elsewhere, no region named: learn it again */
	S3REGION_BODY,	/* a 400 whose body may name it: see s3region_of_body() */
};

/* What the head of an answer says. region gets a name only with S3REGION_NAMED; cap must
 * be at least 1. */
enum s3region_verdict s3region_of_head(const struct http_msg *m, char *region, size_t cap);
/* What the first n bytes of a 400's body say (n beyond S3REGION_BODY_MAX are ignored):
 * NAMED for an <Error> whose <Code> is AuthorizationHeaderMalformed and whose <Region>
 * holds a region name; anything else (another code, no region, a name that is not one)
 * is NONE. */
enum s3region_verdict s3region_of_body(const char *body, size_t n, char *region, size_t cap);

/* The first S3REGION_BODY_MAX bytes of a body that passes by in pieces. */
struct s3region_tap {
	size_t n;
	char buf[S3REGION_BODY_MAX];
};

#endif

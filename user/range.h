/* range: the HTTP Range request header as S3 reads it (one byte range per GET), the
 * Content-Range header lotad writes for 206/416 answers, and the Content-Range an origin
 * sends with a 206 (from which a fill learns the object's full size). */
#ifndef LOTA_RANGE_H
#define LOTA_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "bytes 18446744073709551614-18446744073709551614/18446744073709551615" plus NUL */
#define RANGE_CONTENT_RANGE_MAX 72

/* What to do with a request's Range header, S3's way. */
enum range_result {
	RANGE_WHOLE,	     /* no usable range: answer 200 with the whole object */
	RANGE_PARTIAL,	     /* answer 206 with bytes first..last */
	RANGE_UNSATISFIABLE, /* answer 416 with Content-Range: bytes * / size */
};

struct range {
	uint64_t first; /* inclusive */
	uint64_t last;	/* inclusive, always < object size */
};

/* A response's Content-Range. */
struct content_range {
	bool has_range;	 /* false for "bytes * / size" */
	bool size_known; /* false for "bytes a-b / *" */
	uint64_t first, last, size;
};

enum range_result range_parse(const char *value, size_t len, uint64_t size, struct range *out);
int range_format(const struct range *r, uint64_t size, char *buf, size_t cap);
int range_format_unsatisfied(uint64_t size, char *buf, size_t cap);
int range_parse_content_range(const char *value, size_t len, struct content_range *out);

#endif

/* range: the HTTP Range request header as the origin (radosgw) reads it, the rule for
 * which forms lotad answers from its cache, the Content-Range header lotad writes for 206
 * answers, and the Content-Range an origin sends with a 206 (a fill learns the size). */
#ifndef LOTA_RANGE_H
#define LOTA_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "bytes 18446744073709551614-18446744073709551614/18446744073709551615" plus NUL */
#define RANGE_CONTENT_RANGE_MAX 72

/* The answer to a request's Range header. */
enum range_result {
	RANGE_WHOLE,	     /* not a range to the origin: 200 with the whole object */
	RANGE_PARTIAL,	     /* 206 with bytes first..last */
	RANGE_UNSATISFIABLE, /* 416 (radosgw sends no Content-Range with it) */
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

/*
 * Which Range headers lotad answers from its cache, for an object of `size` bytes. The
 * caller asks before it adds If-None-Match to the client's request, and relays every
 * other form to the origin, whose answer to it is then the client's:
 *
 *   served locally: exactly one Range header whose value (after the white space HTTP
 *   strips around it) is, byte for byte,
 *     bytes=FIRST-LAST   FIRST <= LAST, FIRST < size
 *     bytes=FIRST-       FIRST < size
 *     bytes=-SUFFIX      SUFFIX >= 1
 *   with FIRST, LAST and SUFFIX plain decimal digits (leading zeros allowed) of a value
 *   up to 2^63 - 1, and size from 1 to 2^63 - 1.
 *
 *   relayed: everything else. An unsatisfiable range (the origin's 416 is an XML error with
 *   its own request id), several ranges, white space, signs or other bytes inside the
 *   value, another spelling of the unit, bytes=-0, FIRST > LAST, numbers past 2^63 - 1,
 *   an empty object. Origins disagree on these (RFC 9110 ignores a bad Range, AWS S3
 *   serves no multi-range, radosgw reads numbers with atoll), and answering them costs
 *   the origin the same one round trip as the 304 would.
 *
 * For every form served locally, range_parse() gives RFC 9110's answer, which is also
 * radosgw's and S3's.
 */
bool range_is_served_locally(const char *value, size_t len, uint64_t size);

/*
 * The answer radosgw (Ceph 16.2) gives to a Range header on an object of `size` bytes,
 * for any value, as measured (tests/e2e/test_ranges.py holds the table): a hit that was
 * not checked with range_is_served_locally() still answers as the origin would.
 */
enum range_result range_parse(const char *value, size_t len, uint64_t size, struct range *out);
int range_format(const struct range *r, uint64_t size, char *buf, size_t cap);
int range_parse_content_range(const char *value, size_t len, struct content_range *out);

#endif

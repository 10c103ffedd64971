/* libFuzzer target for user/range.c: the Range reader against an object size taken from
 * the input, the rule for what lotad serves locally (checked against RFC 9110's answer,
 * computed here apart from range.c), the formatter, and the Content-Range parser. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "range.h"

/* RFC 9110 14.1.2 for one plain range-spec "bytes=a-b", "bytes=a-", "bytes=-n", on a
 * NUL-terminated copy, by strtoull: false if it is not of that form or not satisfiable. */
static bool rfc_answer(const char *s, uint64_t size, struct range *r)
{
	unsigned long long a = 0, b = 0;
	char *end;

	if (strncmp(s, "bytes=", 6) != 0)
		return false;
	s += 6;
	errno = 0;
	if (*s == '-') {
		b = strtoull(s + 1, &end, 10);
		if (errno || end == s + 1 || *end || s[1] < '0' || s[1] > '9' || b == 0 || !size)
			return false;
		*r = (struct range){b >= size ? 0 : size - b, size - 1};
		return true;
	}
	if (*s < '0' || *s > '9')
		return false;
	a = strtoull(s, &end, 10);
	if (errno || *end != '-')
		return false;
	s = end + 1;
	if (*s) {
		if (*s < '0' || *s > '9')
			return false;
		b = strtoull(s, &end, 10);
		if (errno || *end || b < a)
			return false;
	}
	if (a >= size)
		return false;
	*r = (struct range){a, (!*s || b >= size) ? size - 1 : b};
	return true;
}

static void check_local(const char *copy, size_t size, uint64_t obj, const struct range *r,
			enum range_result res)
{
	struct range want;
	char *z;

	if (!range_is_served_locally(copy, size, obj))
		return;
	z = malloc(size + 1);
	if (!z)
		return;
	memcpy(z, copy, size);
	z[size] = '\0';
	if (!rfc_answer(z, obj, &want) || res != RANGE_PARTIAL || r->first != want.first ||
	    r->last != want.last)
		abort();
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[RANGE_CONTENT_RANGE_MAX];
	struct content_range cr;
	enum range_result res;
	struct range r;
	uint64_t obj = 0;
	char *copy;

	if (size >= 8) {
		memcpy(&obj, data, 8);
		/* small sizes are where the edges are */
		if (data[0] & 1)
			obj &= 0xff;
		data += 8;
		size -= 8;
	}
	/* a copy of exactly size bytes, so ASan catches any read past the end */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	res = range_parse(copy, size, obj, &r);
	if (res == RANGE_PARTIAL) {
		if (r.first > r.last || r.last >= obj)
			abort();
		if (range_format(&r, obj, buf, sizeof(buf)) != 0)
			abort();
		if (range_parse_content_range(buf, strlen(buf), &cr) != 0 || cr.first != r.first ||
		    cr.last != r.last || cr.size != obj)
			abort();
	}
	check_local(copy, size, obj, &r, res);
	if (range_parse_content_range(copy, size, &cr) == 0 && cr.has_range &&
	    (cr.first > cr.last || (cr.size_known && cr.last >= cr.size)))
		abort();
	free(copy);
	return 0;
}

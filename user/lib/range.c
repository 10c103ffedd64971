/* range: which Range headers lotad answers itself, the answer radosgw gives to any Range
 * header, Content-Range for a 206, and an origin's Content-Range. Nothing here allocates;
 * every number is checked against overflow, since all of it is attacker or origin input. */
#include "range.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* isspace() and isalpha() in the C locale, which radosgw runs in. */
static bool is_c_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool is_c_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Digits at s[*i..len): at least one. Saturates at UINT64_MAX and says so in *overflow,
 * so a 25-digit position still compares correctly against the object size. */
static bool take_number(const char *s, size_t len, size_t *i, uint64_t *v, bool *overflow)
{
	size_t start = *i;

	*v = 0;
	*overflow = false;
	for (; *i < len && is_digit(s[*i]); (*i)++) {
		unsigned d = (unsigned)(s[*i] - '0');

		if (*v > (UINT64_MAX - d) / 10) {
			*overflow = true;
			*v = UINT64_MAX;
		} else if (!*overflow) {
			*v = *v * 10 + d;
		}
	}
	return *i > start;
}

/* A number of the forms served locally: digits only, at most 2^63 - 1. */
static bool take_plain(const char *s, size_t len, size_t *i, uint64_t *v)
{
	bool of;

	return take_number(s, len, i, v, &of) && !of && *v <= INT64_MAX;
}

bool range_is_served_locally(const char *value, size_t len, uint64_t size)
{
	uint64_t first = 0, last = 0;
	bool has_first, has_last;
	size_t i = 6;

	if (!value || size == 0 || size > INT64_MAX || len < 7 || memcmp(value, "bytes=", 6) != 0)
		return false;
	has_first = is_digit(value[i]);
	if (has_first && !take_plain(value, len, &i, &first))
		return false;
	if (i >= len || value[i++] != '-')
		return false;
	has_last = i < len;
	if ((has_last && !take_plain(value, len, &i, &last)) || i != len)
		return false;
	if (!has_first)
		return has_last && last >= 1;
	return first < size && (!has_last || first <= last);
}

/*
 * What follows is radosgw's reading of the header (RGWGetObj::parse_range and
 * range_to_ofs in Ceph 16.2), step by step, because a hit must answer what the origin
 * would have answered to the same bytes.
 */

/* glibc's atoll (strtoll, base 10) on s[0..len): leading white space, one sign, digits,
 * anything after them ignored, no digits read as 0; saturates at INT64_MIN/INT64_MAX. */
static int64_t c_atoll(const char *s, size_t len)
{
	uint64_t v = 0, limit;
	bool neg = false;
	size_t i = 0;

	while (i < len && is_c_space(s[i]))
		i++;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len && is_digit(s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (limit - d) / 10) {
			v = limit;
			break;
		}
		v = v * 10 + d;
	}
	if (!neg)
		return (int64_t)v;
	return v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
}

/* Where the range-spec starts: after the first "bytes=" anywhere in the value (case
 * matters there), else after a unit radosgw takes for bytes: a run of letters that is a
 * case-insensitive prefix of "bytes" (an empty run too, it compares 0 letters), white
 * space, '='. Its compare starts at the value's first byte, not after the white space.
 * false: no unit, the header is ignored. */
static bool spec_start(const char *s, size_t len, size_t *start)
{
	const char *p = memmem(s, len, "bytes=", 6);
	size_t i = 0, e;

	if (p) {
		*start = (size_t)(p - s) + 6;
		return true;
	}
	while (i < len && is_c_space(s[i]))
		i++;
	for (e = i; e < len && is_c_alpha(s[e]); e++)
		;
	if (e - i > 5 || strncasecmp(s, "bytes", e - i) != 0)
		return false;
	while (e < len && is_c_space(s[e]))
		e++;
	if (e >= len || s[e] != '=')
		return false;
	*start = e + 1;
	return true;
}

/* The spec, split at its first '-' and each side read by atoll. A negative ofs is a
 * suffix length; end -1 is "to the end". false: radosgw's InvalidRange, which it sends
 * before it even evaluates If-None-Match. */
static bool parse_spec(const char *s, size_t len, int64_t *ofs, int64_t *end)
{
	const char *dash = memchr(s, '-', len);
	size_t n;

	*end = -1;
	if (!dash)
		return false;
	n = (size_t)(dash - s);
	if (n + 1 < len) {
		*end = c_atoll(dash + 1, len - n - 1);
		if (*end < 0)
			return false;
	}
	if (n) {
		*ofs = c_atoll(s, n); /* s[0..n) holds no '-': never negative */
	} else {
		*ofs = -*end; /* so "bytes=-" is ofs 1, and "bytes=-0" the whole object */
		*end = -1;
	}
	return !(*end >= 0 && *end < *ofs);
}

/* ofs/end against the size, as range_to_ofs does; size > 0. */
static enum range_result to_range(int64_t ofs, int64_t end, uint64_t size, struct range *out)
{
	uint64_t first, last;

	if (ofs < 0) {
		uint64_t suffix = (uint64_t)-ofs; /* ofs >= -INT64_MAX */

		first = suffix >= size ? 0 : size - suffix;
		last = size - 1;
	} else {
		first = (uint64_t)ofs;
		last = end < 0 ? size - 1 : (uint64_t)end;
	}
	if (first >= size)
		return RANGE_UNSATISFIABLE;
	out->first = first;
	out->last = last >= size ? size - 1 : last;
	return RANGE_PARTIAL;
}

/*
 * radosgw's answers, beyond what RFC 9110 says (measured on 16.2.15):
 * - a value with no unit it takes for bytes ("items=0-1", "", "0-1") is ignored: 200 with
 *   the whole object (and, the caller's part, Content-Range: bytes 0-(size-1)/size);
 * - only the first range counts ("bytes=0-1,5-6" is 206 bytes 0-1), and atoll reads each
 *   number: "bytes= 0-1", "bytes=+0-1", "bytes=0x1-z" are all 206;
 * - no '-', a negative last, or last < first: 416;
 * - "bytes=-0" is the whole object and "bytes=-" all but its first byte, both as 206;
 * - first >= size: 416, and an empty object answers 416 to any Range header.
 * A NUL ends the value (HTTP parsers refuse it; radosgw reads the value as a C string).
 */
enum range_result range_parse(const char *value, size_t len, uint64_t size, struct range *out)
{
	const char *nul;
	int64_t ofs, end;
	size_t start;

	*out = (struct range){0, size ? size - 1 : 0};
	if (!value)
		return RANGE_WHOLE;
	nul = memchr(value, '\0', len);
	if (nul)
		len = (size_t)(nul - value);
	if (size == 0)
		return RANGE_UNSATISFIABLE;
	if (!spec_start(value, len, &start))
		return RANGE_WHOLE;
	if (!parse_spec(value + start, len - start, &ofs, &end))
		return RANGE_UNSATISFIABLE;
	return to_range(ofs, end, size, out);
}

/* "bytes first-last/size" for a 206. */
int range_format(const struct range *r, uint64_t size, char *buf, size_t cap)
{
	int n;

	if (r->first > r->last || r->last >= size)
		return -EINVAL;
	n = snprintf(buf, cap, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, r->first, r->last, size);
	return (n < 0 || (size_t)n >= cap) ? -ENOSPC : 0;
}

/* A strict number for Content-Range: digits only, no overflow. */
static int strict_number(const char *s, size_t len, size_t *i, uint64_t *v)
{
	bool of;

	if (!take_number(s, len, i, v, &of) || of)
		return -EINVAL;
	return 0;
}

/*
 * RFC 9110 14.4: Content-Range = range-unit SP ( range-resp / unsatisfied-range ),
 * range-resp = first-last "/" ( complete-length / "*" ), unsatisfied-range = "* /" length
 * (no space). Strict: an origin that sends anything else is not trusted for a size.
 */
static int parse_content_range(const char *value, size_t len, struct content_range *out)
{
	size_t i = 6;
	int rc;

	if (len < 6 || strncasecmp(value, "bytes ", 6) != 0)
		return -EINVAL;
	if (i < len && value[i] == '*') {
		i++;
		if (i >= len || value[i++] != '/' || strict_number(value, len, &i, &out->size))
			return -EINVAL;
		out->size_known = true;
		return i == len ? 0 : -EINVAL;
	}
	rc = strict_number(value, len, &i, &out->first);
	if (rc || i >= len || value[i++] != '-')
		return -EINVAL;
	rc = strict_number(value, len, &i, &out->last);
	if (rc || i >= len || value[i++] != '/' || out->last < out->first)
		return -EINVAL;
	out->has_range = true;
	if (i < len && value[i] == '*')
		return i + 1 == len ? 0 : -EINVAL;
	if (strict_number(value, len, &i, &out->size) || i != len || out->last >= out->size)
		return -EINVAL;
	out->size_known = true;
	return 0;
}

int range_parse_content_range(const char *value, size_t len, struct content_range *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = parse_content_range(value, len, out);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

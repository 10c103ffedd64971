/* range: parse a request's Range header for a known object size the way S3 does, format
 * Content-Range, and parse an origin's Content-Range. Nothing here allocates; every
 * number is checked against overflow, since all of it is attacker or origin input. */
#include "range.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Digits at s[*i..len): at least one. Saturates at UINT64_MAX and says so in *overflow,
 * so a 25-digit position still compares correctly against the object size. */
static bool take_number(const char *s, size_t len, size_t *i, uint64_t *v, bool *overflow)
{
	size_t start = *i;

	*v = 0;
	*overflow = false;
	for (; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
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

/* RFC 9110 14.1.1: "bytes=" then one range-spec: first-last, first-, or -suffix.
 * The unit is case-insensitive; OWS around the whole value is the HTTP parser's to
 * strip, and is tolerated here too; none is allowed inside the spec. Returns false on
 * a syntax error; on success fills the spec with has_first/has_last. */
struct spec {
	bool has_first, has_last;
	uint64_t first, last;
};

static bool parse_spec(const char *s, size_t len, struct spec *sp)
{
	size_t i = 0;
	bool of;

	memset(sp, 0, sizeof(*sp));
	sp->has_first = take_number(s, len, &i, &sp->first, &of);
	if (i >= len || s[i] != '-')
		return false;
	i++;
	sp->has_last = take_number(s, len, &i, &sp->last, &of);
	if (i != len || (!sp->has_first && !sp->has_last))
		return false;
	/* first > last is an invalid range-spec, not an unsatisfiable one */
	return !(sp->has_first && sp->has_last && sp->last < sp->first);
}

/*
 * S3 semantics, which lotad mirrors so that a cached answer equals the origin's:
 * - no header, another unit, or a syntax error: the header is ignored (RFC 9110 14.2),
 *   200 with the whole object;
 * - several ranges ("bytes=0-1,5-6"): S3 does not support multiple ranges in one GET
 *   (GetObject reference: "Amazon S3 doesn't support retrieving multiple ranges of data
 *   per GET request") and serves the whole object with 200, so we do too;
 * - first >= size, a zero-length suffix (bytes=-0), or any range of an empty object: 416;
 * - last beyond the end is clamped to size - 1; a suffix longer than the object is the
 *   whole object, still answered as 206.
 */
enum range_result range_parse(const char *value, size_t len, uint64_t size, struct range *out)
{
	struct spec sp;

	memset(out, 0, sizeof(*out));
	if (!value)
		return RANGE_WHOLE;
	while (len > 0 && is_ows(value[0])) {
		value++;
		len--;
	}
	while (len > 0 && is_ows(value[len - 1]))
		len--;
	if (len < 6 || strncasecmp(value, "bytes=", 6) != 0)
		return RANGE_WHOLE;
	value += 6;
	len -= 6;
	if (memchr(value, ',', len) || !parse_spec(value, len, &sp))
		return RANGE_WHOLE;
	if (!sp.has_first) {
		if (sp.last == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		out->first = sp.last >= size ? 0 : size - sp.last;
		out->last = size - 1;
		return RANGE_PARTIAL;
	}
	if (sp.first >= size)
		return RANGE_UNSATISFIABLE;
	out->first = sp.first;
	out->last = (!sp.has_last || sp.last >= size) ? size - 1 : sp.last;
	return RANGE_PARTIAL;
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

/* "bytes * /size" (without the space) for a 416. */
int range_format_unsatisfied(uint64_t size, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "bytes */%" PRIu64, size);

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

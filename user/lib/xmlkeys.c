/* A small, strict scanner for the DeleteObjects body: it looks only at <Object>
 * elements and their <Key> and <VersionId>, and decodes XML's entities. Anything it
 * cannot read is an error, and the caller then cannot know which keys were deleted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmlkeys.h"

#define XMLKEYS_VALUE_MAX 1025 /* S3 keys are at most 1024 bytes */

static const char *find(const char *p, const char *end, const char *s)
{
	size_t n = strlen(s);

	for (; p + n <= end; p++)
		if (memcmp(p, s, n) == 0)
			return p;
	return NULL;
}

static int entity(const char **pp, const char *end, char *out)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
	const char *p = *pp;

	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);

		if ((size_t)(end - p) >= n && memcmp(p, named[i].name, n) == 0) {
			*out = named[i].c;
			*pp = p + n;
			return 0;
		}
	}
	if (end - p > 3 && p[1] == '#') {
		char *stop;
		long v = p[2] == 'x' ? strtol(p + 3, &stop, 16) : strtol(p + 2, &stop, 10);

		/* Only single-byte characters: a key with others is sent as UTF-8 text. */
		if (stop < end && *stop == ';' && v > 0 && v < 0x80) {
			*out = (char)v;
			*pp = stop + 1;
			return 0;
		}
	}
	return -EBADMSG;
}

/* The text of <tag>..</tag> inside [p, end), decoded into out; "" if absent. */
static int element(const char *p, const char *end, const char *tag, char *out, size_t cap)
{
	char open[32], close[32];
	const char *s, *e;
	size_t o = 0;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	out[0] = '\0';
	s = find(p, end, open);
	if (!s)
		return 0;
	s += strlen(open);
	e = find(s, end, close);
	if (!e)
		return -EBADMSG;
	while (s < e) {
		char c = *s;

		if (c == '&') {
			if (entity(&s, e, &c) < 0)
				return -EBADMSG;
		} else {
			s++;
		}
		if (o + 1 >= cap)
			return -EBADMSG;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int xmlkeys_each(const char *xml, size_t n, void (*fn)(void *arg, const char *key, const char *version),
		 void *arg)
{
	const char *p = xml, *end = xml + n;
	char *key = malloc(XMLKEYS_VALUE_MAX), *ver = malloc(XMLKEYS_VALUE_MAX);
	int count = 0, r = 0;

	if (!key || !ver) {
		r = -ENOMEM;
		goto out;
	}
	while ((p = find(p, end, "<Object>")) != NULL) {
		const char *oe = find(p, end, "</Object>");

		if (!oe || element(p, oe, "Key", key, XMLKEYS_VALUE_MAX) < 0 || !key[0] ||
		    element(p, oe, "VersionId", ver, XMLKEYS_VALUE_MAX) < 0) {
			r = -EBADMSG;
			goto out;
		}
		fn(arg, key, ver);
		count++;
		p = oe + 9;
	}
	r = count;
out:
	free(key);
	free(ver);
	return r;
}

/* ctl_json: just enough JSON for lotactl to read lotad's admin answers: look up a value
 * by a dotted path, and print a whole document as "path value" lines. A reader over the
 * text, no tree; depth is bounded so a hostile answer cannot recurse deep. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define JSON_DEPTH_MAX 16

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* After the closing quote of the string that starts at p (at '"'), or NULL. */
static const char *skip_string(const char *p)
{
	for (p++; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skip_value(const char *p, int depth)
{
	p = ws(p);
	if (depth > JSON_DEPTH_MAX)
		return NULL;
	if (*p == '"')
		return skip_string(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';

		p = ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				p = *p == '"' ? skip_string(p) : NULL;
				p = p ? ws(p) : NULL;
				if (!p || *p != ':')
					return NULL;
				p++;
			}
			p = skip_value(p, depth + 1);
			if (!p)
				return NULL;
			p = ws(p);
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p = ws(p + 1);
		}
	}
	if (!*p || strchr(",}]:", *p))
		return NULL;
	while (*p && !strchr(",}] \t\r\n", *p))
		p++;
	return p;
}

/* Copies the value at [p, end) into out: a string unquoted and unescaped (\uXXXX below
 * 0x80 decoded, others kept as '?'), anything else as is. */
static int copy_value(const char *p, const char *end, char *out, size_t cap)
{
	size_t o = 0;

	if (*p != '"') {
		if ((size_t)(end - p) >= cap)
			return -ENOSPC;
		memcpy(out, p, (size_t)(end - p));
		out[end - p] = '\0';
		return 0;
	}
	for (p++; p < end - 1 && o + 1 < cap; p++) {
		char c = *p;

		if (c == '\\') {
			c = *++p;
			if (c == 'n')
				c = '\n';
			else if (c == 't')
				c = '\t';
			else if (c == 'u') {
				unsigned v = 0;

				if (sscanf(p + 1, "%4x", &v) != 1)
					return -EPROTO;
				c = v < 0x80 ? (char)v : '?';
				p += 4;
			}
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return p < end - 1 ? -ENOSPC : 0;
}

/* The element of array a (at '[') named by the decimal path segment, or NULL. */
static const char *array_at(const char *a, const char *path, size_t seg)
{
	char *end;
	unsigned long idx = strtoul(path, &end, 10);
	const char *p = ws(a + 1);

	if (end != path + seg || seg == 0)
		return NULL;
	while (*p && *p != ']') {
		const char *vend = skip_value(p, 0);

		if (!vend)
			return NULL;
		if (idx-- == 0)
			return p;
		p = ws(vend);
		if (*p == ',')
			p = ws(p + 1);
	}
	return NULL;
}

int ctl_json_get(const char *json, const char *path, char *out, size_t cap)
{
	const char *p = ws(json);
	size_t seg = strcspn(path, ".");

	if (*p == '[') {
		const char *v = array_at(p, path, seg);

		if (!v)
			return -ENOENT;
		if (path[seg] == '.')
			return ctl_json_get(v, path + seg + 1, out, cap);
		return copy_value(v, skip_value(v, 0), out, cap);
	}
	if (*p != '{')
		return -ENOENT;
	p = ws(p + 1);
	while (*p == '"') {
		const char *k = p + 1, *kend = skip_string(p), *v, *vend;

		if (!kend)
			return -EPROTO;
		v = ws(kend);
		if (*v != ':')
			return -EPROTO;
		v = ws(v + 1);
		vend = skip_value(v, 0);
		if (!vend)
			return -EPROTO;
		if ((size_t)(kend - 1 - k) == seg && strncmp(k, path, seg) == 0) {
			if (path[seg] == '.')
				return ctl_json_get(v, path + seg + 1, out, cap);
			return copy_value(v, vend, out, cap);
		}
		p = ws(vend);
		if (*p != ',')
			break;
		p = ws(p + 1);
	}
	return -ENOENT;
}

static const char *print_value(FILE *f, const char *p, char *prefix, size_t plen, int depth);

static const char *print_members(FILE *f, const char *p, char *prefix, size_t plen, int depth,
				 bool is_array)
{
	char close = is_array ? ']' : '}';
	int i = 0;

	p = ws(p + 1);
	while (*p && *p != close) {
		char seg[CTL_HOST_MAX];
		const char *v = p;
		int n;

		if (!is_array) {
			const char *kend = *p == '"' ? skip_string(p) : NULL;

			if (!kend || copy_value(p, kend, seg, sizeof(seg)))
				return NULL;
			v = ws(kend);
			if (*v != ':')
				return NULL;
			v++;
		} else {
			snprintf(seg, sizeof(seg), "%d", i);
		}
		n = snprintf(prefix + plen, CTL_PATH_MAX - plen, "%s%s", plen ? "." : "", seg);
		if (n < 0 || plen + (size_t)n >= CTL_PATH_MAX)
			return NULL;
		p = print_value(f, v, prefix, plen + (size_t)n, depth + 1);
		prefix[plen] = '\0';
		if (!p)
			return NULL;
		p = ws(p);
		if (*p == ',')
			p = ws(p + 1);
		i++;
	}
	return *p == close ? p + 1 : NULL;
}

static const char *print_value(FILE *f, const char *p, char *prefix, size_t plen, int depth)
{
	char val[CTL_PATH_MAX];
	const char *end;

	p = ws(p);
	if (depth > JSON_DEPTH_MAX)
		return NULL;
	if (*p == '{' || *p == '[')
		return print_members(f, p, prefix, plen, depth, *p == '[');
	end = skip_value(p, depth);
	if (!end || copy_value(p, end, val, sizeof(val)))
		return NULL;
	fprintf(f, "%s %s\n", plen ? prefix : "value", val);
	return end;
}

int ctl_json_print_flat(FILE *f, const char *json)
{
	char prefix[CTL_PATH_MAX] = "";

	return print_value(f, json, prefix, 0, 0) ? 0 : -EPROTO;
}

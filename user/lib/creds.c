/* creds: parse an AWS shared-credentials file strictly enough that a typo is an error
 * that names its line, not a silently unsigned request; and tell cheaply whether the
 * file changed since it was read (inode, size, mtime), for the control thread's reload. */
#include "creds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct parser {
	const char *profile;
	struct creds *out;
	char *err;
	size_t errlen;
	size_t line;
	bool in_section; /* after the first [section] */
	bool in_profile; /* inside [profile] */
	bool seen_profile;
	const char *last_key; /* the key a continuation line would extend, or NULL */
	size_t key_indent;    /* leading blanks of that key's line */
	size_t indent;	      /* leading blanks of the current line */
	unsigned seen_keys;   /* bit per known key, to refuse duplicates */
};

static int fail(struct parser *p, int rc, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!p->err || p->errlen == 0)
		return rc;
	if (p->line)
		n = snprintf(p->err, p->errlen, "line %zu: ", p->line);
	if (n < 0 || (size_t)n >= p->errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_space(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_space((*s)[*n - 1]))
		(*n)--;
}

/* "[name]": the section we want is the one whose trimmed name is the profile. */
static int parse_section(struct parser *p, const char *s, size_t n)
{
	const char *name = s + 1;
	size_t nlen = n - 2;

	if (n < 2 || s[n - 1] != ']')
		return fail(p, -EINVAL, "section header without ']'");
	trim(&name, &nlen);
	if (nlen == 0 || memchr(name, '[', nlen) || memchr(name, ']', nlen))
		return fail(p, -EINVAL, "bad section name");
	p->in_section = true;
	p->in_profile = strlen(p->profile) == nlen && memcmp(name, p->profile, nlen) == 0;
	p->last_key = NULL;
	if (p->in_profile && p->seen_profile)
		return fail(p, -EINVAL, "profile [%s] appears twice", p->profile);
	p->seen_profile |= p->in_profile;
	return 0;
}

/* Where a known key's value goes; NULL for keys we ignore (output, aws_security_token...). */
static char *field(struct parser *p, const char *key, size_t klen, size_t *cap, unsigned *bit)
{
	static const char *const keys[] = {"aws_access_key_id", "aws_secret_access_key",
					   "aws_session_token", "region"};
	char *const fields[] = {p->out->access_key, p->out->secret_key, p->out->session_token,
				p->out->region};
	const size_t caps[] = {sizeof(p->out->access_key), sizeof(p->out->secret_key),
			       sizeof(p->out->session_token), sizeof(p->out->region)};

	for (size_t i = 0; i < 4; i++) {
		if (strlen(keys[i]) == klen && memcmp(keys[i], key, klen) == 0) {
			*cap = caps[i];
			*bit = 1u << i;
			return fields[i];
		}
	}
	return NULL;
}

/* Values are single tokens: printable ASCII, no inner blanks. '#' and ';' are kept,
 * since only whole-line comments exist in this format and a secret may hold either. */
static int check_value(struct parser *p, const char *v, size_t n, size_t cap)
{
	if (n == 0)
		return fail(p, -EINVAL, "empty value");
	if (n >= cap)
		return fail(p, -E2BIG, "value longer than %zu bytes", cap - 1);
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] == 0x7f)
			return fail(p, -EINVAL, "value contains a blank or a control character");
	return 0;
}

static int parse_pair(struct parser *p, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	const char *key = s, *val;
	size_t klen, vlen, cap;
	unsigned bit;
	char *dst;
	int rc;

	if (!eq)
		return fail(p, -EINVAL, "expected 'key = value'");
	klen = (size_t)(eq - s);
	val = eq + 1;
	vlen = n - klen - 1;
	trim(&key, &klen);
	trim(&val, &vlen);
	if (klen == 0)
		return fail(p, -EINVAL, "empty key");
	if (!p->in_section)
		return fail(p, -EINVAL, "key outside of any [section]");
	dst = p->in_profile ? field(p, key, klen, &cap, &bit) : NULL;
	p->last_key = dst ? key : "";
	p->key_indent = p->indent;
	if (!dst)
		return 0;
	if (p->seen_keys & bit)
		return fail(p, -EINVAL, "duplicate key %.*s", (int)klen, key);
	rc = check_value(p, val, vlen, cap);
	if (rc)
		return rc;
	p->seen_keys |= bit;
	memcpy(dst, val, vlen);
	dst[vlen] = '\0';
	return 0;
}

/* A line indented deeper than the key above continues its value (configparser's rule,
 * used by the AWS CLI for nested settings such as "s3 =\n  addressing_style = path").
 * Fine under a key we ignore; under one of ours it would silently change a credential,
 * so it is an error. */
static int parse_continuation(struct parser *p)
{
	if (*p->last_key)
		return fail(p, -EINVAL, "continuation line not allowed here");
	return 0;
}

static int parse_line(struct parser *p, const char *s, size_t n)
{
	size_t indent = 0;

	while (indent < n && is_space(s[indent]))
		indent++;
	p->indent = indent;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (memchr(s, '\r', n) || memchr(s, '\0', n))
		return fail(p, -EINVAL, "stray CR or NUL byte");
	trim(&s, &n);
	if (n == 0 || s[0] == '#' || s[0] == ';')
		return 0;
	if (p->last_key && indent > p->key_indent)
		return parse_continuation(p);
	if (s[0] == '[')
		return parse_section(p, s, n);
	return parse_pair(p, s, n);
}

static int finish(struct parser *p)
{
	p->line = 0;
	if (!p->seen_profile)
		return fail(p, -ENOENT, "profile [%s] not found", p->profile);
	if (!p->out->access_key[0])
		return fail(p, -EINVAL, "profile [%s] has no aws_access_key_id", p->profile);
	if (!p->out->secret_key[0])
		return fail(p, -EINVAL, "profile [%s] has no aws_secret_access_key", p->profile);
	if (!p->out->region[0])
		strcpy(p->out->region, CREDS_DEFAULT_REGION);
	return 0;
}

/* Parse text[0..len) (a whole credentials file) and fill *out from [profile] (NULL:
 * "default"). On error *out is cleared and err says which line and why. */
int creds_parse(const char *text, size_t len, const char *profile, struct creds *out, char *err,
		size_t errlen)
{
	struct parser p = {.profile = profile ? profile : CREDS_DEFAULT_PROFILE,
			   .out = out,
			   .err = err,
			   .errlen = errlen};
	size_t pos = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (len > CREDS_FILE_MAX)
		return fail(&p, -EFBIG, "file larger than %d bytes", CREDS_FILE_MAX);
	while (pos < len && !rc) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		p.line++;
		rc = parse_line(&p, text + pos, n);
		pos += n + (nl ? 1 : 0);
	}
	rc = rc ? rc : finish(&p);
	if (rc)
		creds_clear(out);
	return rc;
}

static void stamp_of(const struct stat *st, struct creds_stamp *stamp)
{
	stamp->valid = true;
	stamp->dev = st->st_dev;
	stamp->ino = st->st_ino;
	stamp->size = st->st_size;
	stamp->mtime = st->st_mtim;
}

static int read_file(int fd, const struct stat *st, char *buf, size_t *len)
{
	size_t got = 0;

	while (got < (size_t)st->st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st->st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*len = got;
	return 0;
}

/* Read and parse the file at path. The stamp (optional) is taken from the descriptor
 * that was read, so a file replaced during the load is seen as changed next time. */
int creds_load(const char *path, const char *profile, struct creds *out, struct creds_stamp *stamp,
	       char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
	} else if (st.st_size > CREDS_FILE_MAX) {
		rc = -EFBIG;
	} else if (!(buf = malloc((size_t)st.st_size + 1))) {
		rc = -ENOMEM;
	} else {
		rc = read_file(fd, &st, buf, &len);
	}
	close(fd);
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	rc = creds_parse(buf, len, profile, out, err, errlen);
	if (rc && err && errlen) {
		char why[CREDS_ERR_MAX];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "%s: %s", path, why);
	}
	if (rc == 0 && stamp)
		stamp_of(&st, stamp);
out:
	if (buf)
		explicit_bzero(buf, len);
	free(buf);
	return rc;
}

/* 1 when the file is not the one the stamp describes (and the stamp is updated), 0 when
 * it is, a negative errno when it cannot be stat'ed (the stamp is left alone, so that a
 * file that comes back unchanged is not reloaded). */
int creds_changed(const char *path, struct creds_stamp *stamp)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (stamp->valid && stamp->dev == st.st_dev && stamp->ino == st.st_ino &&
	    stamp->size == st.st_size && stamp->mtime.tv_sec == st.st_mtim.tv_sec &&
	    stamp->mtime.tv_nsec == st.st_mtim.tv_nsec)
		return 0;
	stamp_of(&st, stamp);
	return 1;
}

void creds_clear(struct creds *c)
{
	explicit_bzero(c, sizeof(*c));
}

/* adminauth: the admin API's bearer token, loaded from its file, reloaded when the file
 * changes, and checked against a request's Authorization header in constant time. */
#include "adminauth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "creds.h"

#define DIGEST_LEN 32 /* SHA-256 */

struct adminauth {
	unsigned char digest[DIGEST_LEN];
	struct creds_stamp stamp;
	char path[];
};

/* Printable ASCII without blanks: the token goes into an HTTP header as one word. */
static int check_token(const char *what, const char *path, const char *tok, size_t len, char *err,
		       size_t errlen)
{
	if (len < ADMINAUTH_TOKEN_MIN) {
		snprintf(err, errlen, "%s %s: %zu bytes, at least %d needed", what, path, len,
			 ADMINAUTH_TOKEN_MIN);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (tok[i] <= ' ' || tok[i] > '~') {
			snprintf(err, errlen,
				 "%s %s: byte %zu is not printable ASCII (a token is one word, "
				 "e.g. from openssl rand -hex 32)",
				 what, path, i);
			return -EINVAL;
		}
	}
	return 0;
}

int adminauth_read(const char *what, const char *path, char *tok, size_t *len, char *err,
		   size_t errlen)
{
	ssize_t n;
	size_t l = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return r;
	}
	while (l < ADMINAUTH_TOKEN_MAX + 1 &&
	       (n = read(fd, tok + l, ADMINAUTH_TOKEN_MAX + 1 - l))) {
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
			goto out;
		}
		l += (size_t)n;
	}
	/* trailing newlines and blanks are how editors and `kubectl create secret` differ */
	while (l > 0 && isspace((unsigned char)tok[l - 1]))
		l--;
	if (l > ADMINAUTH_TOKEN_MAX) {
		r = -E2BIG;
		snprintf(err, errlen, "%s %s: longer than %d bytes", what, path,
			 ADMINAUTH_TOKEN_MAX);
	} else {
		r = check_token(what, path, tok, l, err, errlen);
	}
out:
	close(fd);
	if (r < 0)
		l = 0;
	explicit_bzero(tok + l, ADMINAUTH_TOKEN_MAX + 1 - l);
	*len = l;
	return r;
}

static int digest_of(const char *s, size_t len, unsigned char out[DIGEST_LEN])
{
	unsigned int n = 0;

	if (!EVP_Digest(s, len, out, &n, EVP_sha256(), NULL) || n != DIGEST_LEN)
		return -EIO;
	return 0;
}

/* Reads the file and leaves its digest in out. */
static int load(const char *path, unsigned char out[DIGEST_LEN], char *err, size_t errlen)
{
	char tok[ADMINAUTH_TOKEN_MAX + 1];
	size_t len;
	int r = adminauth_read("admin-token", path, tok, &len, err, errlen);

	if (r == 0 && digest_of(tok, len, out) < 0) {
		snprintf(err, errlen, "admin-token %s: OpenSSL has no SHA-256", path);
		r = -EIO;
	}
	explicit_bzero(tok, sizeof(tok));
	return r;
}

int adminauth_open(const char *path, struct adminauth **out, char *err, size_t errlen)
{
	size_t plen = strlen(path);
	struct adminauth *a = calloc(1, sizeof(*a) + plen + 1);
	int r;

	if (!a)
		return -ENOMEM;
	memcpy(a->path, path, plen + 1);
	r = creds_changed(path, &a->stamp);
	if (r < 0) {
		snprintf(err, errlen, "admin-token %s: %s", path, strerror(-r));
		goto err;
	}
	r = load(path, a->digest, err, errlen);
	if (r < 0)
		goto err;
	*out = a;
	return 0;
err:
	adminauth_free(a);
	return r;
}

void adminauth_free(struct adminauth *a)
{
	if (!a)
		return;
	explicit_bzero(a->digest, sizeof(a->digest));
	free(a);
}

int adminauth_reload(struct adminauth *a, char *err, size_t errlen)
{
	unsigned char d[DIGEST_LEN];
	int r = creds_changed(a->path, &a->stamp);

	if (r <= 0) {
		if (r < 0)
			snprintf(err, errlen, "admin-token %s: %s", a->path, strerror(-r));
		return r;
	}
	r = load(a->path, d, err, errlen);
	if (r == 0 && memcmp(d, a->digest, DIGEST_LEN) != 0) {
		memcpy(a->digest, d, DIGEST_LEN);
		r = 1;
	}
	explicit_bzero(d, sizeof(d));
	return r;
}

/* "Bearer" is case-insensitive (RFC 7235 schemes are), then blanks, then the token. */
enum adminauth_verdict adminauth_check(const struct adminauth *a, const char *authorization)
{
	unsigned char d[DIGEST_LEN];
	const char *t = authorization;
	size_t len;
	bool is_ok;

	if (!t || strncasecmp(t, "Bearer", 6) != 0 || (t[6] != ' ' && t[6] != '\t'))
		return ADMINAUTH_MISSING;
	for (t += 6; *t == ' ' || *t == '\t'; t++)
		;
	len = strlen(t);
	while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\t'))
		len--;
	if (len == 0)
		return ADMINAUTH_MISSING;
	/* Digests of equal length, compared in constant time: how long the sent token is
	 * and where it first differs tell nothing about the real one. */
	is_ok = digest_of(t, len, d) == 0 && CRYPTO_memcmp(d, a->digest, DIGEST_LEN) == 0;
	explicit_bzero(d, sizeof(d));
	return is_ok ? ADMINAUTH_OK : ADMINAUTH_WRONG;
}

const char *adminauth_path(const struct adminauth *a)
{
	return a->path;
}

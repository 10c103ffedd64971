/* adminauth: the bearer token that opens lotad's admin API (/admin/...) on its TCP address.
 * The token is a file (`admin-token`), at least ADMINAUTH_TOKEN_MIN bytes of printable
 * ASCII once trailing blanks are dropped; lotad keeps only its SHA-256 and compares the
 * digest of what a client sends with CRYPTO_memcmp, so neither the token's bytes nor its
 * length leak through timing. The control thread reloads the file when it changes. No
 * locks: lotad checks and reloads on the control thread only. lotactl reads its token
 * file with adminauth_read() too, so both sides trim and bound it the same way. */
#ifndef LOTA_ADMINAUTH_H
#define LOTA_ADMINAUTH_H

#include <stddef.h>

#define ADMINAUTH_TOKEN_MIN 16 /* bytes, after trailing blanks are dropped */
#define ADMINAUTH_TOKEN_MAX 4096

struct adminauth;

/* What an Authorization header value proves. */
enum adminauth_verdict {
	ADMINAUTH_OK,	   /* "Bearer <the token>" */
	ADMINAUTH_MISSING, /* no header, or not a Bearer credential: 401 */
	ADMINAUTH_WRONG,   /* a Bearer credential that is not the token: 403 */
};

/* Reads a token file into tok (ADMINAUTH_TOKEN_MAX + 1 bytes, NUL-terminated), *len its
 * length. Errors name what (the config key or option) and path, and say why. */
int adminauth_read(const char *what, const char *path, char *tok, size_t *len, char *err,
		   size_t errlen);

int adminauth_open(const char *path, struct adminauth **out, char *err, size_t errlen);
void adminauth_free(struct adminauth *a);
/* 0: the file did not change (or holds the same token); 1: a new token is in use;
 * negative: the file changed but cannot be used (err says why) and the current token
 * stays, so that a half-written file never locks the operator out. */
int adminauth_reload(struct adminauth *a, char *err, size_t errlen);
/* authorization: the request's Authorization value, NULL when it has none. */
enum adminauth_verdict adminauth_check(const struct adminauth *a, const char *authorization);
const char *adminauth_path(const struct adminauth *a);

#endif

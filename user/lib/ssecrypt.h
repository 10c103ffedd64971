/* SSE-C at rest: what lotad keeps of a customer key and how it seals cached chunks.
 * Pure: libc and OpenSSL. The customer key K itself is never stored: a cached version
 * keeps a verifier, HMAC-SHA256 under a per-node secret of K and the version's identity,
 * and each chunk is sealed with AES-256-GCM under a key derived from K and that identity
 * (HKDF-SHA256), the chunk's index as its nonce, and its tag beside it. */
#ifndef LOTA_SSECRYPT_H
#define LOTA_SSECRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSEC_KEY_LEN 32 /* AES256: the only algorithm S3 defines for SSE-C */
#define SSEC_MD5_LEN 16
#define SSEC_SECRET_LEN 32   /* the node's secret */
#define SSEC_VERIFIER_LEN 32 /* HMAC-SHA256 */
#define SSEC_TAG_LEN 16	     /* GCM */
#define SSEC_NONCE_LEN 12    /* GCM */
#define SSEC_IDENT_MAX 4096  /* a version's identity, as ssec_identity() writes it */
#define SSEC_KEY_B64_LEN 44  /* base64 of the key, as its request field carries it */
#define SSEC_MD5_B64_LEN 24  /* base64 of its MD5 */

/* The customer key from its two request fields (base64 of 32 bytes; base64 of its MD5),
 * as S3 requires them: -EINVAL if either does not decode to its length, -EBADMSG if the
 * MD5 is not the key's. */
int ssec_parse_key(const char *key_b64, size_t key_len, const char *md5_b64, size_t md5_len,
		   uint8_t key[SSEC_KEY_LEN]);
/* The inverse, for lotad's own requests with a reader's key: the two fields' values,
 * NUL-terminated. Wipe key_b64 after use. -EIO. */
int ssec_key_fields(const uint8_t key[SSEC_KEY_LEN], char key_b64[SSEC_KEY_B64_LEN + 1],
		    char md5_b64[SSEC_MD5_B64_LEN + 1]);
/* A version's identity as one byte string (NUL-separated fields): what the verifier and
 * the chunk key are bound to, so that neither serves another object or version. Its
 * length, or -ENAMETOOLONG past cap. */
int ssec_identity(const char *bucket, const char *key, const char *version, const char *etag,
		  uint64_t size, uint64_t chunk_size, char *out, size_t cap);
/* HMAC-SHA256(secret, "lota-ssec-verifier-1" || K || identity). */
int ssec_verifier(const uint8_t secret[SSEC_SECRET_LEN], const uint8_t key[SSEC_KEY_LEN],
		  const char *ident, size_t ident_len, uint8_t out[SSEC_VERIFIER_LEN]);
/* The chunk key: HKDF-SHA256, K as input key material, identity as info. */
int ssec_chunk_key(const uint8_t key[SSEC_KEY_LEN], const char *ident, size_t ident_len,
		   uint8_t out[SSEC_KEY_LEN]);
/* AES-256-GCM of buf in place, nonce from index; the tag into tag. -ENOMEM, -EIO. */
int ssec_seal(const uint8_t ck[SSEC_KEY_LEN], uint64_t index, uint8_t *buf, size_t len,
	      uint8_t tag[SSEC_TAG_LEN]);
/* The same from in into out (len bytes, apart): in is left as it was. */
int ssec_seal_copy(const uint8_t ck[SSEC_KEY_LEN], uint64_t index, const uint8_t *in, uint8_t *out,
		   size_t len, uint8_t tag[SSEC_TAG_LEN]);
/* The inverse: -EBADMSG if the tag does not match (buf is then garbage: never serve it). */
int ssec_open(const uint8_t ck[SSEC_KEY_LEN], uint64_t index, uint8_t *buf, size_t len,
	      const uint8_t tag[SSEC_TAG_LEN]);
/* n random bytes (a node's secret). -EIO. */
int ssec_random(void *p, size_t n);
/* Constant-time equality. */
bool ssec_equal(const void *a, const void *b, size_t n);
/* Wipes key material. */
void ssec_wipe(void *p, size_t n);

#endif

/* SSE-C at rest (ssecrypt.h): key parsing, the verifier, the chunk key and the sealing
 * of chunks, all with OpenSSL's primitives (EVP); nothing here is home-made crypto. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "ssecrypt.h"

#define VERIFIER_LABEL "lota-ssec-verifier-1"
#define HKDF_SALT "lota-ssec-chunk-key-1"

/* Strict base64 of exactly want bytes: EVP_DecodeBlock pads its output, so the padding
 * of the input says how many of its bytes are real. */
static int b64_exact(const char *in, size_t len, uint8_t *out, size_t want)
{
	uint8_t buf[64];
	size_t pad = 0;
	int n;

	if (len == 0 || len % 4 || len / 4 * 3 > sizeof(buf))
		return -EINVAL;
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
	while (pad < 2 && in[len - 1 - pad] == '=')
		pad++;
	if (n < 0 || (size_t)n - pad != want) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return -EINVAL;
	}
	memcpy(out, buf, want);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

int ssec_parse_key(const char *key_b64, size_t key_len, const char *md5_b64, size_t md5_len,
		   uint8_t key[SSEC_KEY_LEN])
{
	uint8_t md5[SSEC_MD5_LEN], got[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (b64_exact(key_b64, key_len, key, SSEC_KEY_LEN) < 0 ||
	    b64_exact(md5_b64, md5_len, md5, SSEC_MD5_LEN) < 0) {
		OPENSSL_cleanse(key, SSEC_KEY_LEN);
		return -EINVAL;
	}
	if (!EVP_Digest(key, SSEC_KEY_LEN, got, &n, EVP_md5(), NULL) || n != SSEC_MD5_LEN ||
	    CRYPTO_memcmp(got, md5, SSEC_MD5_LEN) != 0) {
		OPENSSL_cleanse(key, SSEC_KEY_LEN);
		return -EBADMSG;
	}
	return 0;
}

int ssec_key_fields(const uint8_t key[SSEC_KEY_LEN], char key_b64[SSEC_KEY_B64_LEN + 1],
		    char md5_b64[SSEC_MD5_B64_LEN + 1])
{
	uint8_t md5[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(key, SSEC_KEY_LEN, md5, &n, EVP_md5(), NULL) || n != SSEC_MD5_LEN)
		return -EIO;
	if (EVP_EncodeBlock((unsigned char *)key_b64, key, SSEC_KEY_LEN) != SSEC_KEY_B64_LEN ||
	    EVP_EncodeBlock((unsigned char *)md5_b64, md5, SSEC_MD5_LEN) != SSEC_MD5_B64_LEN) {
		OPENSSL_cleanse(key_b64, SSEC_KEY_B64_LEN + 1);
		return -EIO;
	}
	return 0;
}

int ssec_identity(const char *bucket, const char *key, const char *version, const char *etag,
		  uint64_t size, uint64_t chunk_size, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%c%s%c%s%c%s%c%llu%c%llu", bucket, 0, key, 0,
			 version ? version : "", 0, etag, 0, (unsigned long long)size, 0,
			 (unsigned long long)chunk_size);

	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return n;
}

int ssec_verifier(const uint8_t secret[SSEC_SECRET_LEN], const uint8_t key[SSEC_KEY_LEN],
		  const char *ident, size_t ident_len, uint8_t out[SSEC_VERIFIER_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
			       OSSL_PARAM_construct_end()};
	size_t n = 0;
	int r = -EIO;

	if (ctx && EVP_MAC_init(ctx, secret, SSEC_SECRET_LEN, params) &&
	    EVP_MAC_update(ctx, (const unsigned char *)VERIFIER_LABEL, sizeof(VERIFIER_LABEL)) &&
	    EVP_MAC_update(ctx, key, SSEC_KEY_LEN) &&
	    EVP_MAC_update(ctx, (const unsigned char *)ident, ident_len) &&
	    EVP_MAC_final(ctx, out, &n, SSEC_VERIFIER_LEN) && n == SSEC_VERIFIER_LEN)
		r = 0;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return r;
}

int ssec_chunk_key(const uint8_t key[SSEC_KEY_LEN], const char *ident, size_t ident_len,
		   uint8_t out[SSEC_KEY_LEN])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t n = SSEC_KEY_LEN;
	int r = -EIO;

	if (ident_len > INT_MAX)
		return -EINVAL;
	if (ctx && EVP_PKEY_derive_init(ctx) > 0 &&
	    EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
	    EVP_PKEY_CTX_set1_hkdf_salt(ctx, (const unsigned char *)HKDF_SALT,
					sizeof(HKDF_SALT) - 1) > 0 &&
	    EVP_PKEY_CTX_set1_hkdf_key(ctx, key, SSEC_KEY_LEN) > 0 &&
	    EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)ident, (int)ident_len) > 0 &&
	    EVP_PKEY_derive(ctx, out, &n) > 0 && n == SSEC_KEY_LEN)
		r = 0;
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* A chunk's nonce: a label and its index, unique under one chunk key (one per version
 * and customer key); a refill of a chunk seals the same bytes the same way. */
static void nonce_of(uint64_t index, uint8_t nonce[SSEC_NONCE_LEN])
{
	memcpy(nonce, "lsc1", 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(index >> (56 - 8 * i));
}

/* GCM of in into out (the same buffer, or apart), in pieces below INT_MAX (EVP's length
 * type). */
static int gcm_run(EVP_CIPHER_CTX *ctx, const uint8_t *in, uint8_t *buf, size_t len)
{
	int out;

	while (len) {
		int n = len > (1u << 30) ? 1 << 30 : (int)len;

		if (!EVP_CipherUpdate(ctx, buf, &out, in, n) || out != n)
			return -EIO;
		in += n;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int gcm(const uint8_t ck[SSEC_KEY_LEN], uint64_t index, const uint8_t *in, uint8_t *buf,
	       size_t len, uint8_t *tag, int enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t nonce[SSEC_NONCE_LEN];
	int out, r = -EIO;

	if (!ctx)
		return -ENOMEM;
	nonce_of(index, nonce);
	if (!EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, ck, nonce, enc) ||
	    gcm_run(ctx, in, buf, len) < 0)
		goto out;
	if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SSEC_TAG_LEN, tag))
		goto out;
	if (!EVP_CipherFinal_ex(ctx, buf + len, &out)) {
		r = enc ? -EIO : -EBADMSG;
		goto out;
	}
	if (enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SSEC_TAG_LEN, tag))
		goto out;
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

int ssec_seal(const uint8_t ck[SSEC_KEY_LEN], uint64_t index, uint8_t *buf, size_t len,
	      uint8_t tag[SSEC_TAG_LEN])
{
	return gcm(ck, index, buf, buf, len, tag, 1);
}

int ssec_seal_copy(const uint8_t ck[SSEC_KEY_LEN], uint64_t index, const uint8_t *in, uint8_t *out,
		   size_t len, uint8_t tag[SSEC_TAG_LEN])
{
	return gcm(ck, index, in, out, len, tag, 1);
}

int ssec_open(const uint8_t ck[SSEC_KEY_LEN], uint64_t index, uint8_t *buf, size_t len,
	      const uint8_t tag[SSEC_TAG_LEN])
{
	uint8_t t[SSEC_TAG_LEN];

	memcpy(t, tag, sizeof(t));
	return gcm(ck, index, buf, buf, len, t, 0);
}

int ssec_random(void *p, size_t n)
{
	return n <= INT_MAX && RAND_bytes(p, (int)n) == 1 ? 0 : -EIO;
}

bool ssec_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void ssec_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

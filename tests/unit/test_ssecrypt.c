/* Unit tests for user/lib/ssecrypt.c: the customer key's fields as S3 requires them, the
 * verifier and the chunk key against vectors computed with an independent implementation
 * (Python's cryptography: HMAC, HKDF, AESGCM), sealing and opening, and every way a
 * sealed chunk or its tag can be changed. */
#include "unit.h"
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "hex.h"
#include "ssecrypt.h"

/* bytes(range(32)) and its MD5, in base64 */
#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define MD5_B64 "tP/LI3N87DFaSk0aoqYgzg=="
#define IDENT                                                                                      \
	"bkt\0dir/obj\0\0\"etag\"\0"                                                               \
	"1000\0"                                                                                   \
	"16777216"
#define V_HEX "f0310d452596973d15a6c3fa92bf27deccc480e99bb3c3be8d3eb3919725e1b9"
#define CK_HEX "4b2b1af066c8f3b8c8e1db360493da7adc1a0eaf938547632408b77230be531f"
#define PT "The quick brown fox jumps over the lazy dog"
#define CT_HEX                                                                                     \
	"ddc8e87c181d0d46dec19bfc4327f7e1c9f04f977a35d972b45084dccf0a7e5ff62341154c91885eaf4573"
#define TAG_HEX "c8ccbdb04f01d16b46525d521f9cbb1f"

static uint8_t key[SSEC_KEY_LEN], secret[SSEC_SECRET_LEN];

static int init(void)
{
	for (int i = 0; i < 32; i++) {
		key[i] = (uint8_t)i;
		secret[i] = (uint8_t)(100 + i);
	}
	return 0;
}

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(hex_value(h[2 * i]) << 4 | hex_value(h[2 * i + 1]));
}

static void test_parse_key(void)
{
	uint8_t k[SSEC_KEY_LEN];
	const char *md5 = MD5_B64, *kb = KEY_B64;

	CU_ASSERT_EQUAL(ssec_parse_key(kb, strlen(kb), md5, strlen(md5), k), 0);
	CU_ASSERT(memcmp(k, key, sizeof(k)) == 0);
	/* The MD5 of another key: the origin refuses it, so do we. */
	CU_ASSERT_EQUAL(ssec_parse_key(kb, strlen(kb), "AAAAAAAAAAAAAAAAAAAAAA==", 24, k),
			-EBADMSG);
	/* 31 or 33 bytes, no padding, not base64, empty. */
	CU_ASSERT_EQUAL(
	    ssec_parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", 44, md5, 24, k),
	    -EINVAL);
	CU_ASSERT_EQUAL(
	    ssec_parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 44, md5, 24, k),
	    -EINVAL);
	CU_ASSERT_EQUAL(ssec_parse_key(kb, strlen(kb) - 1, md5, 24, k), -EINVAL);
	CU_ASSERT_EQUAL(
	    ssec_parse_key("!!!!AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 44, md5, 24, k),
	    -EINVAL);
	CU_ASSERT_EQUAL(ssec_parse_key("", 0, md5, 24, k), -EINVAL);
	CU_ASSERT_EQUAL(ssec_parse_key(kb, strlen(kb), md5, strlen(md5) - 2, k), -EINVAL);
}

/* lotad's own requests carry the reader's key as the reader sent it. */
static void test_key_fields(void)
{
	char kb[SSEC_KEY_B64_LEN + 1], mb[SSEC_MD5_B64_LEN + 1];
	uint8_t back[SSEC_KEY_LEN];

	CU_ASSERT_EQUAL(ssec_key_fields(key, kb, mb), 0);
	CU_ASSERT_STRING_EQUAL(kb, KEY_B64);
	CU_ASSERT_STRING_EQUAL(mb, MD5_B64);
	CU_ASSERT_EQUAL(ssec_parse_key(kb, strlen(kb), mb, strlen(mb), back), 0);
	CU_ASSERT(memcmp(back, key, sizeof(back)) == 0);
}

static void test_identity(void)
{
	char id[SSEC_IDENT_MAX], small[8];
	int n = ssec_identity("bkt", "dir/obj", NULL, "\"etag\"", 1000, 16777216, id, sizeof(id));

	CU_ASSERT_EQUAL(n, (int)sizeof(IDENT) - 1);
	CU_ASSERT(memcmp(id, IDENT, sizeof(IDENT) - 1) == 0);
	CU_ASSERT_EQUAL(ssec_identity("bkt", "k", "", "e", 1, 1, small, sizeof(small)),
			-ENAMETOOLONG);
}

/* The verifier is HMAC-SHA256 under the node's secret: never the key, its MD5 or its
 * SHA-256, and another secret or another version gives another one. */
static void test_verifier(void)
{
	uint8_t v[SSEC_VERIFIER_LEN], want[SSEC_VERIFIER_LEN], d[EVP_MAX_MD_SIZE], other[32];
	unsigned int n;

	CU_ASSERT_EQUAL(ssec_verifier(secret, key, IDENT, sizeof(IDENT) - 1, v), 0);
	unhex(V_HEX, want, sizeof(want));
	CU_ASSERT(memcmp(v, want, sizeof(v)) == 0);
	CU_ASSERT(memcmp(v, key, sizeof(key)) != 0);
	EVP_Digest(key, sizeof(key), d, &n, EVP_md5(), NULL);
	CU_ASSERT(memcmp(v, d, n) != 0);
	EVP_Digest(key, sizeof(key), d, &n, EVP_sha256(), NULL);
	CU_ASSERT(memcmp(v, d, n) != 0);
	memcpy(other, secret, sizeof(other));
	other[0] ^= 1;
	CU_ASSERT_EQUAL(ssec_verifier(other, key, IDENT, sizeof(IDENT) - 1, want), 0);
	CU_ASSERT(!ssec_equal(v, want, sizeof(v)));
	CU_ASSERT_EQUAL(ssec_verifier(secret, key, IDENT, sizeof(IDENT) - 2, want), 0);
	CU_ASSERT(!ssec_equal(v, want, sizeof(v)));
}

static void test_chunk_key_and_seal_vectors(void)
{
	uint8_t ck[SSEC_KEY_LEN], want[SSEC_KEY_LEN], buf[sizeof(PT) - 1], ct[sizeof(PT) - 1];
	uint8_t tag[SSEC_TAG_LEN], wtag[SSEC_TAG_LEN];

	CU_ASSERT_EQUAL(ssec_chunk_key(key, IDENT, sizeof(IDENT) - 1, ck), 0);
	unhex(CK_HEX, want, sizeof(want));
	CU_ASSERT(memcmp(ck, want, sizeof(ck)) == 0);
	memcpy(buf, PT, sizeof(buf));
	CU_ASSERT_EQUAL(ssec_seal(ck, 7, buf, sizeof(buf), tag), 0);
	unhex(CT_HEX, ct, sizeof(ct));
	unhex(TAG_HEX, wtag, sizeof(wtag));
	CU_ASSERT(memcmp(buf, ct, sizeof(ct)) == 0);
	CU_ASSERT(memcmp(tag, wtag, sizeof(tag)) == 0);
	CU_ASSERT_EQUAL(ssec_open(ck, 7, buf, sizeof(buf), tag), 0);
	CU_ASSERT(memcmp(buf, PT, sizeof(buf)) == 0);
}

/* A flipped bit anywhere, another chunk's index, another key, another tag: refused. */
static void test_open_refuses_changes(void)
{
	static uint8_t plain[70000], buf[70000], copy[70000], save[70000];
	uint8_t ck[SSEC_KEY_LEN], ck2[SSEC_KEY_LEN], tag[SSEC_TAG_LEN], t2[SSEC_TAG_LEN];
	const size_t at[] = {0, 1, 4095, 65536, sizeof(buf) - 1};

	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 31 + 7);
	ssec_chunk_key(key, IDENT, sizeof(IDENT) - 1, ck);
	memcpy(ck2, ck, sizeof(ck2));
	ck2[31] ^= 0x80;
	memcpy(buf, plain, sizeof(buf));
	CU_ASSERT_EQUAL_FATAL(ssec_seal(ck, 3, buf, sizeof(buf), tag), 0);
	CU_ASSERT(memcmp(buf, plain, sizeof(buf)) != 0);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		memcpy(save, buf, sizeof(buf));
		buf[at[i]] ^= 1;
		CU_ASSERT_EQUAL(ssec_open(ck, 3, buf, sizeof(buf), tag), -EBADMSG);
		memcpy(buf, save, sizeof(buf));
	}
	memcpy(t2, tag, sizeof(t2));
	t2[15] ^= 1;
	memcpy(copy, buf, sizeof(copy));
	CU_ASSERT_EQUAL(ssec_open(ck, 3, copy, sizeof(copy), t2), -EBADMSG);
	memcpy(copy, buf, sizeof(copy));
	CU_ASSERT_EQUAL(ssec_open(ck, 4, copy, sizeof(copy), tag), -EBADMSG);
	memcpy(copy, buf, sizeof(copy));
	CU_ASSERT_EQUAL(ssec_open(ck2, 3, copy, sizeof(copy), tag), -EBADMSG);
	memcpy(copy, buf, sizeof(copy));
	CU_ASSERT_EQUAL(ssec_open(ck, 3, copy, sizeof(copy) - 1, tag), -EBADMSG);
	CU_ASSERT_EQUAL(ssec_open(ck, 3, buf, sizeof(buf), tag), 0);
	CU_ASSERT(memcmp(buf, plain, sizeof(buf)) == 0);
}

/* Two chunks of one version never share a keystream: same bytes, other ciphertext. */
static void test_nonce_per_chunk(void)
{
	uint8_t ck[SSEC_KEY_LEN], a[64] = {0}, b[64] = {0}, ta[SSEC_TAG_LEN], tb[SSEC_TAG_LEN];

	ssec_chunk_key(key, IDENT, sizeof(IDENT) - 1, ck);
	CU_ASSERT_EQUAL(ssec_seal(ck, 0, a, sizeof(a), ta), 0);
	CU_ASSERT_EQUAL(ssec_seal(ck, 1, b, sizeof(b), tb), 0);
	CU_ASSERT(memcmp(a, b, sizeof(a)) != 0);
	CU_ASSERT(memcmp(ta, tb, sizeof(ta)) != 0);
}

/* Sealing into another buffer gives what sealing in place does, and keeps the plaintext. */
static void test_seal_copy(void)
{
	uint8_t ck[SSEC_KEY_LEN], plain[100], a[100], b[100], ta[SSEC_TAG_LEN], tb[SSEC_TAG_LEN];

	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 7);
	memcpy(a, plain, sizeof(a));
	ssec_chunk_key(key, IDENT, sizeof(IDENT) - 1, ck);
	CU_ASSERT_EQUAL(ssec_seal(ck, 5, a, sizeof(a), ta), 0);
	memcpy(b, plain, sizeof(b));
	CU_ASSERT_EQUAL(ssec_seal_copy(ck, 5, plain, b, sizeof(b), tb), 0);
	CU_ASSERT(memcmp(a, b, sizeof(a)) == 0);
	CU_ASSERT(memcmp(ta, tb, sizeof(ta)) == 0);
	for (size_t i = 0; i < sizeof(plain); i++)
		CU_ASSERT_EQUAL(plain[i], (uint8_t)(i * 7));
	CU_ASSERT_EQUAL(ssec_open(ck, 5, b, sizeof(b), tb), 0);
	CU_ASSERT(memcmp(b, plain, sizeof(b)) == 0);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"customer key fields as S3 requires them", test_parse_key},
	    {"the key's fields back from the key", test_key_fields},
	    {"a version's identity", test_identity},
	    {"verifier: vector, never K/MD5/SHA-256, bound to secret and version", test_verifier},
	    {"chunk key (HKDF) and AES-256-GCM vectors", test_chunk_key_and_seal_vectors},
	    {"open refuses flipped bits, tags, indices, keys, lengths", test_open_refuses_changes},
	    {"one nonce per chunk", test_nonce_per_chunk},
	    {"sealing into another buffer", test_seal_copy},
	};

	return UNIT_RUN("ssecrypt", init, NULL, tests);
}

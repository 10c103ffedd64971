/* sigv4: AWS Signature Version 4 for S3 requests lotad signs itself (whole-object fills,
 * pre-staging) and the pieces a local verifier needs (auth=local): canonical request,
 * string to sign, signing key, and a strict parser of an incoming Authorization header.
 * Every function writes into caller buffers and returns 0 or a negative errno. */
#ifndef LOTA_SIGV4_H
#define LOTA_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define SIGV4_HEX_LEN 64	  /* hex SHA-256 / signature, without NUL */
#define SIGV4_KEY_LEN 32	  /* raw signing key */
#define SIGV4_DATE_LEN 16	  /* "20150830T123600Z" */
#define SIGV4_MAX_HEADERS 32	  /* headers one request may sign */
#define SIGV4_MAX_QUERY_PARAMS 64 /* query parameters one request may sign */
#define SIGV4_CANON_MAX 16384	  /* canonical request, S3 keys are at most 1024 bytes */
#define SIGV4_SCOPE_MAX 160
#define SIGV4_SIGNED_HEADERS_MAX 1024
#define SIGV4_AUTH_MAX 1536 /* Authorization header value */
#define SIGV4_ACCESS_KEY_MAX 128
#define SIGV4_REGION_MAX 64
#define SIGV4_SERVICE_MAX 32

struct sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "" when there is none */
};

struct sigv4_header {
	const char *name;  /* any case; lowered in the canonical form */
	const char *value; /* trimmed, inner runs of spaces collapsed */
};

/* Everything the canonical request is built from. path and query are as they go on the
 * wire (path already URI-encoded; query without '?'); headers are exactly those to sign. */
struct sigv4_request {
	const char *method;
	const char *path;
	const char *query;
	const struct sigv4_header *headers;
	size_t n_headers;
	const char *payload_hash; /* hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
};

/* What sigv4_sign() adds to a request: the values of Authorization, x-amz-date,
 * x-amz-content-sha256 and (when the creds have one) x-amz-security-token. */
struct sigv4_signed {
	char authorization[SIGV4_AUTH_MAX];
	char amz_date[SIGV4_DATE_LEN + 1];
	char content_sha256[SIGV4_HEX_LEN + 1];
	const char *security_token; /* points into the creds, NULL when none */
};

/* The parts of "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,
 * SignedHeaders=host;range, Signature=<64 hex>". */
struct sigv4_auth {
	char access_key[SIGV4_ACCESS_KEY_MAX];
	char date[9]; /* yyyymmdd */
	char region[SIGV4_REGION_MAX];
	char service[SIGV4_SERVICE_MAX];
	char signed_headers[SIGV4_SIGNED_HEADERS_MAX];
	size_t n_signed_headers;
	char signature[SIGV4_HEX_LEN + 1];
};

int sigv4_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t cap);
int sigv4_canonical_uri(const char *path, char *out, size_t cap);
int sigv4_canonical_query(const char *query, char *out, size_t cap);
int sigv4_canonical_headers(const struct sigv4_header *h, size_t n, char *out, size_t cap,
			    char *signed_headers, size_t sh_cap);
int sigv4_canonical_request(const struct sigv4_request *r, char *out, size_t cap,
			    char *signed_headers, size_t sh_cap);
int sigv4_format_date(time_t when, char out[SIGV4_DATE_LEN + 1]);
int sigv4_scope(const char *amz_date, const char *region, const char *service, char *out,
		size_t cap);
int sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq, char *out,
			 size_t cap);
int sigv4_signing_key(const char *secret, const char *date8, const char *region,
		      const char *service, unsigned char key[SIGV4_KEY_LEN]);
int sigv4_signature(const unsigned char key[SIGV4_KEY_LEN], const char *sts,
		    char hex[SIGV4_HEX_LEN + 1]);
int sigv4_authorization(const char *access_key, const char *scope, const char *signed_headers,
			const char *signature, char *out, size_t cap);
int sigv4_sha256_hex(const void *data, size_t len, char hex[SIGV4_HEX_LEN + 1]);
int sigv4_sign(const struct sigv4_creds *c, const char *region, const char *service,
	       const char *method, const char *host, const char *path, const char *query,
	       const struct sigv4_header *extra, size_t n_extra, const char *payload_hash,
	       time_t when, struct sigv4_signed *out);
int sigv4_parse_authorization(const char *value, size_t len, struct sigv4_auth *out);
bool sigv4_signature_equal(const char *a, const char *b);

#endif

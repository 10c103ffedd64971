/* sigv4: AWS Signature Version 4 (S3 flavour) with OpenSSL, for the requests lotad makes
 * with its service credentials, and a strict parser of incoming Authorization headers for
 * the auth=local verifier. No allocation: every output goes to a caller's bounded buffer. */
#include "sigv4.h"
#include "hex.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGV4_HNAME_MAX 96   /* longest header name we sign */
#define SIGV4_SECRET_MAX 256 /* longest secret access key we accept */

/* A bounded, always NUL-terminated output buffer. */
struct sbuf {
	char *p;
	size_t len;
	size_t cap;
};

static int sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->cap == 0 || n >= b->cap - b->len)
		return -ENOSPC;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int sbuf_str(struct sbuf *b, const char *s)
{
	return sbuf_add(b, s, strlen(s));
}

static int sbuf_ch(struct sbuf *b, char c)
{
	return sbuf_add(b, &c, 1);
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int add_encoded_byte(struct sbuf *b, unsigned char c, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

	if (is_unreserved(c) || (keep_slash && c == '/'))
		return sbuf_ch(b, (char)c);
	return sbuf_add(b, esc, 3);
}

/* S3's UriEncode: every byte but A-Za-z0-9-._~ becomes %XX (upper-case hex); '/' is kept
 * when encoding a key for a path. */
int sigv4_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t cap)
{
	struct sbuf b = {out, 0, cap};
	int rc;

	if (cap == 0)
		return -ENOSPC;
	out[0] = '\0';
	for (size_t i = 0; i < len; i++) {
		rc = add_encoded_byte(&b, (unsigned char)in[i], keep_slash);
		if (rc)
			return rc;
	}
	return 0;
}

/* The path is what goes on the wire, already encoded: an existing %XX escape is kept as
 * it is (S3 does not encode twice), and only bytes that could not appear in an encoded
 * path (a raw space, UTF-8, '$'...) are escaped. S3 does not normalize dot segments. */
int sigv4_canonical_uri(const char *path, char *out, size_t cap)
{
	struct sbuf b = {out, 0, cap};
	const unsigned char *p = (const unsigned char *)path;
	int rc = 0;

	if (cap == 0)
		return -ENOSPC;
	out[0] = '\0';
	if (!*p)
		return sbuf_ch(&b, '/');
	for (size_t i = 0; p[i] && !rc; i++) {
		if (p[i] == '%' && hex_value(p[i + 1]) >= 0 && hex_value(p[i + 2]) >= 0) {
			rc = sbuf_add(&b, (const char *)p + i, 3);
			i += 2;
		} else {
			rc = add_encoded_byte(&b, p[i], true);
		}
	}
	return rc;
}

/* Decode %XX escapes of s[0..len) and encode the result the strict way, so that a query
 * written either encoded or raw gets the same canonical form. A '+' stays a literal plus
 * (S3 does not read it as a space) and is encoded as %2B. */
static int add_query_part(struct sbuf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	int rc = 0;

	for (size_t i = 0; i < len && !rc; i++) {
		unsigned char c = p[i];

		if (c == '%' && i + 2 < len && hex_value(p[i + 1]) >= 0 && hex_value(p[i + 2]) >= 0) {
			c = (unsigned char)(hex_value(p[i + 1]) << 4 | hex_value(p[i + 2]));
			i += 2;
		}
		rc = add_encoded_byte(b, c, false);
	}
	return rc;
}

struct qparam {
	const char *key; /* canonical (encoded) key, in the scratch buffer */
	const char *val; /* canonical value, "" when the parameter had none */
};

static int qparam_cmp(const struct qparam *a, const struct qparam *b)
{
	int c = strcmp(a->key, b->key);

	return c ? c : strcmp(a->val, b->val);
}

/* Split the query on '&', encode each key and value into scratch. */
static int query_split(const char *query, struct sbuf *scratch, struct qparam *qp, size_t *n)
{
	const char *s = query;

	*n = 0;
	while (*s) {
		size_t plen = strcspn(s, "&");
		const char *eq = memchr(s, '=', plen);
		size_t klen = eq ? (size_t)(eq - s) : plen;
		int rc;

		if (plen > 0) {
			if (*n == SIGV4_MAX_QUERY_PARAMS)
				return -E2BIG;
			qp[*n].key = scratch->p + scratch->len;
			rc = add_query_part(scratch, s, klen);
			rc = rc ? rc : sbuf_ch(scratch, '\0');
			if (rc)
				return rc;
			qp[*n].val = scratch->p + scratch->len;
			rc = eq ? add_query_part(scratch, eq + 1, plen - klen - 1) : 0;
			rc = rc ? rc : sbuf_ch(scratch, '\0');
			if (rc)
				return rc;
			(*n)++;
		}
		s += plen;
		if (*s == '&')
			s++;
	}
	return 0;
}

/* Canonical query: each key and value encoded, sorted by key then value, joined. */
int sigv4_canonical_query(const char *query, char *out, size_t cap)
{
	char scratch[SIGV4_CANON_MAX];
	struct sbuf sb = {scratch, 0, sizeof(scratch)};
	struct sbuf b = {out, 0, cap};
	struct qparam qp[SIGV4_MAX_QUERY_PARAMS];
	size_t n;
	int rc;

	if (cap == 0)
		return -ENOSPC;
	out[0] = '\0';
	rc = query_split(query ? query : "", &sb, qp, &n);
	if (rc)
		return rc;
	for (size_t i = 1; i < n; i++) {
		struct qparam t = qp[i];
		size_t j = i;

		for (; j > 0 && qparam_cmp(&qp[j - 1], &t) > 0; j--)
			qp[j] = qp[j - 1];
		qp[j] = t;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		rc = i ? sbuf_ch(&b, '&') : 0;
		rc = rc ? rc : sbuf_str(&b, qp[i].key);
		rc = rc ? rc : sbuf_ch(&b, '=');
		rc = rc ? rc : sbuf_str(&b, qp[i].val);
	}
	return rc;
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int lower_name(const char *name, char out[SIGV4_HNAME_MAX])
{
	size_t i;

	for (i = 0; name[i]; i++) {
		unsigned char c = (unsigned char)name[i];

		if (i + 1 >= SIGV4_HNAME_MAX || !is_tchar(c))
			return -EINVAL;
		out[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}
	out[i] = '\0';
	return i ? 0 : -EINVAL;
}

/* Value: trimmed, every run of spaces or tabs collapsed into one space. Control
 * characters (a CR or LF would forge a line of the canonical form) are refused. */
static int add_header_value(struct sbuf *b, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;
	bool pending_space = false;
	int rc = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	for (; *p && !rc; p++) {
		if (*p == ' ' || *p == '\t') {
			pending_space = true;
			continue;
		}
		if (*p < 0x20 || *p == 0x7f)
			return -EINVAL;
		if (pending_space)
			rc = sbuf_ch(b, ' ');
		pending_space = false;
		rc = rc ? rc : sbuf_ch(b, (char)*p);
	}
	return rc;
}

/* Canonical headers ("name:value\n" each, sorted by lower-case name, repeated names
 * joined with ',' in the order given) and the matching SignedHeaders list. */
int sigv4_canonical_headers(const struct sigv4_header *h, size_t n, char *out, size_t cap,
			    char *signed_headers, size_t sh_cap)
{
	char names[SIGV4_MAX_HEADERS][SIGV4_HNAME_MAX];
	size_t order[SIGV4_MAX_HEADERS];
	struct sbuf b = {out, 0, cap}, sh = {signed_headers, 0, sh_cap};
	int rc = 0;

	if (cap == 0 || sh_cap == 0)
		return -ENOSPC;
	out[0] = signed_headers[0] = '\0';
	if (n == 0 || n > SIGV4_MAX_HEADERS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		if (!h[i].name || !h[i].value || lower_name(h[i].name, names[i]))
			return -EINVAL;
		for (; j > 0 && strcmp(names[order[j - 1]], names[i]) > 0; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (size_t k = 0; k < n && !rc; k++) {
		const char *name = names[order[k]];
		bool same = k > 0 && strcmp(names[order[k - 1]], name) == 0;

		if (same) {
			rc = sbuf_ch(&b, ',');
		} else {
			rc = (k ? sbuf_ch(&b, '\n') : 0);
			rc = rc ? rc : (k ? sbuf_ch(&sh, ';') : 0);
			rc = rc ? rc : sbuf_str(&sh, name);
			rc = rc ? rc : sbuf_str(&b, name);
			rc = rc ? rc : sbuf_ch(&b, ':');
		}
		rc = rc ? rc : add_header_value(&b, h[order[k]].value);
	}
	return rc ? rc : sbuf_ch(&b, '\n');
}

static bool is_method(const char *m)
{
	size_t i;

	for (i = 0; m[i]; i++)
		if (m[i] < 'A' || m[i] > 'Z' || i >= 16)
			return false;
	return i > 0;
}

static bool is_payload_hash(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!is_tchar((unsigned char)s[i]) || i >= 128)
			return false;
	return i > 0;
}

int sigv4_canonical_request(const struct sigv4_request *r, char *out, size_t cap,
			    char *signed_headers, size_t sh_cap)
{
	struct sbuf b = {out, 0, cap};
	int rc;

	if (cap == 0)
		return -ENOSPC;
	out[0] = '\0';
	if (!r->method || !r->path || !r->payload_hash || !is_method(r->method) ||
	    !is_payload_hash(r->payload_hash))
		return -EINVAL;
	rc = sbuf_str(&b, r->method);
	rc = rc ? rc : sbuf_ch(&b, '\n');
	rc = rc ? rc : sigv4_canonical_uri(r->path, b.p + b.len, b.cap - b.len);
	if (rc)
		return rc;
	b.len += strlen(b.p + b.len);
	rc = sbuf_ch(&b, '\n');
	rc = rc ? rc : sigv4_canonical_query(r->query, b.p + b.len, b.cap - b.len);
	if (rc)
		return rc;
	b.len += strlen(b.p + b.len);
	rc = sbuf_ch(&b, '\n');
	rc = rc ? rc
		: sigv4_canonical_headers(r->headers, r->n_headers, b.p + b.len, b.cap - b.len,
					  signed_headers, sh_cap);
	if (rc)
		return rc;
	b.len += strlen(b.p + b.len);
	rc = sbuf_ch(&b, '\n');
	rc = rc ? rc : sbuf_str(&b, signed_headers);
	rc = rc ? rc : sbuf_ch(&b, '\n');
	return rc ? rc : sbuf_str(&b, r->payload_hash);
}

int sigv4_format_date(time_t when, char out[SIGV4_DATE_LEN + 1])
{
	struct tm tm;

	if (!gmtime_r(&when, &tm) || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
		return -ERANGE;
	if (strftime(out, SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_DATE_LEN)
		return -ERANGE;
	return 0;
}

static bool is_amz_date(const char *d)
{
	for (int i = 0; i < SIGV4_DATE_LEN; i++) {
		char want = i == 8 ? 'T' : i == 15 ? 'Z' : '0';

		if (want == '0' ? (d[i] < '0' || d[i] > '9') : d[i] != want)
			return false;
	}
	return d[SIGV4_DATE_LEN] == '\0';
}

/* A scope element (region, service) may not contain '/' or anything unprintable. */
static bool is_scope_part(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (i + 1 >= max || !(is_unreserved((unsigned char)s[i])))
			return false;
	return i > 0;
}

int sigv4_scope(const char *amz_date, const char *region, const char *service, char *out,
		size_t cap)
{
	int n;

	if (!is_amz_date(amz_date) || !is_scope_part(region, SIGV4_REGION_MAX) ||
	    !is_scope_part(service, SIGV4_SERVICE_MAX))
		return -EINVAL;
	n = snprintf(out, cap, "%.8s/%s/%s/aws4_request", amz_date, region, service);
	return (n < 0 || (size_t)n >= cap) ? -ENOSPC : 0;
}

int sigv4_sha256_hex(const void *data, size_t len, char hex[SIGV4_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -EIO;
	hex_encode(md, mdlen, hex);
	return 0;
}

int sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq, char *out,
			 size_t cap)
{
	char hash[SIGV4_HEX_LEN + 1];
	int n, rc;

	if (!is_amz_date(amz_date))
		return -EINVAL;
	rc = sigv4_sha256_hex(creq, strlen(creq), hash);
	if (rc)
		return rc;
	n = snprintf(out, cap, SIGV4_ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hash);
	return (n < 0 || (size_t)n >= cap) ? -ENOSPC : 0;
}

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int olen = 0;

	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
		  &olen) ||
	    olen != 32)
		return -EIO;
	return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
int sigv4_signing_key(const char *secret, const char *date8, const char *region,
		      const char *service, unsigned char key[SIGV4_KEY_LEN])
{
	char ksecret[SIGV4_SECRET_MAX + 5];
	unsigned char k[32];
	int n, rc;

	if (strlen(date8) != 8)
		return -EINVAL;
	n = snprintf(ksecret, sizeof(ksecret), "AWS4%s", secret);
	if (n < 0 || (size_t)n >= sizeof(ksecret))
		return -EINVAL;
	rc = hmac(ksecret, (size_t)n, date8, k);
	rc = rc ? rc : hmac(k, 32, region, k);
	rc = rc ? rc : hmac(k, 32, service, k);
	rc = rc ? rc : hmac(k, 32, "aws4_request", key);
	OPENSSL_cleanse(ksecret, sizeof(ksecret));
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

int sigv4_signature(const unsigned char key[SIGV4_KEY_LEN], const char *sts,
		    char hex[SIGV4_HEX_LEN + 1])
{
	unsigned char sig[32];
	int rc = hmac(key, SIGV4_KEY_LEN, sts, sig);

	if (!rc)
		hex_encode(sig, sizeof(sig), hex);
	return rc;
}

int sigv4_authorization(const char *access_key, const char *scope, const char *signed_headers,
			const char *signature, char *out, size_t cap)
{
	int n =
	    snprintf(out, cap, SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		     access_key, scope, signed_headers, signature);

	return (n < 0 || (size_t)n >= cap) ? -ENOSPC : 0;
}

/* Headers sigv4_sign() sets itself; an extra one of the same name would be joined to
 * ours with ',' and sign something the request does not carry. */
static bool is_reserved_header(const char *name)
{
	static const char *const reserved[] = {"host", "x-amz-date", "x-amz-content-sha256",
					       "x-amz-security-token", "authorization"};

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcasecmp(name, reserved[i]) == 0)
			return true;
	return false;
}

int sigv4_sign(const struct sigv4_creds *c, const char *region, const char *service,
	       const char *method, const char *host, const char *path, const char *query,
	       const struct sigv4_header *extra, size_t n_extra, const char *payload_hash,
	       time_t when, struct sigv4_signed *out)
{
	struct sigv4_header h[SIGV4_MAX_HEADERS];
	char creq[SIGV4_CANON_MAX], sts[SIGV4_SCOPE_MAX + 128];
	char scope[SIGV4_SCOPE_MAX], signed_headers[SIGV4_SIGNED_HEADERS_MAX];
	char sig[SIGV4_HEX_LEN + 1];
	unsigned char key[SIGV4_KEY_LEN];
	char date8[9];
	bool has_token = c->session_token && *c->session_token;
	size_t n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!c->access_key || !*c->access_key || !c->secret_key || !host || !payload_hash ||
	    n_extra > SIGV4_MAX_HEADERS - 4 || strlen(payload_hash) > SIGV4_HEX_LEN)
		return -EINVAL;
	for (size_t i = 0; i < n_extra; i++)
		if (!extra[i].name || is_reserved_header(extra[i].name))
			return -EINVAL;
	rc = sigv4_format_date(when, out->amz_date);
	if (rc)
		return rc;
	memcpy(date8, out->amz_date, 8);
	date8[8] = '\0';
	strcpy(out->content_sha256, payload_hash);
	out->security_token = has_token ? c->session_token : NULL;
	h[n++] = (struct sigv4_header){"host", host};
	h[n++] = (struct sigv4_header){"x-amz-content-sha256", out->content_sha256};
	h[n++] = (struct sigv4_header){"x-amz-date", out->amz_date};
	if (has_token)
		h[n++] = (struct sigv4_header){"x-amz-security-token", c->session_token};
	for (size_t i = 0; i < n_extra; i++)
		h[n++] = extra[i];

	struct sigv4_request r = {method, path, query, h, n, payload_hash};

	rc =
	    sigv4_canonical_request(&r, creq, sizeof(creq), signed_headers, sizeof(signed_headers));
	rc = rc ? rc : sigv4_scope(out->amz_date, region, service, scope, sizeof(scope));
	rc = rc ? rc : sigv4_string_to_sign(out->amz_date, scope, creq, sts, sizeof(sts));
	rc = rc ? rc : sigv4_signing_key(c->secret_key, date8, region, service, key);
	rc = rc ? rc : sigv4_signature(key, sts, sig);
	rc = rc ? rc
		: sigv4_authorization(c->access_key, scope, signed_headers, sig, out->authorization,
				      sizeof(out->authorization));
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* Copy s[0..n) into out[cap] when it is 1..cap-1 bytes of unreserved characters. */
static int take_unreserved(const char *s, size_t n, char *out, size_t cap)
{
	if (n == 0 || n >= cap)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!is_unreserved((unsigned char)s[i]))
			return -EINVAL;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* Credential=<access key>/<yyyymmdd>/<region>/<service>/aws4_request */
static int parse_credential(const char *s, size_t n, struct sigv4_auth *a)
{
	const char *part[5];
	size_t plen[5], k = 0, start = 0;
	int rc;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		if (k == 5)
			return -EINVAL;
		part[k] = s + start;
		plen[k++] = i - start;
		start = i + 1;
	}
	if (k != 5 || plen[1] != 8 || plen[4] != 12 || memcmp(part[4], "aws4_request", 12))
		return -EINVAL;
	for (size_t i = 0; i < 8; i++)
		if (part[1][i] < '0' || part[1][i] > '9')
			return -EINVAL;
	memcpy(a->date, part[1], 8);
	a->date[8] = '\0';
	rc = take_unreserved(part[0], plen[0], a->access_key, sizeof(a->access_key));
	rc = rc ? rc : take_unreserved(part[2], plen[2], a->region, sizeof(a->region));
	return rc ? rc : take_unreserved(part[3], plen[3], a->service, sizeof(a->service));
}

static bool is_lower_tchar(unsigned char c)
{
	return is_tchar(c) && !(c >= 'A' && c <= 'Z');
}

/* SignedHeaders=a;b;c: lower-case names, strictly ascending (so no duplicates, and the
 * order is the canonical one), at most SIGV4_MAX_HEADERS, and host among them: a local
 * verifier must never accept a signature that does not cover Host. */
static int parse_signed_headers(const char *s, size_t n, struct sigv4_auth *a)
{
	const char *prev = NULL;
	size_t prev_len = 0, start = 0, count = 0;
	bool has_host = false;

	if (n == 0 || n >= sizeof(a->signed_headers))
		return -EINVAL;
	for (size_t i = 0; i <= n; i++) {
		size_t len = i - start;
		int c;

		if (i < n && s[i] != ';') {
			if (!is_lower_tchar((unsigned char)s[i]))
				return -EINVAL;
			continue;
		}
		if (len == 0 || ++count > SIGV4_MAX_HEADERS)
			return -EINVAL;
		if (prev) {
			c = memcmp(prev, s + start, prev_len < len ? prev_len : len);
			if (c > 0 || (c == 0 && prev_len >= len))
				return -EINVAL;
		}
		has_host |= len == 4 && memcmp(s + start, "host", 4) == 0;
		prev = s + start;
		prev_len = len;
		start = i + 1;
	}
	if (!has_host)
		return -EINVAL;
	memcpy(a->signed_headers, s, n);
	a->signed_headers[n] = '\0';
	a->n_signed_headers = count;
	return 0;
}

static int parse_signature(const char *s, size_t n, struct sigv4_auth *a)
{
	if (n != SIGV4_HEX_LEN)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -EINVAL;
	memcpy(a->signature, s, n);
	a->signature[n] = '\0';
	return 0;
}

enum { SEEN_CREDENTIAL = 1, SEEN_SIGNED_HEADERS = 2, SEEN_SIGNATURE = 4 };

static int parse_component(const char *s, size_t n, struct sigv4_auth *a, unsigned *seen)
{
	static const struct {
		const char *name;
		unsigned bit;
		int (*parse)(const char *, size_t, struct sigv4_auth *);
	} comps[] = {
	    {"Credential=", SEEN_CREDENTIAL, parse_credential},
	    {"SignedHeaders=", SEEN_SIGNED_HEADERS, parse_signed_headers},
	    {"Signature=", SEEN_SIGNATURE, parse_signature},
	};

	for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
		size_t nl = strlen(comps[i].name);

		if (n < nl || memcmp(s, comps[i].name, nl))
			continue;
		if (*seen & comps[i].bit)
			return -EINVAL;
		*seen |= comps[i].bit;
		return comps[i].parse(s + nl, n - nl, a);
	}
	return -EINVAL;
}

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...": the algorithm,
 * spaces, then the three components in any order, each exactly once, separated by ','
 * and optional spaces. Nothing else is accepted; value need not be NUL-terminated. */
int sigv4_parse_authorization(const char *value, size_t len, struct sigv4_auth *out)
{
	size_t alg = strlen(SIGV4_ALGORITHM), i;
	unsigned seen = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	if (len <= alg || memcmp(value, SIGV4_ALGORITHM, alg) || value[alg] != ' ')
		return -EINVAL;
	for (i = alg; i < len && value[i] == ' '; i++)
		;
	for (;;) {
		const char *comma = memchr(value + i, ',', len - i);
		size_t clen = comma ? (size_t)(comma - (value + i)) : len - i;

		rc = parse_component(value + i, clen, out, &seen);
		if (rc)
			goto err;
		i += clen;
		if (i == len)
			break;
		for (i++; i < len && value[i] == ' '; i++)
			;
	}
	if (seen == (SEEN_CREDENTIAL | SEEN_SIGNED_HEADERS | SEEN_SIGNATURE))
		return 0;
	rc = -EINVAL;
err:
	memset(out, 0, sizeof(*out));
	return rc;
}

/* Constant-time comparison of two hex signatures. */
bool sigv4_signature_equal(const char *a, const char *b)
{
	if (strlen(a) != SIGV4_HEX_LEN || strlen(b) != SIGV4_HEX_LEN)
		return false;
	return CRYPTO_memcmp(a, b, SIGV4_HEX_LEN) == 0;
}

/* peerauth: HMAC-SHA256 signatures on peer requests under the cluster secret, over the
 * request line and a digest of every header line, verified in constant time, each nonce
 * accepted once; the secret is reloaded from its file when the file changes. */
#include "peerauth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "creds.h"
#include "hex.h"
#include "http.h"

#define DOMAIN "lota-peer-v2\n"
#define DIGEST_LEN 32 /* SHA-256 of the header lines */

_Static_assert(PEERAUTH_LINE_MAX >= sizeof(PEERAUTH_HEADER ": \r\n") + PEERHDR_VALUE_MAX,
	       "a signed line fits PEERAUTH_LINE_MAX");

struct secret {
	unsigned char key[PEERAUTH_SECRET_MAX];
	size_t len; /* 0: none */
};

struct peerauth {
	pthread_mutex_t lock; /* guards cur, prev, prev_until: copied out, never used under it */
	struct secret cur, prev;
	time_t prev_until;
	struct creds_stamp stamp;
	EVP_MAC *mac;
	struct peerauth_replay *replay;
	char path[];
};

static int read_secret(const char *path, struct secret *s, char *err, size_t errlen)
{
	unsigned char buf[PEERAUTH_SECRET_MAX + 1];
	ssize_t n;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0) {
		snprintf(err, errlen, "cluster-secret %s: %s", path, strerror(errno));
		return -errno;
	}
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "cluster-secret %s: %s", path, strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	/* trailing newlines and blanks are how editors and `kubectl create secret` differ */
	while (len > 0 && isspace(buf[len - 1]))
		len--;
	if (len > PEERAUTH_SECRET_MAX) {
		r = -E2BIG;
		snprintf(err, errlen, "cluster-secret %s: longer than %d bytes", path,
			 PEERAUTH_SECRET_MAX);
	} else if (len < PEERAUTH_SECRET_MIN) {
		r = -EINVAL;
		snprintf(err, errlen, "cluster-secret %s: %zu bytes, at least %d needed", path, len,
			 PEERAUTH_SECRET_MIN);
	} else {
		memcpy(s->key, buf, len);
		s->len = len;
	}
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return r;
}

int peerauth_open(const char *path, struct peerauth **out, char *err, size_t errlen)
{
	size_t plen = strlen(path);
	struct peerauth *pa = calloc(1, sizeof(*pa) + plen + 1);
	int r;

	if (!pa)
		return -ENOMEM;
	memcpy(pa->path, path, plen + 1);
	pthread_mutex_init(&pa->lock, NULL);
	pa->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!pa->mac) {
		snprintf(err, errlen, "cluster-secret: OpenSSL has no HMAC");
		r = -ENOSYS;
		goto err;
	}
	pa->replay = peerauth_replay_new(PEERAUTH_REPLAY_MAX);
	if (!pa->replay) {
		snprintf(err, errlen, "cluster-secret: no memory for the replay cache");
		r = -ENOMEM;
		goto err;
	}
	r = creds_changed(path, &pa->stamp);
	if (r < 0) {
		snprintf(err, errlen, "cluster-secret %s: %s", path, strerror(-r));
		goto err;
	}
	r = read_secret(path, &pa->cur, err, errlen);
	if (r < 0)
		goto err;
	*out = pa;
	return 0;
err:
	peerauth_free(pa);
	return r;
}

void peerauth_free(struct peerauth *pa)
{
	if (!pa)
		return;
	EVP_MAC_free(pa->mac);
	peerauth_replay_free(pa->replay);
	pthread_mutex_destroy(&pa->lock);
	explicit_bzero(pa, sizeof(*pa));
	free(pa);
}

int peerauth_reload(struct peerauth *pa, time_t now, char *err, size_t errlen)
{
	struct secret s = {.len = 0};
	int r = creds_changed(pa->path, &pa->stamp);

	if (r <= 0) {
		if (r < 0)
			snprintf(err, errlen, "cluster-secret %s: %s", pa->path, strerror(-r));
		return r;
	}
	r = read_secret(pa->path, &s, err, errlen);
	if (r < 0)
		return r;
	pthread_mutex_lock(&pa->lock);
	if (s.len != pa->cur.len || memcmp(s.key, pa->cur.key, s.len) != 0) {
		pa->prev = pa->cur;
		pa->prev_until = now + PEERAUTH_PREV_GRACE_S;
		pa->cur = s;
		r = 1;
	} else {
		r = 0;
	}
	pthread_mutex_unlock(&pa->lock);
	explicit_bzero(&s, sizeof(s));
	return r;
}

/* SHA-256 over "name:value\r\n" for each header line in order but x-lota-peer: the lines
 * as sent, with the OWS around a value left out as the parser leaves it out (it is not
 * part of the value, RFC 9110 5.5; the origin drops it too). Names cannot hold ':' and
 * values cannot hold CR or LF, so the concatenation is unambiguous. */
static int headers_digest(const struct peerauth_req *r, unsigned char out[DIGEST_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int outl = 0;
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);

	for (size_t i = 0; ok && i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];

		if (http_str_ieq(&h->name, PEERAUTH_HEADER))
			continue;
		ok = EVP_DigestUpdate(c, h->name.p, h->name.n) && EVP_DigestUpdate(c, ":", 1) &&
		     EVP_DigestUpdate(c, h->value.p, h->value.n) && EVP_DigestUpdate(c, "\r\n", 2);
	}
	ok = ok && EVP_DigestFinal_ex(c, out, &outl) && outl == DIGEST_LEN;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -EIO;
}

/* The signed text after the request line: "node \n ts \n nonce \n header digest", hex. */
static void signed_tail(const struct peerhdr *h, const unsigned char digest[DIGEST_LEN], char *out,
			size_t cap)
{
	char nonce[2 * PEERHDR_NONCE_LEN + 1], dig[2 * DIGEST_LEN + 1];

	hex_encode(h->nonce, PEERHDR_NONCE_LEN, nonce);
	hex_encode(digest, DIGEST_LEN, dig);
	snprintf(out, cap, "%s\n%lld\n%s\n%s", h->node, (long long)h->ts, nonce, dig);
}

/* HMAC-SHA256(secret, DOMAIN method \n target \n tail). Neither method nor target can
 * hold a newline (the HTTP parser refuses them), nor can the tail's fields. */
static int compute(EVP_MAC *mac, const struct secret *s, const struct peerauth_req *r,
		   const char *tail, unsigned char out[PEERHDR_SIG_LEN])
{
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
			       OSSL_PARAM_construct_end()};
	EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac);
	size_t outl = 0;
	int ok;

	if (!c)
		return -ENOMEM;
	ok = EVP_MAC_init(c, s->key, s->len, params) &&
	     EVP_MAC_update(c, (const unsigned char *)DOMAIN, strlen(DOMAIN)) &&
	     EVP_MAC_update(c, (const unsigned char *)r->method.p, r->method.n) &&
	     EVP_MAC_update(c, (const unsigned char *)"\n", 1) &&
	     EVP_MAC_update(c, (const unsigned char *)r->target.p, r->target.n) &&
	     EVP_MAC_update(c, (const unsigned char *)"\n", 1) &&
	     EVP_MAC_update(c, (const unsigned char *)tail, strlen(tail)) &&
	     EVP_MAC_final(c, out, &outl, PEERHDR_SIG_LEN);
	EVP_MAC_CTX_free(c);
	return ok && outl == PEERHDR_SIG_LEN ? 0 : -EIO;
}

static struct secret current(struct peerauth *pa)
{
	struct secret s;

	pthread_mutex_lock(&pa->lock);
	s = pa->cur;
	pthread_mutex_unlock(&pa->lock);
	return s;
}

int peerauth_sign(struct peerauth *pa, const struct peerauth_req *r, const char *node, time_t now,
		  char *out, size_t outlen)
{
	struct peerhdr h = {.ts = (int64_t)now};
	unsigned char digest[DIGEST_LEN];
	char tail[PEERHDR_VALUE_MAX], value[PEERHDR_VALUE_MAX];
	struct secret s;
	int n, rc;

	if (peerhdr_check_node(node, strlen(node)) < 0 || now < 0)
		return -EINVAL;
	memcpy(h.node, node, strlen(node) + 1);
	if (RAND_bytes(h.nonce, sizeof(h.nonce)) != 1)
		return -EIO;
	rc = headers_digest(r, digest);
	if (rc < 0)
		return rc;
	signed_tail(&h, digest, tail, sizeof(tail));
	s = current(pa);
	rc = compute(pa->mac, &s, r, tail, h.sig);
	explicit_bzero(&s, sizeof(s));
	if (rc == 0)
		rc = peerhdr_format(&h, value, sizeof(value));
	if (rc < 0)
		return rc;
	n = snprintf(out, outlen, PEERAUTH_HEADER ": %s\r\n", value);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int peerauth_sign_head(struct peerauth *pa, const char *head, size_t head_len, const char *node,
		       time_t now, char *out, size_t outlen)
{
	struct http_msg *m = malloc(sizeof(*m));
	struct peerauth_req r;
	const struct http_str *value;
	int rc;

	if (!m)
		return -ENOMEM;
	if (http_parse_request(head, head_len, m) != 0 || m->head_len != head_len ||
	    peerauth_req_of(m, &r, &value) < 0 || value)
		rc = -EINVAL;
	else
		rc = peerauth_sign(pa, &r, node, now, out, outlen);
	free(m);
	return rc;
}

static bool matches(EVP_MAC *mac, const struct secret *s, const struct peerauth_req *r,
		    const char *tail, const unsigned char sig[PEERHDR_SIG_LEN])
{
	unsigned char want[PEERHDR_SIG_LEN];

	return s->len > 0 && compute(mac, s, r, tail, want) == 0 &&
	       CRYPTO_memcmp(want, sig, PEERHDR_SIG_LEN) == 0;
}

/* Either secret in use (the previous one during its grace) made this signature. */
static bool signed_by_us(struct peerauth *pa, const struct peerauth_req *r, const struct peerhdr *h,
			 time_t now)
{
	unsigned char digest[DIGEST_LEN];
	char tail[PEERHDR_VALUE_MAX];
	struct secret cur, prev = {.len = 0};
	bool ok;

	if (headers_digest(r, digest) < 0)
		return false;
	signed_tail(h, digest, tail, sizeof(tail));
	pthread_mutex_lock(&pa->lock);
	cur = pa->cur;
	if (now <= pa->prev_until)
		prev = pa->prev;
	pthread_mutex_unlock(&pa->lock);
	ok = matches(pa->mac, &cur, r, tail, h->sig) || matches(pa->mac, &prev, r, tail, h->sig);
	explicit_bzero(&cur, sizeof(cur));
	explicit_bzero(&prev, sizeof(prev));
	return ok;
}

int peerauth_verify(struct peerauth *pa, const struct peerauth_req *r, const struct http_str *value,
		    time_t now, char *node, size_t nodelen)
{
	struct peerhdr h;
	int rc;

	if (!value)
		return -ENOENT;
	rc = peerhdr_parse(value->p, value->n, &h);
	if (rc < 0)
		return rc;
	if (h.ts > (int64_t)now + PEERAUTH_SKEW_S || h.ts < (int64_t)now - PEERAUTH_SKEW_S)
		return -ETIME;
	if (!signed_by_us(pa, r, &h, now))
		return -EPERM;
	/* Only a signature of ours takes a place in the cache: forgeries cannot fill it. */
	rc = peerauth_replay_admit(pa->replay, h.nonce, (time_t)h.ts + PEERAUTH_SKEW_S, now);
	if (rc == 0)
		snprintf(node, nodelen, "%s", h.node);
	return rc;
}

int peerauth_req_of(const struct http_msg *m, struct peerauth_req *r, const struct http_str **value)
{
	*value = NULL;
	r->method = m->method;
	r->target = m->target;
	r->headers = m->headers;
	r->nheaders = m->nheaders;
	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		if (!http_str_ieq(&h->name, PEERAUTH_HEADER))
			continue;
		if (*value)
			return -EBADMSG;
		*value = &h->value;
	}
	return 0;
}

/* --- the replay cache ------------------------------------------------------------ */

#define NIL UINT32_MAX

/* A ring of entries in the order they were admitted, chained by nonce into buckets.
 * Entries leave from the oldest end once their time passed; one that outlives an older
 * neighbour's time just waits behind it, which keeps a nonce longer, never shorter.
 * A wall clock stepped back by more than the window keeps nonces until it catches up
 * (their signatures would come back into the window); should the cache fill meanwhile,
 * peer requests are refused and each node serves its reads itself. */
struct replay_entry {
	unsigned char nonce[PEERHDR_NONCE_LEN];
	int64_t until;
	uint32_t next; /* in its bucket's chain */
};

struct peerauth_replay {
	pthread_mutex_t lock;
	size_t max, head, count;
	size_t nbuckets; /* a power of two */
	uint32_t *buckets;
	struct replay_entry e[];
};

struct peerauth_replay *peerauth_replay_new(size_t max)
{
	struct peerauth_replay *rc;
	size_t nb = 1;

	if (max == 0 || max >= NIL)
		return NULL;
	while (nb < max)
		nb <<= 1;
	rc = calloc(1, sizeof(*rc) + max * sizeof(rc->e[0]));
	if (!rc)
		return NULL;
	rc->buckets = malloc(nb * sizeof(rc->buckets[0]));
	if (!rc->buckets) {
		free(rc);
		return NULL;
	}
	for (size_t i = 0; i < nb; i++)
		rc->buckets[i] = NIL;
	rc->max = max;
	rc->nbuckets = nb;
	pthread_mutex_init(&rc->lock, NULL);
	return rc;
}

void peerauth_replay_free(struct peerauth_replay *rc)
{
	if (!rc)
		return;
	pthread_mutex_destroy(&rc->lock);
	free(rc->buckets);
	free(rc);
}

/* Nonces are random (and HMAC-checked before they get here): any 4 bytes spread well. */
static uint32_t *bucket_of(struct peerauth_replay *rc, const unsigned char *nonce)
{
	uint32_t h;

	memcpy(&h, nonce, sizeof(h));
	return &rc->buckets[h & (rc->nbuckets - 1)];
}

static void expire(struct peerauth_replay *rc, time_t now)
{
	while (rc->count > 0 && rc->e[rc->head].until < (int64_t)now) {
		uint32_t *link = bucket_of(rc, rc->e[rc->head].nonce);

		while (*link != rc->head)
			link = &rc->e[*link].next;
		*link = rc->e[rc->head].next;
		rc->head = (rc->head + 1) % rc->max;
		rc->count--;
	}
}

static bool is_known(struct peerauth_replay *rc, const unsigned char *nonce)
{
	for (uint32_t i = *bucket_of(rc, nonce); i != NIL; i = rc->e[i].next)
		if (memcmp(rc->e[i].nonce, nonce, PEERHDR_NONCE_LEN) == 0)
			return true;
	return false;
}

int peerauth_replay_admit(struct peerauth_replay *rc, const unsigned char nonce[PEERHDR_NONCE_LEN],
			  time_t until, time_t now)
{
	uint32_t *b, i;
	int r = 0;

	pthread_mutex_lock(&rc->lock);
	expire(rc, now);
	if (is_known(rc, nonce)) {
		r = -EALREADY;
	} else if (rc->count == rc->max) {
		r = -ENOBUFS; /* forgetting a live nonce would let its request be replayed */
	} else {
		i = (uint32_t)((rc->head + rc->count) % rc->max);
		b = bucket_of(rc, nonce);
		memcpy(rc->e[i].nonce, nonce, PEERHDR_NONCE_LEN);
		rc->e[i].until = (int64_t)until;
		rc->e[i].next = *b;
		*b = i;
		rc->count++;
	}
	pthread_mutex_unlock(&rc->lock);
	return r;
}

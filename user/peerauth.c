/* peerauth: HMAC-SHA256 signatures on peer requests under the cluster secret, verified
 * in constant time, with the secret reloaded from its file when the file changes. */
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

#include "creds.h"
#include "http.h"

#define SIG_LEN 32
#define DOMAIN "lota-peer-v1\n"

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

/* HMAC-SHA256(secret, DOMAIN method \n target \n host \n ts \n node). None of the parts
 * can hold a newline (the HTTP parser refuses them, node ids are checked), so the
 * concatenation is unambiguous. */
static int compute(EVP_MAC *mac, const struct secret *s, const struct peerauth_req *r,
		   const char *ts, const char *node, unsigned char out[SIG_LEN])
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
	     EVP_MAC_update(c, (const unsigned char *)r->host.p, r->host.n) &&
	     EVP_MAC_update(c, (const unsigned char *)"\n", 1) &&
	     EVP_MAC_update(c, (const unsigned char *)ts, strlen(ts)) &&
	     EVP_MAC_update(c, (const unsigned char *)"\n", 1) &&
	     EVP_MAC_update(c, (const unsigned char *)node, strlen(node)) &&
	     EVP_MAC_final(c, out, &outl, SIG_LEN);
	EVP_MAC_CTX_free(c);
	return ok && outl == SIG_LEN ? 0 : -EIO;
}

int peerauth_check_node(const char *node, size_t len)
{
	if (len == 0 || len >= PEERAUTH_NODE_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)node[i]) && !strchr("._:[]-", node[i]))
			return -EINVAL;
	return 0;
}

int peerauth_sign(struct peerauth *pa, const struct peerauth_req *r, const char *node, time_t now,
		  char *out, size_t outlen)
{
	unsigned char sig[SIG_LEN];
	struct secret s;
	char ts[24];
	int n, rc;

	if (peerauth_check_node(node, strlen(node)) < 0)
		return -EINVAL;
	snprintf(ts, sizeof(ts), "%lld", (long long)now);
	pthread_mutex_lock(&pa->lock);
	s = pa->cur;
	pthread_mutex_unlock(&pa->lock);
	rc = compute(pa->mac, &s, r, ts, node, sig);
	explicit_bzero(&s, sizeof(s));
	if (rc < 0)
		return rc;
	n = snprintf(out, outlen, PEERAUTH_HEADER ": v1 node=%s,ts=%s,sig=", node, ts);
	if (n < 0 || (size_t)n + 2 * SIG_LEN + 3 > outlen)
		return -ENOSPC;
	for (int i = 0; i < SIG_LEN; i++)
		n += snprintf(out + n, outlen - (size_t)n, "%02x", sig[i]);
	memcpy(out + n, "\r\n", 3);
	return 0;
}

/* Lower-case hex only: we write it so, and one spelling per signature is simpler. */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Pulls node, ts and sig out of "v1 node=<id>,ts=<digits>,sig=<64 hex>", exactly. */
static int parse_value(const struct http_str *v, char *node, char *ts, unsigned char sig[SIG_LEN])
{
	const char *p = v->p, *end = v->p + v->n, *comma;
	size_t n;

	if (v->n < 3 || memcmp(p, "v1 ", 3) != 0)
		return -EBADMSG;
	p += 3;
	if ((size_t)(end - p) < 5 || memcmp(p, "node=", 5) != 0)
		return -EBADMSG;
	p += 5;
	comma = memchr(p, ',', (size_t)(end - p));
	if (!comma || peerauth_check_node(p, (size_t)(comma - p)) < 0)
		return -EBADMSG;
	memcpy(node, p, (size_t)(comma - p));
	node[comma - p] = '\0';
	p = comma + 1;
	if ((size_t)(end - p) < 3 || memcmp(p, "ts=", 3) != 0)
		return -EBADMSG;
	p += 3;
	for (n = 0; p + n < end && isdigit((unsigned char)p[n]); n++)
		;
	if (n == 0 || n > 19 || p + n == end || p[n] != ',')
		return -EBADMSG;
	memcpy(ts, p, n);
	ts[n] = '\0';
	p += n + 1;
	if ((size_t)(end - p) != 4 + 2 * SIG_LEN || memcmp(p, "sig=", 4) != 0)
		return -EBADMSG;
	p += 4;
	for (int i = 0; i < SIG_LEN; i++) {
		int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EBADMSG;
		sig[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static bool matches(EVP_MAC *mac, const struct secret *s, const struct peerauth_req *r,
		    const char *ts, const char *node, const unsigned char sig[SIG_LEN])
{
	unsigned char want[SIG_LEN];

	return s->len > 0 && compute(mac, s, r, ts, node, want) == 0 &&
	       CRYPTO_memcmp(want, sig, SIG_LEN) == 0;
}

int peerauth_verify(struct peerauth *pa, const struct peerauth_req *r, const struct http_str *value,
		    time_t now, char *node, size_t nodelen)
{
	char id[PEERAUTH_NODE_MAX], ts[24];
	unsigned char sig[SIG_LEN];
	struct secret cur, prev = {.len = 0};
	long long t;
	int rc = -EPERM;

	if (!value)
		return -ENOENT;
	if (parse_value(value, id, ts, sig) < 0)
		return -EBADMSG;
	t = strtoll(ts, NULL, 10);
	if (t > (long long)now + PEERAUTH_SKEW_S || t < (long long)now - PEERAUTH_SKEW_S)
		return -ETIME;
	pthread_mutex_lock(&pa->lock);
	cur = pa->cur;
	if (now <= pa->prev_until)
		prev = pa->prev;
	pthread_mutex_unlock(&pa->lock);
	if (matches(pa->mac, &cur, r, ts, id, sig) || matches(pa->mac, &prev, r, ts, id, sig)) {
		snprintf(node, nodelen, "%s", id);
		rc = 0;
	}
	explicit_bzero(&cur, sizeof(cur));
	explicit_bzero(&prev, sizeof(prev));
	return rc;
}

int peerauth_req_of(const struct http_msg *m, struct peerauth_req *r, const struct http_str **value)
{
	const struct http_str *host = NULL;

	*value = NULL;
	r->method = m->method;
	r->target = m->target;
	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		if (http_str_ieq(&h->name, "host")) {
			if (host)
				return -EBADMSG;
			host = &h->value;
		} else if (http_str_ieq(&h->name, PEERAUTH_HEADER)) {
			if (*value)
				return -EBADMSG;
			*value = &h->value;
		}
	}
	r->host = host ? *host : (struct http_str){"", 0};
	return 0;
}

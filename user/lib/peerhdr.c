/* peerhdr: the x-lota-peer value's one spelling. Strict on purpose: one signature has one
 * spelling (lower-case hex, no leading zeros, fields in order), so nothing about a
 * signed request can be rewritten without the receiver noticing the bytes changed. */
#include "peerhdr.h"
#include "hex.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define VERSION "v2 "

int peerhdr_check_node(const char *node, size_t len)
{
	if (len == 0 || len >= PEERHDR_NODE_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = node[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    !(c && strchr("._:[]-", c)))
			return -EINVAL;
	}
	return 0;
}

int peerhdr_format(const struct peerhdr *h, char *out, size_t outlen)
{
	char nonce[2 * PEERHDR_NONCE_LEN + 1], sig[2 * PEERHDR_SIG_LEN + 1];
	int n;

	if (peerhdr_check_node(h->node, strnlen(h->node, PEERHDR_NODE_MAX)) < 0 || h->ts < 0)
		return -EINVAL;
	hex_encode(h->nonce, PEERHDR_NONCE_LEN, nonce);
	hex_encode(h->sig, PEERHDR_SIG_LEN, sig);
	n = snprintf(out, outlen, VERSION "node=%s,ts=%lld,nonce=%s,sig=%s", h->node,
		     (long long)h->ts, nonce, sig);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

/* A cursor over the value: each step consumes one exact piece or fails. */
struct cur {
	const char *p, *end;
};

static int expect(struct cur *c, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return -EBADMSG;
	c->p += n;
	return 0;
}

/* Lower-case hex only: we write it so, and one spelling per signature is simpler. */
/* Lower-case digits only: one spelling per value, as the sender writes it. */
static int take_hex(struct cur *c, unsigned char *out, size_t n)
{
	if ((size_t)(c->end - c->p) < 2 * n)
		return -EBADMSG;
	for (size_t i = 0; i < 2 * n; i++)
		if (c->p[i] >= 'A' && c->p[i] <= 'F')
			return -EBADMSG;
	if (hex_decode(c->p, out, n) < 0)
		return -EBADMSG;
	c->p += 2 * n;
	return 0;
}

/* Decimal without a sign or leading zeros ("0" itself is fine), within int64_t. */
static int take_ts(struct cur *c, int64_t *ts)
{
	const char *s = c->p;
	int64_t v = 0;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		int d = *c->p - '0';

		if (v > (INT64_MAX - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
		c->p++;
	}
	if (c->p == s || (*s == '0' && c->p - s > 1))
		return -EBADMSG;
	*ts = v;
	return 0;
}

static int take_node(struct cur *c, char *node)
{
	const char *comma = memchr(c->p, ',', (size_t)(c->end - c->p));
	size_t n;

	if (!comma)
		return -EBADMSG;
	n = (size_t)(comma - c->p);
	if (peerhdr_check_node(c->p, n) < 0)
		return -EBADMSG;
	memcpy(node, c->p, n);
	node[n] = '\0';
	c->p = comma;
	return 0;
}

/* "v<digits> " that is not ours: a node of another version, worth its own log line. */
static bool is_other_version(const char *p, size_t n)
{
	size_t i = 1;

	if (n < 3 || p[0] != 'v')
		return false;
	while (i < n && p[i] >= '0' && p[i] <= '9')
		i++;
	return i > 1 && i < n && p[i] == ' ';
}

int peerhdr_parse(const char *p, size_t n, struct peerhdr *h)
{
	struct cur c = {p, p + n};

	if (expect(&c, VERSION) < 0)
		return is_other_version(p, n) ? -EPROTONOSUPPORT : -EBADMSG;
	if (expect(&c, "node=") < 0 || take_node(&c, h->node) < 0 || expect(&c, ",ts=") < 0 ||
	    take_ts(&c, &h->ts) < 0 || expect(&c, ",nonce=") < 0 ||
	    take_hex(&c, h->nonce, PEERHDR_NONCE_LEN) < 0 || expect(&c, ",sig=") < 0 ||
	    take_hex(&c, h->sig, PEERHDR_SIG_LEN) < 0 || c.p != c.end)
		return -EBADMSG;
	return 0;
}

/* peerhdr: the value of the x-lota-peer header, written and read back exactly:
 * `v2 node=<id>,ts=<unix seconds>,nonce=<32 hex>,sig=<64 hex>`. No crypto and no HTTP:
 * peerauth.c decides what the fields mean; this only says whether bytes are well formed. */
#ifndef LOTA_PEERHDR_H
#define LOTA_PEERHDR_H

#include <stddef.h>
#include <stdint.h>

#define PEERHDR_NODE_MAX 64  /* node id, with its NUL */
#define PEERHDR_NONCE_LEN 16 /* bytes: 128 random bits, so a nonce never repeats by chance */
#define PEERHDR_SIG_LEN 32   /* bytes of HMAC-SHA256 */
/* "v2 node=<63>,ts=<19>,nonce=<32>,sig=<64>" and its NUL */
#define PEERHDR_VALUE_MAX 208

struct peerhdr {
	char node[PEERHDR_NODE_MAX];
	int64_t ts; /* >= 0 */
	unsigned char nonce[PEERHDR_NONCE_LEN];
	unsigned char sig[PEERHDR_SIG_LEN];
};

/* Parses a value exactly as peerhdr_format writes it. -EPROTONOSUPPORT for a value of
 * another version ("v1 ..."), -EBADMSG for anything else that is not exactly that. */
int peerhdr_parse(const char *p, size_t n, struct peerhdr *h);
/* Writes the value (no header name, no CRLF) with its NUL. -EINVAL for a bad node id or
 * a negative ts, -ENOSPC if it does not fit. */
int peerhdr_format(const struct peerhdr *h, char *out, size_t outlen);
/* A node id is 1..63 bytes of [A-Za-z0-9._:[]-]: an address as addr_str() writes it. */
int peerhdr_check_node(const char *node, size_t len);

#endif

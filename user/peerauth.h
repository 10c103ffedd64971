/* peerauth: proof that a request on the peer port comes from a node of this cluster.
 * The sender adds `x-lota-peer: v1 node=<id>,ts=<unix>,sig=<hex>`, an HMAC-SHA256 under
 * the cluster secret over the method, target, Host, timestamp and node id; the receiver
 * checks it in constant time and refuses more than PEERAUTH_SKEW_S of clock skew.
 * The secret is a file; the control thread reloads it when it changes, and the previous
 * secret keeps verifying for PEERAUTH_PREV_GRACE_S so that a rotation can roll through
 * the cluster one node at a time. */
#ifndef LOTA_PEERAUTH_H
#define LOTA_PEERAUTH_H

#include <stddef.h>
#include <time.h>

#include "http-t.h"

#define PEERAUTH_HEADER "x-lota-peer"
#define PEERAUTH_SKEW_S 60
#define PEERAUTH_PREV_GRACE_S 300
#define PEERAUTH_SECRET_MIN 16 /* bytes, after trailing blanks are dropped */
#define PEERAUTH_SECRET_MAX 4096
#define PEERAUTH_NODE_MAX 64 /* node id, with its NUL */
/* "x-lota-peer: v1 node=<63>,ts=<20>,sig=<64>\r\n" and its NUL */
#define PEERAUTH_LINE_MAX 192

struct peerauth;

/* What the signature covers, as the parser saw it (Host: the header's value, or empty). */
struct peerauth_req {
	struct http_str method;
	struct http_str target;
	struct http_str host;
};

/* Loads the secret from path. Errors name the file and the reason. */
int peerauth_open(const char *path, struct peerauth **out, char *err, size_t errlen);
void peerauth_free(struct peerauth *pa);
/* 0: the file did not change; 1: a new secret is in use; negative: the file changed but
 * cannot be used (err says why) and the current secret stays. Control thread. */
int peerauth_reload(struct peerauth *pa, time_t now, char *err, size_t errlen);

/* Writes the whole header line, CRLF included, into out. Any thread. */
int peerauth_sign(struct peerauth *pa, const struct peerauth_req *r, const char *node, time_t now,
		  char *out, size_t outlen);
/* Checks the header's value (NULL when the request has none). On success copies the
 * sender's node id into node. Errors: -ENOENT missing, -EBADMSG malformed, -ETIME
 * outside the skew window, -EPERM wrong signature. Any thread. */
int peerauth_verify(struct peerauth *pa, const struct peerauth_req *r, const struct http_str *value,
		    time_t now, char *node, size_t nodelen);
/* Fills r from a parsed request and points *value at its x-lota-peer value (NULL if
 * none). -EBADMSG if Host or x-lota-peer appears twice: one meaning per request. */
int peerauth_req_of(const struct http_msg *m, struct peerauth_req *r,
		    const struct http_str **value);
/* A node id is 1..63 bytes of [A-Za-z0-9._:[]-]: an address as addr_str() writes it. */
int peerauth_check_node(const char *node, size_t len);

#endif

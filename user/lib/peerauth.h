/* peerauth: proof that a request on the peer port comes from a node of this cluster, made
 * for this very request, and seen once. The sender adds
 * `x-lota-peer: v2 node=<id>,ts=<unix>,nonce=<32 hex>,sig=<64 hex>` (user/peerhdr.h), an
 * HMAC-SHA256 under the cluster secret over the method, the target, the node id, the
 * time, a 128-bit random nonce and a SHA-256 of every other header line of the head in
 * order (name, colon, value: Host, Authorization, Range and the rest). The receiver
 * recomputes it over the head it received, checks it in constant time, refuses more than
 * PEERAUTH_SKEW_S of clock skew and a nonce it has already accepted (a bounded replay
 * cache that refuses when full rather than forget). v1 values are refused.
 * The secret is a file; the control thread reloads it when it changes, and the previous
 * secret keeps verifying for PEERAUTH_PREV_GRACE_S so that a rotation can roll through
 * the cluster one node at a time. */
#ifndef LOTA_PEERAUTH_H
#define LOTA_PEERAUTH_H

#include <stddef.h>
#include <time.h>

#include "http-t.h"
#include "peerhdr.h"

#define PEERAUTH_HEADER "x-lota-peer"
/* The window covers clock skew between nodes, not transit: a sender signs right before it
 * writes the head and the owner checks it as soon as the head is parsed. NTP keeps nodes
 * within milliseconds; 10 s leaves room for a clock still converging after boot, and
 * bounds how long the replay cache must remember a nonce (until ts + PEERAUTH_SKEW_S). A
 * node off by more sees its forwards and probes refused: it serves reads itself. */
#define PEERAUTH_SKEW_S 10
#define PEERAUTH_PREV_GRACE_S 300
#define PEERAUTH_SECRET_MIN 16 /* bytes, after trailing blanks are dropped */
#define PEERAUTH_SECRET_MAX 4096
#define PEERAUTH_NODE_MAX PEERHDR_NODE_MAX /* node id, with its NUL */
/* "x-lota-peer: <value>\r\n" and its NUL */
#define PEERAUTH_LINE_MAX 224
/* Nonces remembered per receiving process (32 bytes each, 4 MiB in all, plus 0.5 MiB of
 * index). A nonce stays at most 2 * PEERAUTH_SKEW_S; each forward is a read the origin
 * authorizes, so this is well above a receiver's request rate (some thousands a second). */
#define PEERAUTH_REPLAY_MAX (1u << 17)

struct peerauth;
struct peerauth_replay;

/* What the signature covers, as the parser saw it. */
struct peerauth_req {
	struct http_str method;
	struct http_str target;
	const struct http_header *headers; /* in the order sent; x-lota-peer lines do not count */
	size_t nheaders;
};

/* Loads the secret from path. Errors name the file and the reason. */
int peerauth_open(const char *path, struct peerauth **out, char *err, size_t errlen);
void peerauth_free(struct peerauth *pa);
/* 0: the file did not change; 1: a new secret is in use; negative: the file changed but
 * cannot be used (err says why) and the current secret stays. Control thread. */
int peerauth_reload(struct peerauth *pa, time_t now, char *err, size_t errlen);

/* Writes the whole header line, CRLF included, into out, under a fresh nonce: one line
 * is good for one request, once. Any thread. */
int peerauth_sign(struct peerauth *pa, const struct peerauth_req *r, const char *node, time_t now,
		  char *out, size_t outlen);
/* The same for a head lotad writes itself (head_len bytes, the empty line included, no
 * x-lota-peer line yet): the line goes before the empty line. -EINVAL if it is not one
 * whole request head. */
int peerauth_sign_head(struct peerauth *pa, const char *head, size_t head_len, const char *node,
		       time_t now, char *out, size_t outlen);
/* Checks the header's value (NULL when the request has none) and remembers its nonce. On
 * success copies the sender's node id into node. Errors: -ENOENT missing, -EBADMSG
 * malformed, -EPROTONOSUPPORT another version (v1), -ETIME outside the skew window,
 * -EPERM wrong signature, -EALREADY a replay, -ENOBUFS the replay cache is full. Any
 * thread. */
int peerauth_verify(struct peerauth *pa, const struct peerauth_req *r, const struct http_str *value,
		    time_t now, char *node, size_t nodelen);
/* Fills r from a parsed request and points *value at its x-lota-peer value (NULL if
 * none). -EBADMSG if x-lota-peer appears twice: one signature per request. */
int peerauth_req_of(const struct http_msg *m, struct peerauth_req *r,
		    const struct http_str **value);

/* The replay cache alone (peerauth_verify uses one of PEERAUTH_REPLAY_MAX entries):
 * thread-safe, at most max nonces, each until its time passes. */
struct peerauth_replay *peerauth_replay_new(size_t max);
void peerauth_replay_free(struct peerauth_replay *rc);
/* 0: first sight, remembered while now <= until; -EALREADY: remembered already;
 * -ENOBUFS: max nonces are live: refused, the caller counts and logs it. */
int peerauth_replay_admit(struct peerauth_replay *rc, const unsigned char nonce[PEERHDR_NONCE_LEN],
			  time_t until, time_t now);

#endif

/* Reads whose owner is another node: forward the client's request to the owner's peer
 * port, signed over its whole head (one hop at most: a forwarded request is never
 * forwarded again), fall back to handling the read here when the owner cannot be
 * reached, and tell an owner to drop a key written through this node. Also the peer
 * port's gate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cache.h"
#include "exchange/conn.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "peerauth.h"
#include "cluster/peers.h"
#include "s3.h"
#include "sigv4.h"

#define INVALIDATE_PATH "/_lota/invalidate"
#define INVALIDATE_TIMEOUT_S 5
#define FWD_CHECK_S 1

/* This node's id for signing: as the membership knows it, else the peer-listen address. */
static void self_id(struct lotad *d, char *buf, size_t len)
{
	peers_self(d->peers, buf, len);
	if (!buf[0])
		snprintf(buf, len, "%s", d->cfg.self[0] ? d->cfg.self : d->cfg.peer_listen);
}

/* Gives up the forward and runs the read on this node, from the start. */
static void read_here(struct conn *c)
{
	struct exchange *x = c->x;

	if (x->fwd_timer)
		event_free(x->fwd_timer);
	x->fwd_timer = NULL;
	x->fwd_active = false;
	x->extra_hdr[0] = '\0';
	x->route = NULL;
	if (c->obev) {
		bufferevent_free(c->obev);
		c->obev = NULL;
	}
	objread_start(c);
}

static void fwd_check(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct exchange *x = c->x;
	struct peer_target now;

	if (!x || !x->fwd_active || x->resp_head_sent)
		return;
	if (peers_owner_of(c->w->d->peers, x->s3.bucket, x->s3.key, &now) == 1 &&
	    strcmp(now.id, x->fwd.id) == 0)
		return;
	log_warn("owner %s of %s/%s is down and has not answered: handling the read here",
		 x->fwd.id, x->s3.bucket, x->s3.key);
	peers_count_fallback(c->w->d->peers, &x->fwd);
	read_here(c);
}

void peerfwd_end(struct conn *c, struct exchange *x)
{
	if (x->fwd_timer)
		event_free(x->fwd_timer);
	x->fwd_timer = NULL;
	if (x->fwd_active)
		peers_count_sent(c->w->d->peers, &x->fwd, x->bytes_out);
}

/* Signs the forward of x's head into x->extra_hdr, under a nonce of its own. */
static int sign_forward(struct conn *c)
{
	struct exchange *x = c->x;
	struct lotad *d = c->w->d;
	struct peerauth_req req;
	const struct http_str *value;
	char self[PEERAUTH_NODE_MAX];
	int r;

	self_id(d, self, sizeof(self));
	r = peerauth_req_of(&x->req, &req, &value);
	if (r == 0 && value)
		r = -EINVAL; /* a client's own x-lota-peer (proxy.c refuses it): never forwarded */
	if (r == 0)
		r = peerauth_sign(d->peerauth, &req, self, time(NULL), x->extra_hdr,
				  sizeof(x->extra_hdr));
	if (r < 0)
		x->extra_hdr[0] = '\0';
	return r;
}

int peerfwd_resign(struct conn *c)
{
	return c->x->fwd_active ? sign_forward(c) : 0;
}

bool peerfwd_try(struct conn *c)
{
	struct exchange *x = c->x;
	struct lotad *d = c->w->d;

	/* A read with a body could not fall back here once bytes went to the owner. */
	if (!d->peers || c->is_peer_port || x->fwd_tried || x->req.body != HTTP_BODY_NONE)
		return false;
	x->fwd_tried = true;
	if (peers_owner_of(d->peers, x->s3.bucket, x->s3.key, &x->fwd) != 1)
		return false;
	if (sign_forward(c) < 0)
		return false;
	x->fwd_active = true;
	x->route = "peer";
	if (exchange_send_peer(c, &x->fwd, x->extra_hdr) < 0) {
		peers_report_unreachable(d->peers, &x->fwd);
		x->fwd_active = false;
		x->extra_hdr[0] = '\0';
		x->route = NULL;
		return false;
	}
	/* A frozen owner answers nothing; the probes soon mark it down, and then waiting
	 * for it any longer is pointless: the timer hands the read back to this node. */
	x->fwd_timer = event_new(c->w->base, -1, EV_PERSIST, fwd_check, c);
	if (x->fwd_timer)
		event_add(x->fwd_timer, &(struct timeval){FWD_CHECK_S, 0});
	return true;
}

int peerfwd_fallback(struct conn *c)
{
	struct exchange *x = c->x;
	struct lotad *d = c->w->d;

	log_warn("owner %s of %s/%s unreachable: handling the read here", x->fwd.id, x->s3.bucket,
		 x->s3.key);
	peers_report_unreachable(d->peers, &x->fwd);
	read_here(c);
	return 1;
}

static int query_get(const struct http_str *t, const char *name, char *out, size_t cap)
{
	const char *q = memchr(t->p, '?', t->n), *end = t->p + t->n;
	size_t nl = strlen(name);

	while (q && q < end) {
		const char *p = q + 1, *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;

		if ((size_t)(stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
			return s3_pct_decode(p + nl + 1, (size_t)(stop - p - nl - 1), out, cap, false);
		q = amp;
	}
	return -ENOENT;
}

/* POST /_lota/invalidate?bucket=&key=&version= from a node a write went through. */
static void serve_invalidate(struct conn *c)
{
	struct exchange *x = c->x;
	struct lotad *d = c->w->d;
	char bucket[S3_BUCKET_MAX], version[S3_VERSION_MAX] = "";
	char *key = malloc(S3_KEY_MAX);
	int n = 0;

	if (!key || query_get(&x->req.target, "bucket", bucket, sizeof(bucket)) < 0 ||
	    query_get(&x->req.target, "key", key, S3_KEY_MAX) < 0 ||
	    query_get(&x->req.target, "version", version, sizeof(version)) == -EINVAL) {
		free(key);
		exchange_reply(c, 400, NULL, "bucket and key are required\n", true);
		return;
	}
	if (d->cache) {
		struct cache_key k = {bucket, key, version};

		n = cache_invalidate(d->cache, &k);
		if (n > 0)
			metric_add(M_cache_invalidations, (uint64_t)n);
	}
	free(key);
	exchange_reply(c, 200, NULL, n > 0 ? "dropped\n" : "absent\n", false);
}

static const char *refusal(int r)
{
	switch (r) {
	case -ENOENT:
		return "no signature";
	case -EBADMSG:
		return "malformed signature";
	case -ETIME:
		return "signature outside the time window (stale, or clocks apart)";
	case -EPROTONOSUPPORT:
		return "signature of another version (a node runs an older lotad?)";
	case -EALREADY:
		return "replayed signature";
	case -ENOBUFS:
		return "replay cache full";
	default:
		return "bad signature";
	}
}

/* A full replay cache refuses every peer request: say so once a second, not each time. */
static void log_refusal(struct conn *c, int r)
{
	static time_t last_full;
	time_t now = time(NULL);

	if (r != -ENOBUFS) {
		log_warn("%s: peer request refused: %s", c->peer, refusal(r));
		return;
	}
	if (__atomic_exchange_n(&last_full, now, __ATOMIC_RELAXED) == now)
		return;
	log_warn("%s: peer request refused: replay cache full (%u nonces live, %llu refused): "
		 "senders serve their reads themselves",
		 c->peer, PEERAUTH_REPLAY_MAX, (unsigned long long)metric_get(M_peer_replay_full));
}

int peerfwd_admit(struct conn *c)
{
	struct exchange *x = c->x;
	struct lotad *d = c->w->d;
	struct peerauth_req req;
	const struct http_str *value;
	char node[PEERAUTH_NODE_MAX];
	int r = -EPERM;

	/* two x-lota-peer lines are as malformed as one bad one */
	if (d->peerauth && (r = peerauth_req_of(&x->req, &req, &value)) == 0)
		r = peerauth_verify(d->peerauth, &req, value, time(NULL), node, sizeof(node));
	if (r < 0) {
		metric_add(M_peer_refused, 1);
		if (r == -EALREADY)
			metric_add(M_peer_replayed, 1);
		if (r == -ENOBUFS)
			metric_add(M_peer_replay_full, 1);
		log_refusal(c, r);
		exchange_reply(c, 403, "x-lota-peer-refused: 1\r\n",
			       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
			       "<Message>peer request refused</Message></Error>\n", true);
		return -EPERM;
	}
	x->route = "from-peer";
	if (http_str_eq(&x->req.target, PEERS_PROBE_PATH)) {
		exchange_reply(c, 200, NULL, "ok\n", false);
		return 1;
	}
	if (x->req.target.n > strlen(INVALIDATE_PATH) &&
	    memcmp(x->req.target.p, INVALIDATE_PATH "?", strlen(INVALIDATE_PATH) + 1) == 0 &&
	    http_str_eq(&x->req.method, "POST")) {
		serve_invalidate(c);
		return 1;
	}
	peers_count_served(d->peers);
	return 0;
}

/* A fire-and-forget invalidation request to a key's owner. */
struct inval {
	struct bufferevent *bev;
};

static void inval_done(struct bufferevent *bev, void *arg)
{
	struct inval *iv = arg;

	bufferevent_free(iv->bev);
	free(iv);
}

static void inval_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		log_warn("peer invalidation not delivered (%s)", what & BEV_EVENT_TIMEOUT ? "timeout" : "error");
	inval_done(bev, arg);
}

static int inval_target(const struct cache_key *k, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "%s?bucket=", INVALIDATE_PATH);
	int r = sigv4_uri_encode(k->bucket, strlen(k->bucket), false, out + n, cap - n);

	if (r == 0) {
		n = strlen(out);
		n += (size_t)snprintf(out + n, cap - n, "&key=");
		r = sigv4_uri_encode(k->key, strlen(k->key), false, out + n, cap - n);
	}
	if (r == 0 && k->version && k->version[0]) {
		n = strlen(out);
		n += (size_t)snprintf(out + n, cap - n, "&version=");
		r = sigv4_uri_encode(k->version, strlen(k->version), false, out + n, cap - n);
	}
	return r;
}

/* The invalidation's head, signed: "POST target ... x-lota-peer: ...\r\n\r\n". */
static int inval_head(struct lotad *d, const char *target, const char *owner, char *out, size_t cap)
{
	static const char fmt[] =
	    "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	char self[PEERAUTH_NODE_MAX], line[PEERAUTH_LINE_MAX];
	int n = snprintf(out, cap, fmt, target, owner);
	int r;

	if (n < 0 || (size_t)n + sizeof(line) > cap)
		return -ENOSPC;
	self_id(d, self, sizeof(self));
	r = peerauth_sign_head(d->peerauth, out, (size_t)n, self, time(NULL), line, sizeof(line));
	if (r < 0)
		return r;
	snprintf(out + n - 2, cap - (size_t)n + 2, "%s\r\n", line);
	return 0;
}

void peerfwd_invalidate(struct worker *w, const struct cache_key *k)
{
	struct lotad *d = w->d;
	struct peer_target t;
	struct timeval tv = {INVALIDATE_TIMEOUT_S, 0};
	size_t cap = 3 * (S3_KEY_MAX + S3_BUCKET_MAX + S3_VERSION_MAX) + 64;
	size_t hcap = cap + PEERAUTH_NODE_MAX + PEERAUTH_LINE_MAX + 128;
	char *target = malloc(cap), *head = malloc(hcap);
	struct inval *iv = NULL;

	if (!target || !head || !d->peers || peers_owner_of(d->peers, k->bucket, k->key, &t) != 1 ||
	    inval_target(k, target, cap) < 0 || inval_head(d, target, t.id, head, hcap) < 0)
		goto out;
	iv = calloc(1, sizeof(*iv));
	if (!iv || !(iv->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE)))
		goto out;
	bufferevent_setcb(iv->bev, inval_done, NULL, inval_event, iv);
	bufferevent_set_timeouts(iv->bev, &tv, &tv);
	evbuffer_add(bufferevent_get_output(iv->bev), head, strlen(head));
	if (bufferevent_socket_connect(iv->bev, (struct sockaddr *)&t.addr, (int)t.addrlen) < 0)
		goto out;
	bufferevent_enable(iv->bev, EV_READ | EV_WRITE);
	iv = NULL;
out:
	if (iv && iv->bev)
		bufferevent_free(iv->bev);
	free(iv);
	free(head);
	free(target);
}

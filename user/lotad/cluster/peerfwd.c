/* Reads whose owner is another node: forward the client's request to the owner's peer
 * port, signed over its whole head (one hop at most: a forwarded request is never
 * forwarded again), and hand the read back to this node when the owner cannot be reached
 * or stops answering. Also telling an owner to drop a key written through this node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cache.h"
#include "cachepath/request.h"
#include "cachepath/upkeep.h"
#include "cluster/cluster-int.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "peerauth.h"
#include "s3.h"
#include "sigv4.h"

#define INVALIDATE_TIMEOUT_S 5
#define FWD_CHECK_S 1

/* A read forwarded to its owner. */
struct fwd {
	struct cluster *cl;
	struct exchange *x;
	struct peer_target owner;
	struct event *timer; /* re-checks the owner while its answer is awaited */
	bool is_given_up;
};

/* This node's id for signing: as the membership knows it, else the peer-listen address. */
static void self_id(struct cluster *cl, char *buf, size_t len)
{
	peers_self(cl->peers, buf, len);
	if (!buf[0])
		snprintf(buf, len, "%s", cl->d->cfg.self[0] ? cl->d->cfg.self : cl->d->cfg.peer_listen);
}

/* Signs the forward of x's head into x's extra lines, under a nonce of its own. */
static int sign_forward(struct exchange *x, struct cluster *cl)
{
	struct peerauth_req req;
	const struct http_str *value;
	char self[PEERAUTH_NODE_MAX], line[PEERAUTH_LINE_MAX];
	int r;

	self_id(cl, self, sizeof(self));
	r = peerauth_req_of(&x->req, &req, &value);
	if (r == 0 && value)
		r = -EINVAL; /* a client's own x-lota-peer (the core refuses it): never forwarded */
	if (r == 0)
		r = peerauth_sign(cl->peerauth, &req, self, time(NULL), line, sizeof(line));
	if (r == 0)
		r = exchange_set_extra(x, line);
	return r;
}

/* The read would be served from a cache, and its key belongs to another node. A read
 * with a body could not fall back here once bytes went to the owner. */
static bool fwd_claims(struct exchange *x, void *arg)
{
	struct cluster *cl = arg;
	struct peer_target t;

	return !exchange_is_peer_port(x) && x->req.body == HTTP_BODY_NONE &&
	       cachepath_would_serve(cl->cp, x) &&
	       peers_owner_of(cl->peers, x->s3.bucket, x->s3.key, &t) == 1;
}

/* A frozen owner answers nothing; the probes soon mark it down, and then waiting for it
 * any longer is pointless: the read comes back to this node. */
static void fwd_check(evutil_socket_t fd, short what, void *arg)
{
	struct fwd *f = arg;
	struct peer_target now;

	if (f->x->resp_head_sent || f->is_given_up)
		return;
	if (peers_owner_of(f->cl->peers, f->x->s3.bucket, f->x->s3.key, &now) == 1 &&
	    strcmp(now.id, f->owner.id) == 0)
		return;
	log_warn("owner %s of %s/%s is down and has not answered: handling the read here",
		 f->owner.id, f->x->s3.bucket, f->x->s3.key);
	peers_count_fallback(f->cl->peers, &f->owner);
	f->is_given_up = true;
	exchange_wake(f->x);
}

static enum route_verdict fwd_start(struct exchange *x, void *arg)
{
	struct cluster *cl = arg;
	struct fwd *f = calloc(1, sizeof(*f));

	if (!f)
		return RT_REROUTE;
	f->cl = cl;
	f->x = x;
	x->rt_priv = f;
	if (peers_owner_of(cl->peers, x->s3.bucket, x->s3.key, &f->owner) != 1 ||
	    sign_forward(x, cl) < 0)
		return RT_REROUTE;
	exchange_upstream_peer(x, f->owner.id, (const struct sockaddr *)&f->owner.addr,
			       f->owner.addrlen);
	f->timer = event_new(exchange_base(x), -1, EV_PERSIST, fwd_check, f);
	if (f->timer)
		event_add(f->timer, &(struct timeval){FWD_CHECK_S, 0});
	return RT_UPSTREAM;
}

static enum route_verdict fwd_on_upstream_error(struct exchange *x, int err)
{
	struct fwd *f = x->rt_priv;

	log_warn("owner %s of %s/%s unreachable (%s): handling the read here", f->owner.id,
		 x->s3.bucket, x->s3.key, strerror(-err));
	peers_report_unreachable(f->cl->peers, &f->owner);
	return RT_REROUTE;
}

static enum route_verdict fwd_on_head(struct exchange *x, const struct http_msg *m,
				      const char *raw)
{
	struct fwd *f = x->rt_priv;

	if (m->status == 403 && http_find(m, "x-lota-peer-refused")) {
		log_warn("owner %s refused our peer signature; handling the read here", f->owner.id);
		return RT_REROUTE;
	}
	return RT_RELAY;
}

static enum route_verdict fwd_on_wake(struct exchange *x)
{
	struct fwd *f = x->rt_priv;

	return f->is_given_up && !x->resp_head_sent ? RT_REROUTE : RT_WAIT;
}

/* The resend on a fresh connection gets a nonce of its own: the owner may have seen the
 * first one. */
static int fwd_on_resend(struct exchange *x)
{
	struct fwd *f = x->rt_priv;

	return sign_forward(x, f->cl);
}

static void fwd_end(struct exchange *x)
{
	struct fwd *f = x->rt_priv;

	if (!f)
		return;
	if (f->timer)
		event_free(f->timer);
	if (x->resp_head_sent)
		peers_count_sent(f->cl->peers, &f->owner, x->bytes_out);
	free(f);
	x->rt_priv = NULL;
}

void peerfwd_route(struct cluster *cl, struct route *rt)
{
	*rt = (struct route){
		.name = "peer",
		.arg = cl,
		.claims = fwd_claims,
		.start = fwd_start,
		.on_head = fwd_on_head,
		.on_wake = fwd_on_wake,
		.on_upstream_error = fwd_on_upstream_error,
		.on_resend = fwd_on_resend,
		.end = fwd_end,
	};
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
static int inval_head(struct cluster *cl, const char *target, const char *owner, char *out,
		      size_t cap)
{
	static const char fmt[] =
	    "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	char self[PEERAUTH_NODE_MAX], line[PEERAUTH_LINE_MAX];
	int n = snprintf(out, cap, fmt, target, owner);
	int r;

	if (n < 0 || (size_t)n + sizeof(line) > cap)
		return -ENOSPC;
	self_id(cl, self, sizeof(self));
	r = peerauth_sign_head(cl->peerauth, out, (size_t)n, self, time(NULL), line, sizeof(line));
	if (r < 0)
		return r;
	snprintf(out + n - 2, cap - (size_t)n + 2, "%s\r\n", line);
	return 0;
}

void peerfwd_invalidate(void *cluster, struct worker *w, const struct cache_key *k)
{
	struct cluster *cl = cluster;
	struct peer_target t;
	struct timeval tv = {INVALIDATE_TIMEOUT_S, 0};
	size_t cap = 3 * (S3_KEY_MAX + S3_BUCKET_MAX + S3_VERSION_MAX) + 64;
	size_t hcap = cap + PEERAUTH_NODE_MAX + PEERAUTH_LINE_MAX + 128;
	char *target = malloc(cap), *head = malloc(hcap);
	struct inval *iv = NULL;

	if (!target || !head || peers_owner_of(cl->peers, k->bucket, k->key, &t) != 1 ||
	    inval_target(k, target, cap) < 0 || inval_head(cl, target, t.id, head, hcap) < 0)
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

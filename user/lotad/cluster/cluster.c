/* The cluster as a module of lotad, and the peer port's gate: every request on
 * peer-listen must carry a valid member signature (user/lib/peerauth.c); health probes
 * and invalidations are answered here, chunk requests by chunkserve.c, object reads go on
 * to the cache path, anything else is refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "admin/admin.h"
#include "cache.h"
#include "cachepath/remote.h"
#include "cachepath/request.h"
#include "cachepath/upkeep.h"
#include "cluster/chunkwire.h"
#include "cluster/cluster-int.h"
#include "exchange/resphead.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "s3.h"

/* POST CHUNKWIRE_INVALIDATE?bucket=&key=[&version=] from a node a write went through:
 * every chunk of the key held here goes. */
static enum route_verdict serve_invalidate(struct exchange *x, struct cluster *cl)
{
	struct cache_key k;
	char *buf;
	int n = chunkwire_key(&x->req.target, &k, &buf);

	if (n < 0) {
		free(buf);
		return exchange_reply(x, 400, NULL, "bucket and key are required\n", true);
	}
	n = cachepath_invalidate(cl->cp, &k);
	free(buf);
	return exchange_reply(x, 200, NULL, n > 0 ? "dropped\n" : "absent\n", false);
}

static const char *refusal(int r)
{
	switch (r) {
	case -ENOENT: return "no signature";
	case -EBADMSG: return "malformed signature";
	case -ETIME: return "signature outside the time window (stale, or clocks apart)";
	case -EPROTONOSUPPORT: return "signature of another version (a node runs an older lotad?)";
	case -EALREADY: return "replayed signature";
	case -ENOBUFS: return "replay cache full";
	default: return "bad signature";
	}
}

/* A full replay cache refuses every peer request: say so once a second, not each time. */
static void log_refusal(struct cluster *cl, struct exchange *x, int r)
{
	time_t now = time(NULL);

	if (r != -ENOBUFS) {
		log_warn("%s: peer request refused: %s", exchange_client_addr(x), refusal(r));
		return;
	}
	if (__atomic_exchange_n(&cl->last_full_log, now, __ATOMIC_RELAXED) == now)
		return;
	log_warn("%s: peer request refused: replay cache full (%u nonces live, %llu refused): "
		 "senders serve their reads themselves",
		 exchange_client_addr(x), PEERAUTH_REPLAY_MAX,
		 (unsigned long long)metric_get(M_peer_replay_full));
}

static enum route_verdict refuse(struct cluster *cl, struct exchange *x, int r)
{
	metric_add(M_peer_refused, 1);
	if (r == -EALREADY)
		metric_add(M_peer_replayed, 1);
	if (r == -ENOBUFS)
		metric_add(M_peer_replay_full, 1);
	log_refusal(cl, x, r);
	exchange_label(x, "from-peer");
	return exchange_reply(x, 403, "x-lota-peer-refused: 1\r\n",
			      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied"
			      "</Code><Message>peer request refused</Message></Error>\n",
			      true);
}

static bool gate_claims(struct exchange *x, void *arg)
{
	return exchange_is_peer_port(x);
}

/* Is x's target path (before its query) path, and its method one of the two given? */
static bool is_lota(const struct exchange *x, const char *path, const char *m1, const char *m2)
{
	size_t n = strlen(path);

	return x->req.target.n > n && memcmp(x->req.target.p, path, n) == 0 &&
	       x->req.target.p[n] == '?' &&
	       (http_str_eq(&x->req.method, m1) || http_str_eq(&x->req.method, m2));
}

static enum route_verdict gate_start(struct exchange *x, void *arg)
{
	struct cluster *cl = arg;
	struct peerauth_req req;
	const struct http_str *value;
	char node[PEERAUTH_NODE_MAX];
	int r;

	/* two x-lota-peer lines are as malformed as one bad one */
	r = peerauth_req_of(&x->req, &req, &value);
	if (r == 0)
		r = peerauth_verify(cl->peerauth, &req, value, time(NULL), node, sizeof(node));
	if (r < 0)
		return refuse(cl, x, r);
	exchange_label(x, "from-peer");
	if (http_str_eq(&x->req.target, PEERS_PROBE_PATH))
		return exchange_reply(x, 200, NULL, "ok\n", false);
	if (is_lota(x, CHUNKWIRE_INVALIDATE, "POST", "POST"))
		return serve_invalidate(x, cl);
	if (is_lota(x, CHUNKWIRE_CHUNK, "GET", "HEAD"))
		return chunkserve_chunk(x, cl);
	if (x->s3.op != S3_OBJECT_READ) {
		exchange_fail(x, 403, "AccessDenied", "the peer port serves object reads only");
		return RT_FAIL;
	}
	peers_count_served(cl->peers);
	return RT_REROUTE; /* the cache path reads it, as for a client of this node */
}

static void render_metrics(void *arg, struct evbuffer *out)
{
	struct cluster *cl = arg;

	peers_render_metrics(cl->peers, out);
}

int cluster_new(struct lotad *d, struct cluster **out, char *err, size_t errlen)
{
	struct peers_opts o = {d->cfg.peers, d->cfg.self, d->cfg.peer_listen, NULL};
	struct cluster *cl;
	int r;

	*out = NULL;
	if (!d->cfg.peers[0])
		return 0;
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		snprintf(err, errlen, "peers: out of memory");
		return -ENOMEM;
	}
	cl->d = d;
	r = peerauth_open(d->cfg.cluster_secret, &cl->peerauth, err, errlen);
	if (r == 0) {
		o.auth = cl->peerauth;
		r = peers_new(&o, &cl->peers, err, errlen);
	}
	if (r < 0) {
		cluster_free(cl);
		return r;
	}
	d->has_peer_port = true;
	*out = cl;
	return 0;
}

int cluster_register(struct cluster *cl, struct cachepath *cp)
{
	struct admin_section s = {.name = "peers", .metrics = render_metrics, .arg = cl};

	cl->cp = cp;
	cl->gate = (struct route){.name = "from-peer", .arg = cl, .claims = gate_claims,
				  .start = gate_start};
	if (exchange_route_add(cl->d, &cl->gate) < 0 ||
	    admin_route(cl->d, "/admin/peers", peers_admin, cl->peers) < 0 ||
	    admin_section_add(cl->d, &s) < 0)
		return -ENOSPC;
	cachepath_on_invalidate(cp, peerinval_send, cl);
	remote_register(cp, &chunkget_ops, cl);
	return peers_start(cl->peers, cl->d->control_base);
}

void cluster_free(struct cluster *cl)
{
	if (!cl)
		return;
	peers_free(cl->peers);
	peerauth_free(cl->peerauth);
	free(cl);
}

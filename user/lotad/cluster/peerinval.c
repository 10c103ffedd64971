/* Telling the other nodes to drop a key written through this one: a key's chunks may be
 * on every node, so every live peer gets a signed POST CHUNKWIRE_INVALIDATE, fire and
 * forget (a node down now misses it; what it holds is still checked against the origin's
 * ETag before any byte of it is served). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cache.h"
#include "cluster/chunkwire.h"
#include "cluster/cluster-int.h"
#include "log.h"
#include "lotad.h"

#define INVALIDATE_TIMEOUT_S 5

/* One invalidation in flight. */
struct inval {
	struct bufferevent *bev;
	char id[PEERAUTH_NODE_MAX];
};

static void inval_free(struct inval *iv)
{
	bufferevent_free(iv->bev);
	free(iv);
}

static void inval_done(struct bufferevent *bev, void *arg)
{
	inval_free(arg);
}

static void inval_event(struct bufferevent *bev, short what, void *arg)
{
	struct inval *iv = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		log_warn("peer invalidation to %s not delivered (%s)", iv->id,
			 what & BEV_EVENT_TIMEOUT ? "timeout" : "error");
	inval_free(iv);
}

static void send_one(struct cluster *cl, struct worker *w, const struct peer_target *t,
		     const struct cache_key *k)
{
	struct timeval tv = {INVALIDATE_TIMEOUT_S, 0};
	struct inval *iv = calloc(1, sizeof(*iv));

	if (!iv || !(iv->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE))) {
		free(iv);
		return;
	}
	snprintf(iv->id, sizeof(iv->id), "%s", t->id);
	bufferevent_setcb(iv->bev, inval_done, NULL, inval_event, iv);
	bufferevent_set_timeouts(iv->bev, &tv, &tv);
	if (chunkwire_request(cl, "POST", CHUNKWIRE_INVALIDATE, t, k, NULL, NULL,
			      bufferevent_get_output(iv->bev)) < 0 ||
	    bufferevent_socket_connect(iv->bev, (struct sockaddr *)&t->addr, (int)t->addrlen) < 0) {
		inval_free(iv);
		return;
	}
	bufferevent_enable(iv->bev, EV_READ | EV_WRITE);
	peers_count(cl->peers, PEERS_INVALIDATIONS_SENT, 1);
}

void peerinval_send(void *cluster, struct worker *w, const struct cache_key *k)
{
	struct cluster *cl = cluster;
	struct peer_target *t = malloc(PEERS_MAX * sizeof(*t));
	size_t n = t ? peers_live(cl->peers, t, PEERS_MAX) : 0;

	for (size_t i = 0; i < n; i++)
		send_one(cl, w, &t[i], k);
	free(t);
}

/* Notices to other nodes, fire and forget: a prefetch (HEAD CHUNKWIRE_CHUNK), and the drop
 * of a key written through this one: a key's chunks may be on every node, so every live
 * peer gets a signed POST CHUNKWIRE_INVALIDATE (a node down now misses it; what it holds is
 * still checked against the origin's ETag before any byte of it is served). */
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

#define NOTE_TIMEOUT_S 5

/* One notice in flight. */
struct note {
	struct bufferevent *bev;
	char id[PEERAUTH_NODE_MAX];
	char what[32]; /* its path, for the log */
};

static void note_free(struct note *nt)
{
	bufferevent_free(nt->bev);
	free(nt);
}

static void note_done(struct bufferevent *bev, void *arg)
{
	note_free(arg);
}

static void note_event(struct bufferevent *bev, short what, void *arg)
{
	struct note *nt = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		log_warn("peer notice %s to %s not delivered (%s)", nt->what, nt->id,
			 what & BEV_EVENT_TIMEOUT ? "timeout" : "error");
	note_free(nt);
}

int peernote_head(struct cluster *cl, const char *method, const char *path,
		  const struct peer_target *t, const struct cache_key *k,
		  const struct cache_meta *m, const struct chunkwire_span *span,
		  bool is_keep_alive, struct evbuffer *out)
{
	char self[PEERAUTH_NODE_MAX];
	struct chunkwire_from from = {cl->peerauth, self, is_keep_alive};

	peers_self(cl->peers, self, sizeof(self));
	if (!self[0])
		snprintf(self, sizeof(self), "%s",
			 cl->d->cfg.self[0] ? cl->d->cfg.self : cl->d->cfg.peer_listen);
	return chunkwire_request(&from, method, path, t->id, k, m, span, out);
}

int peernote_send(struct cluster *cl, struct event_base *base, const struct peer_target *t,
		  const char *method, const char *path, const struct cache_key *k,
		  const struct cache_meta *m, const struct chunkwire_span *span)
{
	struct timeval tv = {NOTE_TIMEOUT_S, 0};
	struct note *nt = calloc(1, sizeof(*nt));
	int r;

	if (!nt || !(nt->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE))) {
		free(nt);
		return -ENOMEM;
	}
	snprintf(nt->id, sizeof(nt->id), "%s", t->id);
	snprintf(nt->what, sizeof(nt->what), "%s", path);
	bufferevent_setcb(nt->bev, note_done, NULL, note_event, nt);
	bufferevent_set_timeouts(nt->bev, &tv, &tv);
	r = peernote_head(cl, method, path, t, k, m, span, false, bufferevent_get_output(nt->bev));
	if (r == 0 &&
	    bufferevent_socket_connect(nt->bev, (struct sockaddr *)&t->addr, (int)t->addrlen) < 0)
		r = -ECONNREFUSED;
	if (r == 0)
		r = bufferevent_enable(nt->bev, EV_READ | EV_WRITE) < 0 ? -ENOMEM : 0;
	if (r < 0)
		note_free(nt);
	return r;
}

void peerinval_send(void *cluster, struct worker *w, const struct cache_key *k)
{
	struct cluster *cl = cluster;
	struct peer_target *t = malloc(PEERS_MAX * sizeof(*t));
	size_t n = t ? peers_live(cl->peers, t, PEERS_MAX) : 0;

	for (size_t i = 0; i < n; i++)
		if (peernote_send(cl, w->base, &t[i], "POST", CHUNKWIRE_INVALIDATE, k, NULL,
				  NULL) == 0)
			peers_count(cl->peers, PEERS_INVALIDATIONS_SENT, 1);
	free(t);
}

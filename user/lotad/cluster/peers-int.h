/* Internals shared by peers.c (membership, placement, reports) and peerprobe.c (the
 * control thread's timers, DNS and health probes). Not for other modules. */
#ifndef LOTA_PEERS_INT_H
#define LOTA_PEERS_INT_H

#include <pthread.h>
#include <time.h>

#include "hrw.h"
#include "cluster/peers.h"

#define PEERS_SLOTS (2 * PEERS_MAX)
/* bucket (63) '/' key (1024) NUL version (1024) NUL index (20) */
#define PEERS_PLACEMENT_KEY_MAX 2200

struct bufferevent;
struct evdns_base;
struct event;

/* Traffic counters by peer id. Slots outlive members (a peer that returns finds its
 * history) and are never freed while lotad runs, so a worker holding an old view
 * counts into a valid slot. */
struct peer_slot {
	char id[PEERAUTH_NODE_MAX];
	uint64_t sent, sent_bytes, fallbacks;
	int failed; /* set by workers, consumed by the control thread */
};

/* A member, owned by the control thread. */
struct peer {
	struct peers *p;
	char id[PEERAUTH_NODE_MAX];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t id_hash;
	bool is_self;
	int slot;
	struct peer_health h;
	struct bufferevent *probe; /* in flight, or NULL */
	uint64_t probes_ok, probes_failed;
};

/* What workers read: immutable once published, freed by its last reader. */
struct peers_view {
	unsigned refs;
	uint64_t generation;
	size_t n;
	int self; /* index in nodes[], or -1 when this node is not a member */
	char self_id[PEERAUTH_NODE_MAX];
	struct hrw_node nodes[PEERS_MAX];
	struct peer_target targets[PEERS_MAX];
	double share[PEERS_MAX];
};

struct peers {
	struct peers_spec spec;
	char self_cfg[PEERAUTH_NODE_MAX]; /* canonical `self`, or "" to find it */
	uint16_t listen_port;		  /* of peer-listen, to find self among members */
	struct peerauth *auth;

	/* control thread only */
	struct peer *m[PEERS_MAX];
	size_t n;
	struct event_base *base;
	struct evdns_base *dns;
	struct event *tick, *wake;
	time_t last_resolve;

	/* shared */
	pthread_mutex_t lock; /* guards view (the pointer) and slots[].id assignment */
	struct peers_view *view;
	struct peer_slot slots[PEERS_SLOTS];
	uint64_t requests_sent, requests_served, fallbacks, membership_changes;
	uint64_t counters[PEERS_COUNTERS];
};

/* Seconds on the monotonic clock: health and resolution timing. */
static inline time_t peers_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

int peers_slot_for(struct peers *p, const char *id);
void peers_apply_reports(struct peers *p, time_t now);

#endif

/* peers: the cluster's membership as this node sees it. The control thread owns the
 * member list (a static `peers` list, or `dns:NAME:PORT` re-resolved every few seconds),
 * probes each peer's peer port every second, and publishes an immutable view that
 * workers read without waiting on it: peers_chunk_owner() tells whether a chunk belongs
 * to this node or to which peer to ask for it. */
#ifndef LOTA_PEERS_H
#define LOTA_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "peerauth.h"

#define PEERS_MAX 64	    /* members; a DNS answer beyond this is cut and logged */
#define PEERS_RESOLVE_S 5   /* dns: re-resolution period */
#define PEERS_PROBE_MS 1000 /* one probe per peer per period */
#define PEERS_PROBE_TIMEOUT_MS 900
#define PEERS_PROBE_PATH "/healthz"
#define PEERS_SHARE_SAMPLES 4096 /* chunk ids hashed to estimate each member's share */

/* Health: up after PEER_UP_AFTER successes in a row, down after PEER_DOWN_AFTER failures
 * in a row (or at once when a forward to it failed). Every fall adds PEER_FLAP_PENALTY,
 * which halves about every PEER_FLAP_HALF_LIFE_S; above PEER_FLAP_SUPPRESS the peer stays
 * down, however well it answers, until the penalty is back under PEER_FLAP_REUSE. Only
 * the way up is damped: a peer that fails is never kept up. */
#define PEER_UP_AFTER 2
#define PEER_DOWN_AFTER 3
#define PEER_FLAP_PENALTY 1000
#define PEER_FLAP_SUPPRESS 2500
#define PEER_FLAP_REUSE 750
#define PEER_FLAP_MAX 4000 /* so that a long flapping spell ends about 70 s after it stops */
#define PEER_FLAP_HALF_LIFE_S 30

struct peer_health {
	bool is_up;
	bool is_suppressed;
	unsigned ok_run, fail_run;
	unsigned penalty; /* as of penalty_at */
	time_t penalty_at;
	time_t since; /* last change of is_up */
	uint64_t flaps;
};

/* A probe result at time now; true when is_up changed. */
bool peer_health_observe(struct peer_health *h, bool ok, time_t now);
/* A request to the peer failed before its response started: down now; true if it was up. */
bool peer_health_fail(struct peer_health *h, time_t now);
/* The penalty decayed to now. */
unsigned peer_health_penalty(const struct peer_health *h, time_t now);

/* The `peers` key: "" (no cluster), "HOST:PORT,..." or "dns:NAME:PORT". */
struct peers_spec {
	bool is_dns;
	char dns_name[256];
	char dns_port[8];
	size_t n;
	char entries[PEERS_MAX][300]; /* "HOST:PORT" as written, trimmed */
};

int peers_parse_spec(const char *s, struct peers_spec *out, char *err, size_t errlen);

/* Where to send a request for a chunk whose owner is a peer. */
struct peer_target {
	char id[PEERAUTH_NODE_MAX]; /* canonical "IP:PORT", the name HRW hashes */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int slot; /* for the traffic counters */
};

struct peers_opts {
	const char *peers;	 /* the `peers` key */
	const char *self;	 /* the `self` key, may be "" */
	const char *peer_listen; /* the `peer-listen` key, may be "" */
	struct peerauth *auth;	 /* signs probes; NULL: unsigned (tests) */
};

struct peers;
struct event_base;
struct evbuffer;

/* Parses the options and, for a static list, resolves its names once (blocking, at
 * startup). *out is NULL, with 0 returned, when `peers` is empty: no cluster. */
int peers_new(const struct peers_opts *o, struct peers **out, char *err, size_t errlen);
/* Starts DNS re-resolution, probes and the secret's reload on the control base. */
int peers_start(struct peers *p, struct event_base *base);
void peers_free(struct peers *p);

/* Workers (any thread). 1: the owner is the peer in *out; 0: this node owns the key, or
 * no member is up: handle it here. A NULL p (no cluster) answers 0. */
int peers_owner(struct peers *p, const void *key, size_t klen, struct peer_target *out);
/* The owner of chunk index of an object version: HRW over (bucket, key, versionId, index),
 * the placement key "bucket/key\0version\0index" (index in decimal). The ETag is not in
 * it, so that a key's next version lands where its last one was. */
int peers_chunk_owner(struct peers *p, const char *bucket, const char *key, const char *version,
		      uint64_t index, struct peer_target *out);
/* Is a member other than this node up (do chunks spread now)? */
bool peers_has_live_peer(struct peers *p);
/* Is member id up in the current view? */
bool peers_is_up(struct peers *p, const char *id);
/* Every member up but this node, into out[0..max): how many. */
size_t peers_live(struct peers *p, struct peer_target *out, size_t max);
/* This node's id as its peers know it ("" until known), for signing requests. */
void peers_self(struct peers *p, char *buf, size_t len);

/* Traffic. A peer request is one of lota's own requests to a peer port for a chunk's
 * bytes (prefetches, probes and invalidations have counters of their own, or none). */
void peers_count_sent(struct peers *p, const struct peer_target *t, uint64_t bytes);
void peers_count_served(struct peers *p);
/* A peer request to t failed before its answer started (connect, reset, timeout) and is
 * handled another way: counts a fallback and marks t down until probes bring it back. */
void peers_report_unreachable(struct peers *p, const struct peer_target *t);
/* A peer request to t was answered otherwise than asked (refused, cannot serve) or t was
 * already down: counted as a fallback only. */
void peers_count_fallback(struct peers *p, const struct peer_target *t);

enum peers_counter {
	PEERS_CHUNKS_SENT,	  /* chunk requests sent */
	PEERS_CHUNKS_SENT_KEPT,	  /* ... of them on a kept connection (originpool.h) */
	PEERS_CHUNKS_SERVED,	  /* chunk requests served for other nodes */
	PEERS_CHUNK_FAILOVERS,	  /* chunks whose owner failed mid-transfer */
	PEERS_CHUNK_BYTES,	  /* chunk bytes received from owners */
	PEERS_CHUNK_BYTES_SERVED, /* chunk bytes answered to other nodes */
	PEERS_PREFETCHES_SENT,	  /* read-ahead prefetches sent */
	PEERS_INVALIDATIONS_SENT,
	PEERS_COUNTERS,
};
void peers_count(struct peers *p, enum peers_counter c, uint64_t n);

/* Control thread: a probe result, or a change in the member list (for tests and DNS). */
void peers_observe(struct peers *p, const char *id, bool ok, time_t now);
int peers_set_members(struct peers *p, const struct sockaddr_storage *addrs, size_t n, time_t now);
/* Publishes the current view to workers if anything that placement uses changed. */
void peers_publish(struct peers *p);

void peers_render_metrics(struct peers *p, struct evbuffer *out);
void peers_render_json(struct peers *p, struct evbuffer *out);
/* The /admin/peers handler (admin_route("/admin/peers", peers_admin, p)): JSON for
 * `lotactl peers`. */
struct evhttp_request;
void peers_admin(struct evhttp_request *req, void *arg);

#endif

/* The daemon's shared state: configuration, the origin, the workers and their event
 * bases, and the routes modules registered with the exchange core. One instance per
 * process. It names no module: each keeps its own state and reaches this through the
 * exchange it handles or the pointer it was made with. */
#ifndef LOTA_LOTAD_H
#define LOTA_LOTAD_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "config.h"

struct event_base;
struct origin;
struct origins;
struct evconnlistener;
struct route;
struct admin;

#define LOTAD_ROUTES_MAX 16

struct worker {
	struct lotad *d;
	int id;
	pthread_t thread;
	struct event_base *base;
	struct evconnlistener *listener;
	struct evconnlistener *peer_listener; /* peer-listen: signed requests from peers */
	/* Connections open on this worker, and handed to it but not taken yet (atomics):
	 * an accepted connection goes to the worker with the fewest (server.c). */
	unsigned long nconns, nhanded;
	int handoff[2];		  /* a pipe of accepted connections handed to this worker */
	struct event *handoff_ev; /* its read end */
	/* Idle origin connections left by client connections that closed, for the next
	 * client's request: a new client then skips the TCP (and TLS) handshake. */
	struct originpool *pool;
	struct event *accept_resume; /* re-enables the listeners after an accept() failure */
};

struct lotad {
	struct config cfg;
	struct origin *origin; /* where requests go (exchange/origin.h) */
	struct origins *origins; /* ... per bucket, with region-origins or bucket-origins */
	struct worker *workers;
	int nworkers;
	struct event_base *control_base;
	struct admin *admin;
	time_t started;
	bool is_splice;	   /* relay big bodies from plain upstreams by splice(2) */
	bool is_draining;  /* SIGTERM: no new connections (lotad_is_draining: any thread) */
	bool has_peer_port; /* a cluster member: listen on peer-listen too */
	const struct route *routes[LOTAD_ROUTES_MAX];
	unsigned nroutes;
};

static inline bool lotad_is_draining(const struct lotad *d)
{
	return __atomic_load_n(&d->is_draining, __ATOMIC_RELAXED);
}

static inline void lotad_set_draining(struct lotad *d)
{
	__atomic_store_n(&d->is_draining, true, __ATOMIC_RELAXED);
}

/* server.c: worker threads with SO_REUSEPORT listeners. */
int server_start(struct lotad *d);
void server_stop(struct lotad *d);
/* Stops accepting (client and peer ports); requests in progress go on. */
void server_stop_accepting(struct lotad *d);

#endif

/* The daemon's shared state: configuration, origin, workers, and the parts every worker
 * reaches (cache, steering). One instance per process. */
#ifndef LOTA_LOTAD_H
#define LOTA_LOTAD_H

#include <pthread.h>
#include <stdbool.h>

#include "config.h"
#include "origin.h"

struct event_base;
struct evconnlistener;
struct cache;
struct bgfill_pool;
struct peers;
struct peerauth;

struct worker {
	struct lotad *d;
	int id;
	pthread_t thread;
	struct event_base *base;
	struct evconnlistener *listener;
	struct evconnlistener *peer_listener; /* peer-listen: signed requests from peers */
};

struct lotad {
	struct config cfg;
	struct origin origin;
	struct worker *workers;
	int nworkers;
	struct event_base *control_base;
	struct cache *cache; /* NULL: relay only */
	struct bgfill_pool *bgfill; /* NULL: no service credentials, no background fills */
	struct peers *peers;        /* NULL: a single node */
	bool is_splice;             /* relay big bodies from plain upstreams by splice(2) */
	volatile bool is_draining;  /* SIGTERM: no new connections, finishing the rest */
	struct peerauth *peerauth;
};

/* control.c: the control thread's periodic work; wake it to evict now. */
void control_wake_evict(struct lotad *d);
void control_pressure(void *arg);
int control_start(struct lotad *d);

/* server.c: worker threads with SO_REUSEPORT listeners. */
int server_start(struct lotad *d);
int listen_socket(const char *addr, bool reuseport, char *err, size_t errlen);
void server_stop(struct lotad *d);
/* Stops accepting (client and peer ports); requests in progress go on. */
void server_stop_accepting(struct lotad *d);

#endif

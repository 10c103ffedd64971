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

struct worker {
	struct lotad *d;
	int id;
	pthread_t thread;
	struct event_base *base;
	struct evconnlistener *listener;
};

struct lotad {
	struct config cfg;
	struct origin origin;
	struct worker *workers;
	int nworkers;
	struct event_base *control_base;
};

/* server.c: worker threads with SO_REUSEPORT listeners. */
int server_start(struct lotad *d);
int listen_socket(const char *addr, char *err, size_t errlen);
void server_stop(struct lotad *d);

#endif

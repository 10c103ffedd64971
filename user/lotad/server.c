/* Worker threads: each has its own event base and its own SO_REUSEPORT listener on the
 * listen address, so the kernel spreads connections and no lock sits on the accept path. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "exchange/exchange.h"
#include "netaddr.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"


static void accept_any(struct worker *w, evutil_socket_t fd, struct sockaddr *sa, bool is_peer_port);

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	accept_any(arg, fd, sa, false);
}

static void accept_peer_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			   int len, void *arg)
{
	accept_any(arg, fd, sa, true);
}

static void accept_any(struct worker *w, evutil_socket_t fd, struct sockaddr *sa, bool is_peer_port)
{
	char peer[64];
	int one = 1;

	metric_add(M_connections_accepted, 1);
	if (metric_get(M_connections_open) >= w->d->cfg.max_connections) {
		metric_add(M_connections_refused, 1);
		log_warn("max-connections (%llu) reached: refusing %s",
			 (unsigned long long)w->d->cfg.max_connections, addr_str(sa, peer, sizeof(peer)));
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(fd);
	conn_accept(w, fd, addr_str(sa, peer, sizeof(peer)), is_peer_port);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

static int worker_init(struct lotad *d, struct worker *w, int id)
{
	char err[256];
	int fd;

	w->d = d;
	w->id = id;
	w->base = event_base_new();
	if (!w->base)
		return -ENOMEM;
	fd = netaddr_listen(d->cfg.listen, true, err, sizeof(err));
	if (fd < 0) {
		log_error("listen: %s", err);
		return fd;
	}
	w->listener = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!w->listener) {
		close(fd);
		return -ENOMEM;
	}
	if (!d->has_peer_port || !d->cfg.peer_listen[0])
		return 0;
	fd = netaddr_listen(d->cfg.peer_listen, true, err, sizeof(err));
	if (fd < 0) {
		log_error("peer-listen: %s", err);
		return fd;
	}
	w->peer_listener = evconnlistener_new(w->base, accept_peer_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!w->peer_listener) {
		close(fd);
		return -ENOMEM;
	}
	return 0;
}

int server_start(struct lotad *d)
{
	int n = (int)d->cfg.workers, r, probe;
	char err[256];

	if (n <= 0)
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 1;
	/* Refuse an address another process listens on, SO_REUSEPORT or not. */
	probe = netaddr_listen(d->cfg.listen, false, err, sizeof(err));
	if (probe < 0) {
		log_error("listen: %s", err);
		return probe;
	}
	close(probe);
	d->workers = calloc((size_t)n, sizeof(*d->workers));
	if (!d->workers)
		return -ENOMEM;
	d->nworkers = n;
	for (int i = 0; i < n; i++) {
		r = worker_init(d, &d->workers[i], i);
		if (r < 0)
			return r;
	}
	for (int i = 0; i < n; i++) {
		r = pthread_create(&d->workers[i].thread, NULL, worker_main, &d->workers[i]);
		if (r != 0)
			return -r;
	}
	return 0;
}

/* Runs on each worker's own thread, where its listeners live. */
static void close_listeners(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if (w->listener)
		evconnlistener_free(w->listener);
	w->listener = NULL;
	if (w->peer_listener)
		evconnlistener_free(w->peer_listener);
	w->peer_listener = NULL;
}

void server_stop_accepting(struct lotad *d)
{
	for (int i = 0; i < d->nworkers; i++)
		event_base_once(d->workers[i].base, -1, EV_TIMEOUT, close_listeners, &d->workers[i], NULL);
}

void server_stop(struct lotad *d)
{
	for (int i = 0; i < d->nworkers; i++)
		if (d->workers[i].base)
			event_base_loopexit(d->workers[i].base, NULL);
	for (int i = 0; i < d->nworkers; i++)
		if (d->workers[i].thread)
			pthread_join(d->workers[i].thread, NULL);
}

/* Worker threads: each has its own event base and its own SO_REUSEPORT listener on the
 * listen address, so no lock sits on the accept path. The kernel spreads connections by
 * a hash of their addresses, which leaves one worker with most of a few busy connections
 * (six of eight is common) while another core idles: an accepted connection goes to the
 * worker with the fewest open, handed over a pipe when that is not the one that accepted. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "exchange/exchange.h"
#include "exchange/originpool.h"
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

#define HANDOFF_BATCH 16 /* records read from the pipe at once */

/* What goes down a worker's hand-off pipe: small enough for one atomic write. */
struct handoff {
	int fd;
	bool is_peer_port;
	char peer[64];
};

static unsigned long load_of(struct worker *w)
{
	return __atomic_load_n(&w->nconns, __ATOMIC_RELAXED) +
	       __atomic_load_n(&w->nhanded, __ATOMIC_RELAXED);
}

/* The worker with the fewest connections; w itself unless another has fewer. */
static struct worker *least_loaded(struct worker *w)
{
	struct lotad *d = w->d;
	struct worker *best = w;
	unsigned long least = load_of(w);

	for (int i = 0; i < d->nworkers; i++) {
		unsigned long n = load_of(&d->workers[i]);

		if (n < least && d->workers[i].handoff_ev) {
			best = &d->workers[i];
			least = n;
		}
	}
	return best;
}

static void handoff_cb(evutil_socket_t pfd, short what, void *arg)
{
	struct worker *w = arg;
	struct handoff h[HANDOFF_BATCH];
	ssize_t n;

	while ((n = read(pfd, h, sizeof(h))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(h[0]); i++) {
			__atomic_sub_fetch(&w->nhanded, 1, __ATOMIC_RELAXED);
			h[i].peer[sizeof(h[i].peer) - 1] = '\0';
			conn_accept(w, h[i].fd, h[i].peer, h[i].is_peer_port);
		}
	}
}

/* Hands fd to worker t: false if its pipe is full (then w keeps it). */
static bool hand_to(struct worker *t, int fd, const char *peer, bool is_peer_port)
{
	struct handoff h = {.fd = fd, .is_peer_port = is_peer_port};

	snprintf(h.peer, sizeof(h.peer), "%s", peer);
	__atomic_add_fetch(&t->nhanded, 1, __ATOMIC_RELAXED);
	if (write(t->handoff[1], &h, sizeof(h)) == (ssize_t)sizeof(h))
		return true;
	__atomic_sub_fetch(&t->nhanded, 1, __ATOMIC_RELAXED);
	return false;
}

static void accept_any(struct worker *w, evutil_socket_t fd, struct sockaddr *sa, bool is_peer_port)
{
	char peer[64];
	int one = 1;
	struct worker *t;

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
	addr_str(sa, peer, sizeof(peer));
	t = least_loaded(w);
	if (t != w && hand_to(t, fd, peer, is_peer_port)) {
		metric_add(M_connections_handed_off, 1);
		return;
	}
	conn_accept(w, fd, peer, is_peer_port);
}

#define ACCEPT_PAUSE_MS 100   /* listeners rest this long after accept() fails */
#define ACCEPT_LOG_EVERY_S 10 /* and say so at most this often */

static void set_listening(struct worker *w, bool on)
{
	if (w->listener)
		(on ? evconnlistener_enable : evconnlistener_disable)(w->listener);
	if (w->peer_listener)
		(on ? evconnlistener_enable : evconnlistener_disable)(w->peer_listener);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	set_listening(arg, true);
}

/* accept() failed (out of descriptors, most often): the pending connection stays in the
 * backlog, so the listener would fire again at once, forever. The listeners rest a
 * moment instead, and the failure is said once in a while, not once per try. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	static uint64_t last_log_s; /* shared by the workers: a rough bound is enough */
	struct worker *w = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval pause = {0, ACCEPT_PAUSE_MS * 1000};
	uint64_t now = (uint64_t)time(NULL), last = __atomic_load_n(&last_log_s, __ATOMIC_RELAXED);

	metric_add(M_accept_errors, 1);
	if (now >= last + ACCEPT_LOG_EVERY_S &&
	    __atomic_compare_exchange_n(&last_log_s, &last, now, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED))
		log_warn("accept: %s (%llu open connections, max-connections %llu): new clients "
			 "wait in the backlog; lota_accept_errors counts the failures",
			 strerror(err), (unsigned long long)metric_get(M_connections_open),
			 (unsigned long long)w->d->cfg.max_connections);
	if (!w->accept_resume)
		return;
	set_listening(w, false);
	event_add(w->accept_resume, &pause);
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
	w->pool = originpool_new(w->base); /* NULL: a new origin connection each time */
	/* Without a hand-off pipe the worker takes only what it accepts itself. */
	w->handoff[0] = w->handoff[1] = -1;
	if (pipe2(w->handoff, O_NONBLOCK | O_CLOEXEC) == 0 &&
	    !(w->handoff_ev =
		  event_new(w->base, w->handoff[0], EV_READ | EV_PERSIST, handoff_cb, w)))
		log_warn("worker %d: no hand-off of connections: out of memory", id);
	if (w->handoff_ev)
		event_add(w->handoff_ev, NULL);
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
	w->accept_resume = evtimer_new(w->base, accept_resume_cb, w);
	evconnlistener_set_error_cb(w->listener, accept_error_cb);
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
	evconnlistener_set_error_cb(w->peer_listener, accept_error_cb);
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

/* After its thread ended: connections handed to w that it never took are closed (their
 * clients see the close at once, not at our exit), and the pipe goes. */
static void close_handoff(struct worker *w)
{
	struct handoff h[HANDOFF_BATCH];
	ssize_t n;

	if (w->handoff_ev)
		event_free(w->handoff_ev);
	w->handoff_ev = NULL;
	if (w->handoff[0] >= 0)
		while ((n = read(w->handoff[0], h, sizeof(h))) > 0)
			for (size_t i = 0; i < (size_t)n / sizeof(h[0]); i++)
				close(h[i].fd);
	for (int i = 0; i < 2; i++)
		if (w->handoff[i] >= 0)
			close(w->handoff[i]);
	w->handoff[0] = w->handoff[1] = -1;
}

void server_stop(struct lotad *d)
{
	for (int i = 0; i < d->nworkers; i++)
		if (d->workers[i].base)
			event_base_loopexit(d->workers[i].base, NULL);
	for (int i = 0; i < d->nworkers; i++)
		if (d->workers[i].thread)
			pthread_join(d->workers[i].thread, NULL);
	for (int i = 0; i < d->nworkers; i++)
		if (d->workers[i].base) /* worker_init got far enough to set the pipe */
			close_handoff(&d->workers[i]);
}

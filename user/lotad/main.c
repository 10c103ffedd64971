/* lotad: parse the configuration, start the workers, run the control thread (admin
 * endpoint, signals, periodic tasks) until SIGTERM or SIGINT. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "admin/admin.h"
#include "cachepath/bgfill.h"
#include "cache.h"
#include "committer.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "peerauth.h"
#include "cluster/peers.h"
#include "steering.h"

static int config_check(struct lotad *d, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	enum log_level lv;

	if (log_level_parse(d->cfg.log_level, &lv) < 0) {
		snprintf(err, errlen, "log-level: '%s' is not error, warn, info or debug", d->cfg.log_level);
		return -EINVAL;
	}
	log_set_level(lv);
	/* Bounded staleness (ttl:N) would serve without asking the origin, so it needs a
	 * local check of the client's signature first; until lotad has one, only strong. */
	if (strcmp(d->cfg.consistency, "strong") != 0) {
		snprintf(err, errlen, "consistency: '%s' is not supported: only 'strong' (a ttl mode "
			 "needs local signature checks, which lotad does not have yet)", d->cfg.consistency);
		return -EINVAL;
	}
	if (!d->cfg.origin[0]) {
		snprintf(err, errlen, "origin: required (e.g. --origin http://127.0.0.1:7480)");
		return -EINVAL;
	}
	if (addr_parse(d->cfg.listen, &ss, &len) < 0) {
		snprintf(err, errlen, "listen: '%s' is not a HOST:PORT address", d->cfg.listen);
		return -EINVAL;
	}
	if (addr_parse(d->cfg.admin, &ss, &len) < 0) {
		snprintf(err, errlen, "admin: '%s' is not a HOST:PORT address", d->cfg.admin);
		return -EINVAL;
	}
	if (!d->cfg.max_connections || !d->cfg.client_timeout || !d->cfg.origin_timeout) {
		snprintf(err, errlen, "max-connections, client-timeout and origin-timeout must be > 0");
		return -EINVAL;
	}
	if (d->cfg.peers[0] && (!d->cfg.cluster_secret[0] || !d->cfg.peer_listen[0])) {
		snprintf(err, errlen, "peers: a cluster also needs cluster-secret and peer-listen");
		return -EINVAL;
	}
	return origin_init(&d->origin, d->cfg.origin, d->cfg.ca_file, err, errlen);
}

/* Cluster membership, when `peers` is set: signatures first, then the member list. */
static int cluster_setup(struct lotad *d, char *err, size_t errlen)
{
	struct peers_opts o = {d->cfg.peers, d->cfg.self, d->cfg.peer_listen, NULL};
	int r;

	if (!d->cfg.peers[0])
		return 0;
	r = peerauth_open(d->cfg.cluster_secret, &d->peerauth, err, errlen);
	if (r < 0)
		return r;
	o.auth = d->peerauth;
	return peers_new(&o, &d->peers, err, errlen);
}

void lotad_render_extra_metrics(struct lotad *d, struct evbuffer *out)
{
	steering_render_metrics(d, out);
	peers_render_metrics(d->peers, out);
}

static void cache_log(void *arg, const char *msg)
{
	log_warn("cache: %s", msg);
}

/* The cache is optional: without a cache-dir, or if it cannot open, lotad relays. */
static void cache_setup(struct lotad *d)
{
	struct cache_opts o = {.capacity = d->cfg.capacity, .log = cache_log,
			       .on_pressure = control_pressure, .pressure_arg = d};
	char err[512];
	int r;

	if (!d->cfg.cache_dir[0]) {
		log_warn("cache-dir is empty: relaying only, nothing is cached");
		return;
	}
	r = cache_open(d->cfg.cache_dir, &o, &d->cache);
	if (r < 0) {
		log_error("cache: %s: %s; relaying only", d->cfg.cache_dir, strerror(-r));
		d->cache = NULL;
		return;
	}
	lotad_refresh_gauges(d);
	log_info("cache: %s, %llu entries, %llu of %llu bytes used", d->cfg.cache_dir,
		 (unsigned long long)metric_get(M_cache_entries),
		 (unsigned long long)metric_get(M_cache_bytes_used),
		 (unsigned long long)metric_get(M_cache_capacity_bytes));
	if (!d->cfg.service_credentials[0]) {
		log_warn("no service-credentials: ranged reads and pre-staging are not cached, "
			 "only full-object GETs");
		return;
	}
	r = bgfill_pool_new(d, &d->bgfill, err, sizeof(err));
	if (r < 0) {
		log_error("service-credentials: %s; ranged reads and pre-staging are not cached", err);
		d->bgfill = NULL;
	}
}

#define DRAIN_POLL_MS 100

static struct event *drain_ev;
static struct timespec drain_started;

/* Every 100 ms while draining: stop once nothing is in progress, or at the deadline. */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct lotad *d = arg;
	struct timespec now;
	uint64_t active = metric_get(M_exchanges_active);

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (active && (uint64_t)(now.tv_sec - drain_started.tv_sec) < d->cfg.drain_timeout)
		return;
	if (active)
		log_warn("drain-timeout: stopping with %llu requests still in progress",
			 (unsigned long long)active);
	event_base_loopbreak(d->control_base);
}

/* SIGTERM/SIGINT: stop accepting and let the requests in progress finish (new
 * connections meet BPF's fail-open path, or nothing); a second signal stops at once. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct lotad *d = arg;
	struct timeval tv = {0, DRAIN_POLL_MS * 1000};

	if (d->is_draining || !d->cfg.drain_timeout) {
		log_info("signal %d: stopping now", (int)sig);
		event_base_loopbreak(d->control_base);
		return;
	}
	d->is_draining = true;
	log_info("signal %d: draining: no new connections, %llu requests in progress get up to %llus",
		 (int)sig, (unsigned long long)metric_get(M_exchanges_active),
		 (unsigned long long)d->cfg.drain_timeout);
	steering_stop(d);
	server_stop_accepting(d);
	clock_gettime(CLOCK_MONOTONIC, &drain_started);
	drain_ev = event_new(d->control_base, -1, EV_PERSIST, drain_tick, d);
	if (!drain_ev || event_add(drain_ev, &tv) < 0)
		event_base_loopbreak(d->control_base);
}

int main(int argc, char **argv)
{
	static struct lotad d;
	struct event *sigterm = NULL, *sigint = NULL;
	char err[1024];
	int r;

	r = config_load(&d.cfg, argc, argv, err, sizeof(err));
	if (r == 1)
		return 0;
	if (r < 0 || config_check(&d, err, sizeof(err)) < 0 || cluster_setup(&d, err, sizeof(err)) < 0 ||
	    admin_check(&d, err, sizeof(err)) < 0) {
		fprintf(stderr, "lotad: %s\n", err);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	d.is_splice = d.cfg.splice;
	evthread_use_pthreads();
	d.control_base = event_base_new();
	if (!d.control_base || admin_start(&d, err, sizeof(err)) < 0) {
		log_error("admin: %s", err);
		return 1;
	}
	cache_setup(&d);
	if (d.cache && committer_start() < 0) {
		log_error("cannot start the commit thread");
		return 1;
	}
	if (control_start(&d) < 0) {
		log_error("control thread: out of memory");
		return 1;
	}
	if (d.peers && (peers_start(d.peers, d.control_base) < 0 ||
			admin_route("/admin/peers", peers_admin, d.peers) < 0)) {
		log_error("peers: cannot start membership");
		return 1;
	}
	r = server_start(&d);
	if (r < 0) {
		log_error("cannot start workers: %s", strerror(-r));
		return 1;
	}
	/* After the listeners exist, so that steered connections find lotad listening. */
	if (steering_start(&d) < 0)
		return 1;
	sigterm = evsignal_new(d.control_base, SIGTERM, on_signal, &d);
	sigint = evsignal_new(d.control_base, SIGINT, on_signal, &d);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("listening on %s (%d workers), origin %s, admin %s", d.cfg.listen, d.nworkers,
		 d.cfg.origin, d.cfg.admin);
	event_base_dispatch(d.control_base);
	admin_stop(&d);
	steering_stop(&d);
	server_stop(&d);
	peers_free(d.peers);
	peerauth_free(d.peerauth);
	event_free(sigterm);
	event_free(sigint);
	if (drain_ev)
		event_free(drain_ev);
	origin_free(&d.origin);
	log_info("stopped");
	return 0;
}

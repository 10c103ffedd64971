/* lotad: parse the configuration, make the modules and register them with the exchange
 * core and the admin endpoint (the cluster's routes before the cache path's, so that a
 * read whose owner is another node goes there first), start the workers and BPF
 * steering, and run the control thread until SIGTERM or SIGINT. The only file that knows
 * every module. */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "admin/admin.h"
#include "cachepath/cachepath.h"
#include "cachepath/location.h"
#include "cluster/cluster.h"
#include "exchange/origin.h"
#include "exchange/origins.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "netaddr.h"
#include "steering.h"

#define DRAIN_POLL_MS 100

/* What main makes, and what a signal handler needs to reach. */
struct daemon {
	struct lotad d;
	struct cachepath *cp;
	struct cluster *cl;
	struct steering *steering;
	struct event *drain_ev, *sigterm, *sigint;
	struct timespec drain_started;
};

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
	if (d->cfg.origin_timeout > ORIGIN_TIMEOUT_MAX_MS / 1000) {
		snprintf(err, errlen, "origin-timeout: at most %d seconds",
			 ORIGIN_TIMEOUT_MAX_MS / 1000);
		return -EINVAL;
	}
	if (d->cfg.peers[0] && (!d->cfg.cluster_secret[0] || !d->cfg.peer_listen[0])) {
		snprintf(err, errlen, "peers: a cluster also needs cluster-secret and peer-listen");
		return -EINVAL;
	}
	d->origin = calloc(1, sizeof(*d->origin));
	if (!d->origin) {
		snprintf(err, errlen, "origin: out of memory");
		return -ENOMEM;
	}
	if (origin_init(d->origin, d->cfg.origin, d->cfg.ca_file, err, errlen) < 0)
		return -EINVAL;
	d->origin->connect_ms = d->origin->read_ms = (unsigned)(d->cfg.origin_timeout * 1000);
	/* Without these keys there is no table: every request goes to origin, as it did. */
	if (!d->cfg.region_origins[0] && !d->cfg.bucket_origins[0] && !d->cfg.origin_timeouts[0])
		return 0;
	if (origins_new(d->origin, d->cfg.region_origins, d->cfg.bucket_origins, d->cfg.ca_file,
			&d->origins, err, errlen) < 0)
		return -EINVAL;
	return origins_set_timeouts(d->origins, d->cfg.origin_timeouts, err, errlen);
}

/* Every 100 ms while draining: stop once nothing is in progress, or at the deadline. */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *dm = arg;
	struct timespec now;
	uint64_t active = metric_get(M_exchanges_active);

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (active && (uint64_t)(now.tv_sec - dm->drain_started.tv_sec) < dm->d.cfg.drain_timeout)
		return;
	if (active)
		log_warn("drain-timeout: stopping with %llu requests still in progress",
			 (unsigned long long)active);
	event_base_loopbreak(dm->d.control_base);
}

/* SIGTERM/SIGINT: stop accepting and let the requests in progress finish (new
 * connections meet BPF's fail-open path, or nothing); a second signal stops at once. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *dm = arg;
	struct lotad *d = &dm->d;
	struct timeval tv = {0, DRAIN_POLL_MS * 1000};

	if (lotad_is_draining(d) || !d->cfg.drain_timeout) {
		log_info("signal %d: stopping now", (int)sig);
		event_base_loopbreak(d->control_base);
		return;
	}
	lotad_set_draining(d);
	log_info("signal %d: draining: no new connections, %llu requests in progress get up to %llus",
		 (int)sig, (unsigned long long)metric_get(M_exchanges_active),
		 (unsigned long long)d->cfg.drain_timeout);
	steering_stop(dm->steering);
	server_stop_accepting(d);
	clock_gettime(CLOCK_MONOTONIC, &dm->drain_started);
	dm->drain_ev = event_new(d->control_base, -1, EV_PERSIST, drain_tick, dm);
	if (!dm->drain_ev || event_add(dm->drain_ev, &tv) < 0)
		event_base_loopbreak(d->control_base);
}

/* The modules, in the order their routes are asked. */
static int modules_start(struct daemon *dm, char *err, size_t errlen)
{
	struct lotad *d = &dm->d;
	int r = cachepath_new(d, &dm->cp, err, errlen);

	if (r < 0)
		return r;
	if (location_register(dm->cp) < 0) {
		snprintf(err, errlen, "region-origins: cannot register the location route");
		return -ENOMEM;
	}
	if (dm->cl && cluster_register(dm->cl, dm->cp) < 0) {
		snprintf(err, errlen, "peers: cannot start membership");
		return -ENOMEM;
	}
	if (cachepath_register(dm->cp) < 0) {
		snprintf(err, errlen, "cache: cannot register its routes");
		return -ENOMEM;
	}
	return 0;
}

static int handle_signals(struct daemon *dm)
{
	dm->sigterm = evsignal_new(dm->d.control_base, SIGTERM, on_signal, dm);
	dm->sigint = evsignal_new(dm->d.control_base, SIGINT, on_signal, dm);
	if (!dm->sigterm || !dm->sigint)
		return -ENOMEM;
	evsignal_add(dm->sigterm, NULL);
	evsignal_add(dm->sigint, NULL);
	return 0;
}

static void daemon_stop(struct daemon *dm)
{
	struct lotad *d = &dm->d;

	steering_free(dm->steering);
	server_stop(d);
	cluster_free(dm->cl);
	cachepath_free(dm->cp);
	admin_stop(d);
	if (dm->sigterm)
		event_free(dm->sigterm);
	if (dm->sigint)
		event_free(dm->sigint);
	if (dm->drain_ev)
		event_free(dm->drain_ev);
	origins_free(d->origins);
	origin_free(d->origin);
	free(d->origin);
}

/* Each client connection may hold a few descriptors (its origin connection, a chunk file,
 * a fill's socket and file, a splice pipe): the soft limit goes up to the hard one, and
 * lotad says so when even that is short of max-connections. */
#define FDS_PER_CONNECTION 4
#define FDS_SPARE 256 /* listeners, the cache, the admin API, the control thread */

static void raise_nofile(const struct lotad *d)
{
	struct rlimit rl;
	uint64_t n = d->cfg.max_connections;
	uint64_t want = n > (UINT64_MAX - FDS_SPARE) / FDS_PER_CONNECTION
			    ? UINT64_MAX
			    : n * FDS_PER_CONNECTION + FDS_SPARE;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < want) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : (rlim_t)want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur < want)
		log_warn(
		    "max-connections %llu, but only %llu file descriptors (RLIMIT_NOFILE): past "
		    "about %llu connections accept() fails and new clients wait (raise "
		    "LimitNOFILE, "
		    "or lower max-connections)",
		    (unsigned long long)d->cfg.max_connections, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(rl.rlim_cur > FDS_SPARE
					     ? (rl.rlim_cur - FDS_SPARE) / FDS_PER_CONNECTION
					     : 0));
}

int main(int argc, char **argv)
{
	static struct daemon dm;
	struct lotad *d = &dm.d;
	char err[1024];
	int r;

	r = config_load(&d->cfg, argc, argv, err, sizeof(err));
	if (r == 1)
		return 0;
	if (r < 0 || config_check(d, err, sizeof(err)) < 0 ||
	    cluster_new(d, &dm.cl, err, sizeof(err)) < 0 || admin_check(d, err, sizeof(err)) < 0) {
		fprintf(stderr, "lotad: %s\n", err);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(d);
	d->is_splice = d->cfg.splice;
	d->started = time(NULL);
	evthread_use_pthreads();
	d->control_base = event_base_new();
	if (!d->control_base || admin_start(d, err, sizeof(err)) < 0 || adminapi_register(d) < 0) {
		log_error("admin: %s", err);
		return 1;
	}
	if (modules_start(&dm, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	r = server_start(d);
	if (r < 0) {
		log_error("cannot start workers: %s", strerror(-r));
		return 1;
	}
	/* After the listeners exist, so that steered connections find lotad listening. */
	if (steering_start(d, &dm.steering) < 0 || handle_signals(&dm) < 0)
		return 1;
	log_info("listening on %s (%d workers), origin %s, admin %s", d->cfg.listen, d->nworkers,
		 d->cfg.origin, d->cfg.admin);
	event_base_dispatch(d->control_base);
	daemon_stop(&dm);
	log_info("stopped");
	return 0;
}

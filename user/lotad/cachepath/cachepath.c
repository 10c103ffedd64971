/* The cache path as a module of lotad: it opens the store, loads the service
 * credentials, starts the commit thread, and registers its routes with the exchange core
 * in the order they are asked (pre-staging, cached reads, reads it must not cache,
 * writes) and its upkeep (upkeep.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <event2/event.h>

#include "cachepath/cachepath.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/objread.h"
#include "cachepath/prestage.h"
#include "cachepath/invalidate.h"
#include "cachepath/known.h"
#include "cachepath/young.h"
#include "cachepath/upkeep.h"
#include "cachepath/committer.h"
#include "cachepath/fills.h"
#include "cachepath/ssec.h"
#include "cachepath/ssecstage.h"
#include "cachepath/svcdenied.h"
#include "cachepath/svccreds.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"

/* -- the module --------------------------------------------------------------------- */

/* The store's lines name themselves ("cache: ..."). */
static void cache_log(void *arg, const char *msg)
{
	log_warn("%s", msg);
}

/* A capacity past the filesystem's size never makes eviction start: the disk fills
 * first, and every fill after that is abandoned. Said at start (the operator's choice:
 * the disk may also be shared). */
static void warn_capacity_past_disk(const char *dir, uint64_t capacity)
{
	struct statvfs sv;
	uint64_t fs;

	if (!capacity || statvfs(dir, &sv) < 0 || !sv.f_frsize)
		return;
	fs = sv.f_blocks > UINT64_MAX / sv.f_frsize ? UINT64_MAX
						    : (uint64_t)sv.f_blocks * sv.f_frsize;
	if (capacity > fs / 10 * 9)
		log_warn(
		    "cache: capacity %llu is more than 90%% of the filesystem of %s (%llu "
		    "bytes): the disk fills before eviction starts (leave capacity unset for 90%%)",
		    (unsigned long long)capacity, dir, (unsigned long long)fs);
}

static int open_store(struct cachepath *cp)
{
	struct cache_opts o = {.capacity = cp->d->cfg.capacity, .chunk_size = cp->d->cfg.chunk_size,
			       .log = cache_log, .on_pressure = upkeep_pressure, .pressure_arg = cp};
	int r;

	if (!cp->d->cfg.cache_dir[0]) {
		log_warn("cache-dir is empty: relaying only, nothing is cached");
		return 0;
	}
	r = cache_open(cp->d->cfg.cache_dir, &o, &cp->cache);
	if (r == -EBUSY) {
		log_error("cache: %s is in use by another lotad (it holds the directory's lock); "
			  "relaying only",
			  cp->d->cfg.cache_dir);
		cp->cache = NULL;
		return 0;
	}
	if (r < 0) {
		log_error("cache: %s: %s; relaying only", cp->d->cfg.cache_dir, strerror(-r));
		cp->cache = NULL;
		return 0;
	}
	warn_capacity_past_disk(cp->d->cfg.cache_dir, cp->d->cfg.capacity);
	upkeep_refresh(cp);
	log_info("cache: %s, %llu entries, %llu of %llu bytes used", cp->d->cfg.cache_dir,
		 (unsigned long long)metric_get(M_cache_entries),
		 (unsigned long long)metric_get(M_cache_bytes_used),
		 (unsigned long long)metric_get(M_cache_capacity_bytes));
	return 0;
}

/* Without service credentials the cache still serves and fills full-object GETs. */
static void load_service_credentials(struct cachepath *cp)
{
	struct config *cfg = &cp->d->cfg;
	char err[512];

	if (!cfg->service_credentials[0]) {
		log_warn("no service-credentials: ranged reads and pre-staging are not cached, "
			 "only full-object GETs");
		return;
	}
	if (svccreds_new(cfg->service_credentials, cfg->region, &cp->svc, err, sizeof(err)) < 0) {
		log_error("service-credentials: %s; ranged reads and pre-staging are not cached", err);
		cp->svc = NULL;
	} else if (svcdenied_new(&cp->denied) < 0) {
		log_error("service-credentials: out of memory; ranged reads are not cached");
		svccreds_free(cp->svc);
		cp->svc = NULL;
	}
}

/* Without the node's secret SSE-C reads are relayed, as before: never cached. */
static void ssec_start(struct cachepath *cp)
{
	int r = ssec_new(cp->d->cfg.cache_dir, &cp->ssec);

	if (r < 0)
		log_error("cache: %s/ssec.secret: %s; SSE-C reads are relayed, never cached",
			  cp->d->cfg.cache_dir, strerror(-r));
}

int cachepath_new(struct lotad *d, struct cachepath **out, char *err, size_t errlen)
{
	struct cachepath *cp = calloc(1, sizeof(*cp));
	int r;

	if (!cp || !(cp->herd = herd_new()) || known_new(&cp->known) < 0 ||
	    young_new(&cp->young) < 0) {
		if (cp) {
			herd_free(cp->herd);
			known_free(cp->known);
		}
		free(cp);
		snprintf(err, errlen, "cache: out of memory");
		return -ENOMEM;
	}
	cp->d = d;
	open_store(cp);
	if (!cp->cache && d->cfg.region_origins[0])
		load_service_credentials(cp); /* to ask where buckets live */
	if (cp->cache) {
		load_service_credentials(cp);
		ssec_start(cp);
		r = committer_new(cp->cache, &cp->committer);
		if (r < 0) {
			snprintf(err, errlen, "cache: cannot start the commit thread: %s", strerror(-r));
			cachepath_free(cp);
			return r;
		}
	}
	*out = cp;
	return 0;
}

int cachepath_register(struct cachepath *cp)
{
	struct lotad *d = cp->d;

	if (cp->cache) {
		ssecstage_route(cp, &cp->ssec_stage);
		prestage_route(cp, &cp->prestage);
		objread_route(cp, &cp->read);
		ssec_route(cp, &cp->ssec_read);
		bypass_route(&cp->bypass);
		invalidate_route(cp, &cp->write);
		if (exchange_route_add(d, &cp->ssec_stage) < 0 ||
		    exchange_route_add(d, &cp->prestage) < 0 || exchange_route_add(d, &cp->read) < 0 ||
		    exchange_route_add(d, &cp->ssec_read) < 0 ||
		    exchange_route_add(d, &cp->bypass) < 0 || exchange_route_add(d, &cp->write) < 0)
			return -ENOSPC;
	}
	return upkeep_start(cp);
}

void cachepath_free(struct cachepath *cp)
{
	if (!cp)
		return;
	if (cp->tick_ev)
		event_free(cp->tick_ev);
	if (cp->evict_ev)
		event_free(cp->evict_ev);
	for (int i = 0; i < CACHEPATH_WORKERS_MAX; i++)
		fills_free(cp->fills[i]);
	svccreds_free(cp->svc);
	svcdenied_free(cp->denied);
	ssec_free(cp->ssec);
	committer_free(cp->committer); /* commits what is queued */
	herd_free(cp->herd);
	known_free(cp->known);
	young_free(cp->young);
	if (cp->cache)
		cache_close(cp->cache);
	free(cp);
}

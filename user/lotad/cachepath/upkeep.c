/* Keeping the store: drops for writes and peers, LRU eviction and gauges on the control
 * thread (also at once when a fill meets pressure or ENOSPC), the bypass route for reads
 * it must not cache, and the admin API's evict call and status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin/admin.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/upkeep.h"
#include "cachepath/request.h"
#include "cachepath/svccreds.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"

#define CACHEPATH_TICK_MS 1000

void cachepath_on_invalidate(struct cachepath *cp, cachepath_invalidate_fn fn, void *arg)
{
	cp->on_inval = fn;
	cp->inval_arg = arg;
}

int cachepath_invalidate(struct cachepath *cp, const struct cache_key *k)
{
	int n = cp->cache ? cache_invalidate(cp->cache, k) : 0;

	if (n > 0)
		metric_add(M_cache_invalidations, 1); /* an object, whatever its chunks */
	return n;
}

int cachepath_drop(struct cachepath *cp, struct worker *w, const struct cache_key *k)
{
	if (cp->on_inval)
		cp->on_inval(cp->inval_arg, w, k); /* the owner holds the key, if another node */
	return cachepath_invalidate(cp, k);
}

/* -- the reads it must not cache (relayed, counted) ---------------------------------------------------- */

static bool bypass_claims(struct exchange *x, void *arg)
{
	return x->s3.op == S3_OBJECT_READ;
}

static enum route_verdict bypass_start(struct exchange *x, void *arg)
{
	metric_add(M_cache_bypasses, 1);
	return RT_UPSTREAM;
}

/* -- the control thread: eviction, gauges, credentials -------------------------------- */

/* The tick starts evicting only above the high watermark (hysteresis); a pressure
 * signal comes from a fill that already evicted inline just enough to stay under the
 * high watermark, so it must bring usage down to the low one regardless, or every
 * following fill would evict inline on its worker thread. */
static void evict_now(struct cachepath *cp, bool is_pressure)
{
	struct cache_stats st;
	int n;

	cache_stats(cp->cache, &st);
	if (!is_pressure && st.bytes_used + st.bytes_reserved <= st.high_watermark)
		return;
	n = cache_evict(cp->cache);
	if (n > 0)
		log_info("cache: evicted %d least recently used entries", n);
}

static void evict_cb(evutil_socket_t fd, short what, void *arg)
{
	evict_now(arg, true);
}

void cachepath_wake_evict(struct cachepath *cp)
{
	if (cp->evict_ev)
		event_active(cp->evict_ev, EV_READ, 0);
}

void upkeep_pressure(void *arg)
{
	cachepath_wake_evict(arg);
}

void upkeep_refresh(void *arg)
{
	struct cachepath *cp = arg;
	struct cache_stats st;

	if (!cp->cache)
		return;
	cache_stats(cp->cache, &st);
	metric_set(M_cache_bytes_used, st.bytes_used);
	metric_set(M_cache_capacity_bytes, st.capacity);
	metric_set(M_cache_entries, st.entries);
	metric_set(M_cache_evictions, st.evictions);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cachepath *cp = arg;

	evict_now(cp, false);
	upkeep_refresh(cp);
	if (cp->svc)
		svccreds_reload(cp->svc);
}

static int start_timers(struct cachepath *cp)
{
	struct timeval tv = {CACHEPATH_TICK_MS / 1000, (CACHEPATH_TICK_MS % 1000) * 1000};

	cp->evict_ev = event_new(cp->d->control_base, -1, 0, evict_cb, cp);
	cp->tick_ev = event_new(cp->d->control_base, -1, EV_PERSIST, tick_cb, cp);
	if (!cp->evict_ev || !cp->tick_ev)
		return -ENOMEM;
	return event_add(cp->tick_ev, &tv) < 0 ? -ENOMEM : 0;
}

/* -- admin: evict, status ------------------------------------------------------------- */

static void json_reply(struct evhttp_request *req, int code, struct evbuffer *b)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
}

/* POST /admin/evict?bucket=B&key=K[&version=V]: drop one key; ?all=1: every entry. */
static void evict_call(struct evhttp_request *req, void *arg)
{
	struct cachepath *cp = arg;
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq q;
	const char *bucket, *key, *version, *all;
	int code = 200, n;

	evhttp_parse_query(evhttp_request_get_uri(req), &q);
	all = evhttp_find_header(&q, "all");
	bucket = evhttp_find_header(&q, "bucket");
	key = evhttp_find_header(&q, "key");
	version = evhttp_find_header(&q, "version");
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		code = 405;
		evbuffer_add_printf(b, "{\"error\":\"use POST\"}\n");
	} else if (!cp->cache) {
		code = 409;
		evbuffer_add_printf(b, "{\"error\":\"the cache is not enabled\"}\n");
	} else if (all && strcmp(all, "1") == 0 && !bucket && !key) {
		n = cache_clear(cp->cache);
		log_warn("admin: evicted all %d cached objects", n);
		evbuffer_add_printf(b, "{\"evicted\":%d}\n", n);
	} else if (!bucket || !key) {
		code = 400;
		evbuffer_add_printf(b, "{\"error\":\"bucket and key are required\"}\n");
	} else {
		struct cache_key k = {bucket, key, version ? version : ""};

		n = cachepath_invalidate(cp, &k);
		evbuffer_add_printf(b, "{\"evicted\":%d}\n", n < 0 ? 0 : n);
	}
	evhttp_clear_headers(&q);
	json_reply(req, code, b);
	evbuffer_free(b);
}

static void cache_status(void *arg, struct evbuffer *b)
{
	struct cachepath *cp = arg;
	uint64_t hits = metric_get(M_cache_hits) + metric_get(M_cache_coalesced);
	uint64_t misses = metric_get(M_cache_misses);

	evbuffer_add_printf(b, "{\"enabled\":%s,\"dir\":", cp->cache ? "true" : "false");
	admin_json_str(b, cp->d->cfg.cache_dir);
	evbuffer_add_printf(b,
			    ",\"entries\":%llu,\"bytes_used\":%llu,\"capacity\":%llu,"
			    "\"hit_ratio\":%.4f,\"background_fills\":%s}",
			    (unsigned long long)metric_get(M_cache_entries),
			    (unsigned long long)metric_get(M_cache_bytes_used),
			    (unsigned long long)metric_get(M_cache_capacity_bytes),
			    hits + misses ? (double)hits / (double)(hits + misses) : 0.0,
			    cp->svc ? "true" : "false");
}

void bypass_route(struct route *rt)
{
	*rt = (struct route){.name = "bypass", .claims = bypass_claims, .start = bypass_start};
}

int upkeep_start(struct cachepath *cp)
{
	struct admin_section s = {.name = "cache", .refresh = upkeep_refresh,
				  .status = cache_status, .arg = cp};

	if (admin_route(cp->d, "/admin/evict", evict_call, cp) < 0 || admin_section_add(cp->d, &s) < 0)
		return -ENOSPC;
	return cp->cache ? start_timers(cp) : 0;
}

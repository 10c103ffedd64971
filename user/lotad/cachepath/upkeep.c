/* Keeping the store: drops for writes and peers; on the control thread LRU eviction (also
 * at once when a fill meets pressure or ENOSPC), the watch on the cache directory, the
 * scrubber and the gauges; the bypass route for reads it must not cache; the admin API's
 * evict call, the "cache" part of status and what /healthz says about the cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin/admin.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/upkeep.h"
#include "cachepath/known.h"
#include "cachepath/request.h"
#include "cachepath/svccreds.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"

/* The tick's own state, on the control thread only. It is the process's (lotad has one
 * cache path, lotad.h) because struct cachepath has no member for it yet. */
void cachepath_on_invalidate(struct cachepath *cp, cachepath_invalidate_fn fn, void *arg)
{
	cp->on_inval = fn;
	cp->inval_arg = arg;
}

int cachepath_invalidate(struct cachepath *cp, const struct cache_key *k)
{
	int n = cp->cache ? cache_invalidate(cp->cache, k) : 0;

	known_drop(cp->known, k);

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

/* -- the control thread: eviction, health, scrubbing, gauges, credentials --------------- */

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

/* The gauges and counters /metrics and /admin/status show, from the store's stats. */
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
	metric_set(M_cache_corrupt_chunks, st.corrupt_chunks);
	metric_set(M_cache_lost_chunks, st.lost_chunks);
	metric_set(M_cache_verified_chunks, st.verified_chunks);
	metric_set(M_cache_verified_bytes, st.verified_bytes);
	metric_set(M_cache_scrub_chunks, st.scrub_chunks);
	metric_set(M_cache_scrub_bytes, st.scrub_bytes);
	metric_set(M_cache_scrub_passes, st.scrub_passes);
	metric_set(M_cache_degraded, st.is_degraded ? 1 : 0);
	metric_set(M_cache_degradations, st.degradations);
	metric_set(M_cache_dir_recoveries, st.dir_recoveries);
}

void scrub_pace_init(struct scrub_pace *p, uint64_t rate, uint64_t now_ms)
{
	*p = (struct scrub_pace){.rate = rate, .last_ms = now_ms, .pass_start_ms = now_ms};
}

void scrub_pace_set_interval(struct scrub_pace *p, uint64_t interval_ms)
{
	p->interval_ms = interval_ms;
}

/* A small cache is re-read in seconds: without a rest between passes the scrubber would
 * read it over and over at scrub-rate, a core's share spent for nothing new. */
bool scrub_pace_is_resting(struct scrub_pace *p, uint64_t passes, uint64_t now_ms)
{
	if (passes != p->passes) {
		p->passes = passes;
		p->resume_ms = p->pass_start_ms + p->interval_ms;
	}
	if (now_ms < p->resume_ms) {
		p->credit = 0;
		p->last_ms = now_ms;
		return true;
	}
	if (p->resume_ms) {
		p->pass_start_ms = now_ms; /* the next pass starts now, its budget from now */
		p->last_ms = now_ms;
		p->resume_ms = 0;
	}
	return false;
}

uint64_t scrub_pace_budget(struct scrub_pace *p, uint64_t now_ms)
{
	uint64_t dt = now_ms > p->last_ms ? now_ms - p->last_ms : 0;

	p->last_ms += dt;
	if (dt > 1000)
		dt = 1000;
	/* rate <= 2^40 and dt <= 1000: the products stay far below 2^64 */
	p->credit += p->rate * dt;
	if (p->credit > p->rate * 1000)
		p->credit = p->rate * 1000;
	return p->credit / 1000;
}

void scrub_pace_spent(struct scrub_pace *p, uint64_t budget, uint64_t n)
{
	if (n < budget)
		p->credit = 0;
	else
		p->credit -= n * 1000 < p->credit ? n * 1000 : p->credit;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads what scrub-rate allows since the last run: a corrupt chunk it finds is dropped
 * (and logged) by the store, and fetched again by the next read that needs it. */
static void scrub_now(struct cachepath *cp, uint64_t now)
{
	struct cache_stats st;
	uint64_t budget;
	int64_t n;

	if (!cp->upkeep.pace.rate)
		return;
	cache_stats(cp->cache, &st);
	if (scrub_pace_is_resting(&cp->upkeep.pace, st.scrub_passes, now))
		return;
	budget = scrub_pace_budget(&cp->upkeep.pace, now);
	if (!budget)
		return;
	n = cache_scrub(cp->cache, budget);
	if (n < 0 && !cp->upkeep.is_scrub_failing)
		log_warn("cache: scrubber: %s; it tries again", strerror((int)-n));
	cp->upkeep.is_scrub_failing = n < 0;
	scrub_pace_spent(&cp->upkeep.pace, budget, n < 0 ? 0 : (uint64_t)n);
}

/* Every tick the scrubber; every second the store notices its directory going and coming
 * back (and logs each change), then eviction and the gauges follow. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cachepath *cp = arg;
	uint64_t now = now_ms();

	scrub_now(cp, now);
	if (now - cp->upkeep.last_slow_ms < UPKEEP_TICK_MS)
		return;
	cp->upkeep.last_slow_ms = now;
	cache_health_check(cp->cache);
	evict_now(cp, false);
	upkeep_refresh(cp);
	if (cp->svc)
		svccreds_reload(cp->svc);
}

static int start_timers(struct cachepath *cp)
{
	struct timeval tv = {UPKEEP_SCRUB_TICK_MS / 1000, (UPKEEP_SCRUB_TICK_MS % 1000) * 1000};
	uint64_t rate = cp->d->cfg.scrub_rate;

	cp->upkeep.last_slow_ms = now_ms();
	scrub_pace_init(&cp->upkeep.pace, rate, cp->upkeep.last_slow_ms);
	scrub_pace_set_interval(&cp->upkeep.pace, (cp->d->cfg.scrub_interval > UINT32_MAX
							   ? UINT32_MAX
							   : cp->d->cfg.scrub_interval) * 1000);
	cp->evict_ev = event_new(cp->d->control_base, -1, 0, evict_cb, cp);
	cp->tick_ev = event_new(cp->d->control_base, -1, EV_PERSIST, tick_cb, cp);
	if (!cp->evict_ev || !cp->tick_ev || event_add(cp->tick_ev, &tv) < 0)
		return -ENOMEM;
	if (rate)
		log_info("cache: the scrubber re-verifies every cached chunk at %.1f MiB/s "
			 "(scrub-rate), a pass every %llu s at most (scrub-interval)",
			 (double)rate / (1 << 20), (unsigned long long)cp->d->cfg.scrub_interval);
	else
		log_warn("cache: scrub-rate is 0: cold chunks are verified only when read");
	return 0;
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

/* Why the store is degraded, for people: the store's errno in words. */
static const char *degraded_why(int err)
{
	switch (err) {
	case -ESTALE:
		return "replaced by another directory";
	case -EXDEV:
		return "on another filesystem than at start (unmounted?)";
	default:
		return strerror(-err);
	}
}

/* /healthz's word on the cache: NULL when it is fine (or off), else why it is degraded. */
static const char *cache_degraded(void *arg, char *buf, size_t cap)
{
	struct cachepath *cp = arg;
	struct cache_stats st;

	if (!cp->cache)
		return NULL;
	cache_stats(cp->cache, &st);
	if (!st.is_degraded)
		return NULL;
	snprintf(buf, cap, "%s: %s", cp->d->cfg.cache_dir, degraded_why(st.degraded_error));
	return buf;
}

/* Verification and the scrubber: what was checked, and what was found and dropped. */
static void integrity_status(struct cachepath *cp, const struct cache_stats *st,
			     struct evbuffer *b)
{
	evbuffer_add_printf(b,
			    ",\"corrupt_chunks\":%llu,\"lost_chunks\":%llu,"
			    "\"verified_chunks\":%llu,\"verified_bytes\":%llu,"
			    "\"scrub\":{\"rate\":%llu,\"interval\":%llu,\"chunks\":%llu,"
			    "\"bytes\":%llu,\"passes\":%llu}",
			    (unsigned long long)st->corrupt_chunks,
			    (unsigned long long)st->lost_chunks,
			    (unsigned long long)st->verified_chunks,
			    (unsigned long long)st->verified_bytes,
			    (unsigned long long)cp->d->cfg.scrub_rate,
			    (unsigned long long)cp->d->cfg.scrub_interval,
			    (unsigned long long)st->scrub_chunks,
			    (unsigned long long)st->scrub_bytes,
			    (unsigned long long)st->scrub_passes);
}

static void cache_status(void *arg, struct evbuffer *b)
{
	struct cachepath *cp = arg;
	uint64_t hits = metric_get(M_cache_hits) + metric_get(M_cache_coalesced);
	uint64_t misses = metric_get(M_cache_misses);
	struct cache_stats st = {0};
	char why[CONFIG_STR_MAX + 64];
	const char *reason = cache_degraded(cp, why, sizeof(why));

	if (cp->cache)
		cache_stats(cp->cache, &st);
	evbuffer_add_printf(b, "{\"enabled\":%s,\"dir\":", cp->cache ? "true" : "false");
	admin_json_str(b, cp->d->cfg.cache_dir);
	evbuffer_add_printf(b,
			    ",\"entries\":%llu,\"objects\":%llu,\"bytes_used\":%llu,"
			    "\"capacity\":%llu,\"hit_ratio\":%.4f,\"background_fills\":%s,"
			    "\"degraded\":%s,\"degraded_reason\":",
			    (unsigned long long)metric_get(M_cache_entries),
			    (unsigned long long)st.objects,
			    (unsigned long long)metric_get(M_cache_bytes_used),
			    (unsigned long long)metric_get(M_cache_capacity_bytes),
			    hits + misses ? (double)hits / (double)(hits + misses) : 0.0,
			    cp->svc ? "true" : "false", reason ? "true" : "false");
	admin_json_str(b, reason ? reason : "");
	integrity_status(cp, &st, b);
	evbuffer_add(b, "}", 1);
}

void bypass_route(struct route *rt)
{
	*rt = (struct route){.name = "bypass", .claims = bypass_claims, .start = bypass_start};
}

int upkeep_start(struct cachepath *cp)
{
	struct admin_section s = {.name = "cache", .refresh = upkeep_refresh,
				  .status = cache_status, .degraded = cache_degraded, .arg = cp};

	if (admin_route(cp->d, "/admin/evict", evict_call, cp) < 0 || admin_section_add(cp->d, &s) < 0)
		return -ENOSPC;
	return cp->cache ? start_timers(cp) : 0;
}

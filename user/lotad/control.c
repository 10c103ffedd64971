/* The control thread's periodic work, on its own event base: cache gauges, LRU
 * eviction between the watermarks (also on demand when a fill meets pressure or ENOSPC),
 * and reloading the service credentials when their file changes. */
#include <event2/event.h>

#include "cachepath/bgfill.h"
#include "cache.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"

#define CONTROL_TICK_MS 1000

static struct event *evict_ev;

void lotad_refresh_gauges(struct lotad *d)
{
	struct cache_stats st;

	if (!d->cache)
		return;
	cache_stats(d->cache, &st);
	metric_set(M_cache_bytes_used, st.bytes_used);
	metric_set(M_cache_capacity_bytes, st.capacity);
	metric_set(M_cache_entries, st.entries);
	metric_set(M_cache_evictions, st.evictions);
}

/* The tick starts evicting only above the high watermark (hysteresis); a pressure
 * signal comes from a fill that already evicted inline just enough to stay under the
 * high watermark, so it must bring usage down to the low one regardless, or every
 * following fill would evict inline on its worker thread. */
static void evict_now(struct lotad *d, bool is_pressure)
{
	struct cache_stats st;
	int n;

	cache_stats(d->cache, &st);
	if (!is_pressure && st.bytes_used + st.bytes_reserved <= st.high_watermark)
		return;
	n = cache_evict(d->cache);
	if (n > 0)
		log_info("cache: evicted %d least recently used entries", n);
}

static void evict_cb(evutil_socket_t fd, short what, void *arg)
{
	evict_now(arg, true);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lotad *d = arg;

	if (d->cache) {
		evict_now(d, false);
		lotad_refresh_gauges(d);
	}
	if (d->bgfill)
		bgfill_reload(d->bgfill);
}

void control_wake_evict(struct lotad *d)
{
	if (evict_ev)
		event_active(evict_ev, EV_READ, 0);
}

/* For the cache's on_pressure callback (any thread). */
void control_pressure(void *arg)
{
	control_wake_evict(arg);
}

int control_start(struct lotad *d)
{
	struct timeval tv = {CONTROL_TICK_MS / 1000, (CONTROL_TICK_MS % 1000) * 1000};
	struct event *tick = event_new(d->control_base, -1, EV_PERSIST, tick_cb, d);

	evict_ev = event_new(d->control_base, -1, 0, evict_cb, d);
	if (!tick || !evict_ev)
		return -1;
	return event_add(tick, &tv);
}

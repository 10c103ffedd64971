/* The cache's upkeep on the control thread beyond what cachepath-int.h declares: its
 * period, and the scrubber's pacing (pure, so that it is unit-tested alone). */
#ifndef LOTA_UPKEEP_H
#define LOTA_UPKEEP_H

#include <stdint.h>

/* The tick: the scrubber reads what scrub-rate allows since the last one, so that the
 * control thread is never held long (50 MB/s: 5 MB a tick, a few ms). */
#define UPKEEP_SCRUB_TICK_MS 100
/* Every this many ms of ticks: the cache directory's health check, eviction above the
 * high watermark, the gauges, the credentials' reload. */
#define UPKEEP_TICK_MS 1000

/* A byte budget per run for a rate in bytes per second: what the rate allows since the
 * last run plus what earlier runs left unread, never more than one second's worth (a
 * control thread that was late catches up by a second at most). */
struct scrub_pace {
	uint64_t rate; /* bytes per second, at most CONFIG_SCRUB_RATE_MAX; 0: off */
	uint64_t last_ms;
	uint64_t credit; /* in bytes * 1000: no fraction of a byte is lost between runs */
};

void scrub_pace_init(struct scrub_pace *p, uint64_t rate, uint64_t now_ms);
/* Bytes the scrubber may read now (0: none yet, or off). */
uint64_t scrub_pace_budget(struct scrub_pace *p, uint64_t now_ms);
/* The run read n of its budget bytes. Less than the budget means its pass ended or there
 * was nothing to read: what is left is forgotten rather than saved up for a burst. */
void scrub_pace_spent(struct scrub_pace *p, uint64_t budget, uint64_t n);

#endif

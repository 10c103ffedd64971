/* Unit tests of the scrubber's pacing (user/lotad/cachepath/upkeep.c): the budget follows
 * scrub-rate over time, keeps fractions of a byte, catches up by one second at most, and
 * forgets what a run left unread. */
#include "unit.h"
#include <stdint.h>

#include "cachepath/upkeep.h"
#include "config.h"

static void test_rate(void)
{
	struct scrub_pace p;
	uint64_t total = 0, b;

	scrub_pace_init(&p, 50ULL << 20, 1000);
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, 1000), 0); /* no time has passed */
	for (uint64_t t = 1100; t <= 11000; t += 100) {
		b = scrub_pace_budget(&p, t);
		CU_ASSERT_EQUAL(b, (50ULL << 20) / 10);
		scrub_pace_spent(&p, b, b);
		total += b;
	}
	CU_ASSERT_EQUAL(total, 10 * (50ULL << 20)); /* ten seconds at the rate, exactly */
}

static void test_fractions(void)
{
	struct scrub_pace p;
	uint64_t total = 0, b;

	/* 7 bytes/s in 100 ms runs: 0.7 byte a run; nothing is lost to rounding */
	scrub_pace_init(&p, 7, 0);
	for (uint64_t t = 100; t <= 10000; t += 100) {
		b = scrub_pace_budget(&p, t);
		scrub_pace_spent(&p, b, b);
		total += b;
	}
	CU_ASSERT_EQUAL(total, 70);
}

/* scrub-interval: after a pass ends, the next starts interval after the last one
 * started, and nothing accrues in between (no burst at the restart). */
static void test_interval(void)
{
	struct scrub_pace p;

	scrub_pace_init(&p, 1000, 0);
	scrub_pace_set_interval(&p, 10000);
	CU_ASSERT_FALSE(scrub_pace_is_resting(&p, 0, 100));
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, 100), 100);
	scrub_pace_spent(&p, 100, 100);
	/* the first pass ends at 2 s: rest until 10 s after it started (at 0) */
	CU_ASSERT_TRUE(scrub_pace_is_resting(&p, 1, 2000));
	CU_ASSERT_TRUE(scrub_pace_is_resting(&p, 1, 9900));
	CU_ASSERT_FALSE(scrub_pace_is_resting(&p, 1, 10000));
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, 10100), 100); /* no credit from the rest */
	scrub_pace_spent(&p, 100, 100);
	/* the second pass started at 10 s and ends at 11 s: the third starts at 20 s */
	CU_ASSERT_FALSE(scrub_pace_is_resting(&p, 1, 10900));
	CU_ASSERT_TRUE(scrub_pace_is_resting(&p, 2, 11000));
	CU_ASSERT_TRUE(scrub_pace_is_resting(&p, 2, 19999));
	CU_ASSERT_FALSE(scrub_pace_is_resting(&p, 2, 20000));
	/* interval 0: passes back to back */
	scrub_pace_init(&p, 1000, 0);
	CU_ASSERT_FALSE(scrub_pace_is_resting(&p, 1, 100));
	CU_ASSERT_FALSE(scrub_pace_is_resting(&p, 2, 200));
}

static void test_late_and_short(void)
{
	struct scrub_pace p;
	uint64_t b;

	scrub_pace_init(&p, 1000, 0);
	/* a control thread 30 s late catches up by one second's worth, not 30 */
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, 30000), 1000);
	/* unspent budget carries over, up to one second's worth */
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, 30500), 1000);
	b = scrub_pace_budget(&p, 30600);
	CU_ASSERT_EQUAL(b, 1000);
	scrub_pace_spent(&p, b, 400); /* the pass ended after 400 bytes */
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, 30600), 0); /* the rest is forgotten */
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, 30700), 100);
	/* a clock that goes back gives nothing, and is not followed back */
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, 30000), 100);
	CU_ASSERT_EQUAL(p.last_ms, 30700);
}

static void test_off_and_bounds(void)
{
	struct scrub_pace p;

	scrub_pace_init(&p, 0, 0);
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, 5000), 0); /* off */
	scrub_pace_init(&p, CONFIG_SCRUB_RATE_MAX, 0);
	/* the largest rate a config may hold, for a long time: no overflow */
	for (int i = 1; i <= 5; i++)
		CU_ASSERT_EQUAL(scrub_pace_budget(&p, (uint64_t)i * 3600 * 1000),
				CONFIG_SCRUB_RATE_MAX);
	CU_ASSERT_EQUAL(scrub_pace_budget(&p, UINT64_MAX), CONFIG_SCRUB_RATE_MAX);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"pace: the budget follows the rate", test_rate},
	    {"pace: fractions of a byte are kept", test_fractions},
	    {"pace: late runs and short runs", test_late_and_short},
	    {"pace: off, and the largest rate", test_off_and_bounds},
	    {"pace: scrub-interval rests between passes", test_interval},
	};

	return UNIT_RUN("upkeep", NULL, NULL, tests);
}

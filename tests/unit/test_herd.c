/* herd: one leader per cold key, waiters woken together, and keys remembered as
 * uncacheable skip the queue. */
#include "unit.h"
#include <errno.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "cache.h"
#include "cachepath/herd.h"

static struct event_base *base;
static struct herd *h;
static int woken;

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	woken++;
}

static struct event *new_ev(void)
{
	return event_new(base, -1, 0, wake_cb, NULL);
}

static void test_leader_then_waiters(void)
{
	struct cache_key k = {"bkt", "a/key", ""};
	struct herd_waiter lead = {0}, w1 = {0}, w2 = {0};

	w1.wake = new_ev();
	w2.wake = new_ev();
	woken = 0;
	CU_ASSERT_EQUAL(herd_join(h, &k, &lead), 1);
	CU_ASSERT_EQUAL(herd_join(h, &k, &w1), 0);
	CU_ASSERT_EQUAL(herd_join(h, &k, &w2), 0);
	herd_release(h, &k);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(woken, 2);
	/* Released: the next reader leads a new herd. */
	CU_ASSERT_EQUAL(herd_join(h, &k, &lead), 1);
	herd_release(h, &k);
	event_free(w1.wake);
	event_free(w2.wake);
}

static void test_keys_are_distinct(void)
{
	struct cache_key a = {"bkt", "k", ""}, b = {"bkt", "k", "v1"}, c = {"bk", "tk", ""};
	struct herd_waiter w = {0};

	CU_ASSERT_EQUAL(herd_join(h, &a, &w), 1);
	CU_ASSERT_EQUAL(herd_join(h, &b, &w), 1);
	CU_ASSERT_EQUAL(herd_join(h, &c, &w), 1);
	herd_release(h, &a);
	herd_release(h, &b);
	herd_release(h, &c);
}

static void test_leave_is_not_woken(void)
{
	struct cache_key k = {"bkt", "leave", ""};
	struct herd_waiter lead = {0}, w1 = {0}, w2 = {0};

	w1.wake = new_ev();
	w2.wake = new_ev();
	woken = 0;
	CU_ASSERT_EQUAL(herd_join(h, &k, &lead), 1);
	CU_ASSERT_EQUAL(herd_join(h, &k, &w1), 0);
	CU_ASSERT_EQUAL(herd_join(h, &k, &w2), 0);
	herd_leave(&w1);
	herd_leave(&w1); /* twice is harmless */
	herd_release(h, &k);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(woken, 1);
	herd_leave(&w2); /* after the release: nothing to do */
	event_free(w1.wake);
	event_free(w2.wake);
}

static void test_uncacheable_skips_the_queue(void)
{
	struct cache_key k = {"bkt", "small", ""};
	struct herd_waiter w = {0};

	herd_note_uncacheable(h, &k);
	CU_ASSERT_EQUAL(herd_join(h, &k, &w), 2);
	CU_ASSERT_EQUAL(herd_join(h, &k, &w), 2);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"leader then waiters", test_leader_then_waiters},
	    {"keys are distinct", test_keys_are_distinct},
	    {"a waiter that left is not woken", test_leave_is_not_woken},
	    {"uncacheable keys skip the queue", test_uncacheable_skips_the_queue},
	};
	int r;

	evthread_use_pthreads();
	base = event_base_new();
	h = herd_new();
	r = UNIT_RUN("herd", NULL, NULL, tests);
	herd_free(h);
	event_base_free(base);
	return r;
}

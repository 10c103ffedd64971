/* One origin request per cold key on this node: the first reader of a key that is
 * neither cached nor filling leads; readers arriving meanwhile wait until the leader
 * knows whether a fill started, then follow that fill (after their own authorization). */
#ifndef LOTA_HERD_H
#define LOTA_HERD_H

#include <stdbool.h>

struct event;
struct cache_key;
struct herd;

struct herd_waiter {
	struct event *wake; /* made active (from any thread) when the leader is done */
	struct herd_waiter *next;
	struct herd_slot *slot;
	struct herd *h;
};

/* One table per cache path, shared by every worker (it has its own lock). */
struct herd *herd_new(void);
void herd_free(struct herd *h);
/* Returns 1 if the caller leads (release with herd_release), 0 if w was queued, 2 if
 * the key was recently found uncacheable (go to the origin alone, no herd), or -EUSERS
 * past HERD_WAITERS_MAX waiters for one key (go alone too). */
int herd_join(struct herd *h, const struct cache_key *k, struct herd_waiter *w);
/* The origin's answer for k will not be cached (too small, no-cache...): for a while,
 * readers of k go to the origin at once instead of queueing behind each other. */
void herd_note_uncacheable(struct herd *h, const struct cache_key *k);
/* The leader is done (fill started, or no fill will be): wake every waiter. */
void herd_release(struct herd *h, const struct cache_key *k);
/* A waiter gives up before being woken (its client went away, or it timed out). */
void herd_leave(struct herd_waiter *w);

#endif

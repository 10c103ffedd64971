/* lotad's own requests for SSE-C objects, made with a reader's customer key: the HEAD that
 * learns a version (and proves the key: the origin checks it on a HEAD), and chunk fills:
 * a ranged GET signed with the service credentials, carrying the reader's three SSE-C
 * fields and If-Match: <ETag>, read into a chunk buffer at the origin's pace, then sealed
 * and stored whole (its tag goes into the chunk's header). A fill outlives the read that
 * asked for it and holds its own copy of the key, wiped when it ends. One fill per
 * (version's verifier, chunk) on the node: readers on any worker join it, are woken as
 * its bytes arrive, and send them from its buffer, in memory, as they come and after it
 * ended (even if the store would not keep the chunk: a full disk); the buffer is wiped
 * once the last of them is done with it. */
#ifndef LOTA_SSECFILL_H
#define LOTA_SSECFILL_H

#include <stddef.h>
#include <stdint.h>

#include "cachepath/fills.h"
#include "cachepath/ssec-t.h"

struct cache_key;
struct cache_meta;
struct cachepath;
struct event;
struct worker;

/* A reader waiting for a fill: wake is made active (from any thread) when the fill ends. */
struct ssecfill_waiter {
	struct event *wake;
	struct ssecfill_waiter *next;
};

/* A fill's readers are woken once per this many new bytes, and at its end. */
#define SSECFILL_WAKE_BYTES (256 * 1024)

enum ssecfill_state {
	SSECFILL_RUNNING,
	SSECFILL_READY,	 /* every byte of the chunk is there */
	SSECFILL_FAILED, /* -ESTALE: the version is not the origin's any more */
};

/* Begins the fill of chunk index of sealed version m (extra starting with the marker of
 * its verifier v; ck its chunk key) with key, on worker w's thread. 0: begun, or one of it
 * runs already; -ENOKEY without service credentials; -ENOBUFS: no chunk buffer free now;
 * -ENOMEM. From a worker's thread. */
int ssecfill_want(struct cachepath *cp, struct worker *w, const struct cache_meta *m,
		  const uint8_t key[SSEC_KEY_LEN], const uint8_t v[SSEC_VERIFIER_LEN],
		  const uint8_t ck[SSEC_KEY_LEN], uint64_t index, enum fills_reason why);
/* The running fill of chunk index under verifier v, held for the caller with wt among its
 * waiters (wt->wake set by the caller); NULL if there is none. */
struct ssecfill *ssecfill_join(struct ssec *s, const uint8_t v[SSEC_VERIFIER_LEN], uint64_t index,
			       struct ssecfill_waiter *wt);
/* Its state, and how many of the chunk's bytes (plaintext, from its first) are there:
 * [0, *avail) of ssecfill_bytes(sf), unchanging while sf is held. FAILED: why (*err); the
 * bytes there are good still. */
enum ssecfill_state ssecfill_state(struct ssecfill *sf, uint64_t *avail, int *err);
const uint8_t *ssecfill_bytes(const struct ssecfill *sf);
/* One more hold on sf (its bytes queued on a socket, say), and its release (any thread). */
void ssecfill_hold(struct ssecfill *sf);
void ssecfill_release(struct ssecfill *sf);
/* The caller is done with sf: wt leaves its waiters, and its hold goes. NULL is fine. */
void ssecfill_leave(struct ssecfill *sf, struct ssecfill_waiter *wt);

/* lotad's HEAD of k with key (service credentials): done(arg, status, m) once, on w's
 * thread, m the answer's head (NULL with status 0 if none came); not after cancel. */
int ssecfill_head(struct cachepath *cp, struct worker *w, const struct cache_key *k,
		  const uint8_t key[SSEC_KEY_LEN], fills_head_fn done, void *arg,
		  struct ssecfill_head **out);
void ssecfill_head_cancel(struct ssecfill_head *h);

/* After the workers stopped: ends every fill and frees each worker's part. */
void ssecfill_free_all(struct ssec *s);

#endif

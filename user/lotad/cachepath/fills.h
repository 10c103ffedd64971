/* Chunk fills are lotad's, not a client's: each worker runs its own, on its event base,
 * at the origin's pace whatever their readers do (readers follow the chunk files), and a
 * fill outlives the request that asked for it. Two kinds:
 *   a fetch  - one chunk, with a ranged GET signed with the service credentials and
 *              If-Match: <ETag> (an overwrite at the origin gives 412: the chunk is never
 *              a mix), retried with back-off on 5xx and faults, resumed at its offset;
 *   a stream - the whole body of a 200 to a client's own GET, adopted from its request:
 *              cut into chunks as it arrives, chunks already filled elsewhere skipped.
 * One fill per chunk (the store's rule); up to fill-parallelism fetches of one object at
 * a time on a worker. */
#ifndef LOTA_FILLS_H
#define LOTA_FILLS_H

#include <stdbool.h>
#include <stdint.h>

struct bufferevent;
struct evbuffer;
struct origin;
struct cache_key;
struct cache_meta;
struct http_msg;
struct cachepath;
struct worker;
struct fills;

#define FILLS_RUNNING_MAX 32	/* fetches at a time on one worker */
#define FILLS_STREAM_WINDOW 8	/* chunks a stream begins ahead of its position */
#define FILLS_HANDOFF_MIN_CHUNKS 8 /* a stream hands off to parallel fetches from this size */
#define FILLS_RETRY_MAX 5	/* attempts after the first */
#define FILLS_RETRY_BASE_MS 100 /* back-off: a random delay up to base * 2^attempt ... */
#define FILLS_RETRY_CAP_MS 5000 /* ... and at most this */
#define FILLS_RETRY_WINDOW_S 30 /* no retry once a fetch is older than this */

/* The delay before retry number attempt + 1 of one of lotad's own requests: random in
 * [0, min(FILLS_RETRY_CAP_MS, FILLS_RETRY_BASE_MS * 2^attempt)] ms (full jitter). */
uint64_t fills_backoff_ms(unsigned attempt);

/* Why a fill runs: the metric its origin bytes count in. */
enum fills_reason {
	FILLS_FOR_READ,
	FILLS_FOR_PRESTAGE,
};

/* What fills_want found. */
enum fills_state {
	FILLS_COMMITTED, /* the chunk is committed: open it */
	FILLS_RUNNING,	 /* its fill runs (maybe just begun, maybe queued): follow it */
};

int fills_new(struct cachepath *cp, struct worker *w, struct fills **out);
/* The fills of worker w, made on its first use (by that worker only); NULL if no memory. */
struct fills *fills_of(struct cachepath *cp, struct worker *w);
/* After the worker stopped: ends every fill (aborting what is not complete). */
void fills_free(struct fills *f);
/* Chunk index of version m is committed or being filled: begins its fill (a fetch) if
 * neither. -ENOKEY without service credentials; other negative errno from the store
 * (-ENOSPC, -EIO degraded, ...): the chunk cannot be cached now. */
int fills_want(struct fills *f, const struct cache_meta *m, uint64_t index, enum fills_reason why);
/* Takes bev, a connection whose 200 (a client's own GET, head consumed) carries the whole
 * body of version m, and reads it into m's chunks. 0, or negative (nothing taken).
 * The adopting reader gets a spill (*spill): once the stream cannot store a byte (a full
 * disk), it hands that reader every byte from there on, paced by it, so that its request
 * completes whatever the store does; wake(arg) tells it bytes arrived or the stream ended. */
struct fills_spill;
typedef bool (*fills_theirs_fn)(const struct cachepath *cp, const struct cache_meta *m,
				uint64_t index);
/* With service credentials the stream stores only until it reaches a chunk that is
 * another fill's, or a peer's (is_theirs, may be NULL), and the reader takes no byte from
 * the spill: there it ends, and the reader's parallel fetches take the rest. */
/* is_keep_alive: the 200 let the connection carry another request; once its whole body
 * is read, it goes idle to the worker's pool. */
int fills_adopt(struct fills *f, struct bufferevent *bev, bool is_keep_alive,
		const struct cache_meta *m, fills_theirs_fn is_theirs, void (*wake)(void *arg), void *arg,
		struct fills_spill **spill);
/* The reader side of a spill: from which object offset it carries bytes (UINT64_MAX: it
 * does not, the stream stores everything), its buffer (bytes from *from on), and whether
 * the stream ended before the object's end. */
uint64_t fills_spill_from(const struct fills_spill *sp);
struct evbuffer *fills_spill_buf(struct fills_spill *sp, uint64_t *from);
void fills_spill_consumed(struct fills_spill *sp, size_t n);
bool fills_spill_is_broken(const struct fills_spill *sp);
/* The stream has ended (all of the object read, or broken): no more bytes will come. */
bool fills_spill_is_done(const struct fills_spill *sp);
/* May the stream still bring object byte pos (store it, or spill it)? It does not once it
 * has passed pos or spills from further on: a reader there must get it elsewhere. */
bool fills_spill_may_reach(const struct fills_spill *sp, uint64_t pos);
/* The reader is done with it (the stream goes on at the origin's pace). NULL is fine. */
void fills_spill_release(struct fills_spill *sp);

/* lotad's own HEAD of k (service credentials): what the origin says of the object now.
 * done(arg, status, m) is called once on the worker's thread, m the answer's head (NULL
 * with status 0 if none came); not after fills_head_cancel(). */
struct fills_head;
typedef void (*fills_head_fn)(void *arg, int status, const struct http_msg *m);
int fills_head(struct fills *f, const struct cache_key *k, fills_head_fn done, void *arg,
	       struct fills_head **out);
/* Signs lotad's request of method for k to o on out; 0 or -errno. */
typedef int (*fills_sign_fn)(void *arg, struct evbuffer *out, const char *method,
			     const struct origin *o, const struct cache_key *k);
/* As fills_head, but signed by sign(sign_arg, ...) (ssecfill.c's adds a reader's SSE-C
 * key; sign_arg outlives the HEAD, until done or cancel). Its answer is about what the
 * signer adds, so a refusal does not count against the service credentials. */
int fills_head_signed(struct fills *f, const struct cache_key *k, fills_sign_fn sign,
		      void *sign_arg, fills_head_fn done, void *arg, struct fills_head **out);
void fills_head_cancel(struct fills_head *h);
/* A client's read of cached k got 404: k's chunks go only if lotad's own HEAD says 404
 * too (a 404 to someone else's request proves nothing about the object). */
void fills_confirm_gone(struct fills *f, const struct cache_key *k);

#endif

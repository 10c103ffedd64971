/* What the parts of a worker's fills share (fills.c: fetches and the worker's table;
 * fillstream.c: adopted 200s; fillhead.c: lotad's HEADs; fillio.c: reading an origin's
 * body, below them all). Worker thread only. */
#ifndef LOTA_FILLS_INT_H
#define LOTA_FILLS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cachepath/fills.h"

struct bufferevent;
struct evbuffer;
struct fetch;
struct stream;
struct fills_head;

struct fills {
	struct cachepath *cp;
	struct worker *w;
	struct fetch *fetches; /* running and queued */
	unsigned nrunning;
	struct stream *streams;
	struct fills_head *heads;
	/* idle connections for the next fetches: the worker's own, shared with its client
	 * exchanges (a connection a fill leaves idle serves the next client request too) */
	struct originpool *pool;
	bool owns_pool; /* the worker has none: this one is the fills' */
};

/* Bytes the socket of a fill's origin connection gathers before it wakes us. The origin
 * sends in small segments; woken for each, a fill costs a read, a write into the chunk
 * and an epoll turn per 4 KiB and runs at a fraction of the origin's speed. */
#define FILLS_LOWAT (256 * 1024)
/* Bytes read from a fill's socket per wake at most (beyond libevent's 4 KiB): enough to
 * make a wake worth its cost, little enough to keep the worker's other clients going. */
#define FILLS_READ_MORE (1024 * 1024)

/* Wakes for bev once FILLS_LOWAT bytes are there, or the body's last byte (left: what
 * the origin has still to send); *cur: the SO_RCVLOWAT set, -1 once pinned to 1. */
void fills_pace_reads(struct bufferevent *bev, uint64_t left, int *cur);
/* A read timeout that is a slow origin, not a silent one: reading goes on (true). */
bool fills_is_slow_not_silent(struct bufferevent *bev, short what, int *lowat);
/* What of [done, len) is not in in yet, and how much more to read of it now. */
uint64_t fills_still_to_come(uint64_t done, uint64_t len, const struct evbuffer *in);
size_t fills_read_more_now(uint64_t done, uint64_t len, const struct evbuffer *in);
/* Counts n origin body bytes read for why; returns n. */
uint64_t fills_count_bytes(struct fills *f, enum fills_reason why, uint64_t n);
/* At fills_free: every stream and every HEAD ends. */
void fills_streams_free(struct fills *f);
void fills_heads_free(struct fills *f);

#endif

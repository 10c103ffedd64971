/* A client connection and the exchange (one request and its response) it is running.
 * Idle connections hold only struct conn; the big parse state lives in the exchange. */
#ifndef LOTA_CONN_H
#define LOTA_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cachepath/bgfill.h"
#include "cachepath/herd.h"
#include "http-t.h"
#include "cluster/peers.h"
#include "s3.h"

struct bufferevent;
struct evbuffer;
struct event;
struct worker;
struct cache_obj;
struct cache_key;
struct cache_fill;
struct cache_follower;
struct evbuffer_file_segment;
struct splicer;

/* Bytes queued towards a slow side before we stop reading from the fast side. */
#define CONN_PIPE_HIGH (1024 * 1024)
#define CONN_READ_MAX (256 * 1024)

struct exchange {
	char *head; /* the client's request head, as received */
	size_t head_len;
	struct http_msg req;
	struct s3_req s3;
	uint64_t req_left;
	struct http_chunked req_chunked;
	bool req_body_done;

	int status;
	enum http_body resp_body;
	uint64_t resp_left;
	struct http_chunked resp_chunked;
	bool resp_head_sent;
	bool resp_keep_alive;
	bool resp_done;
	bool origin_retried;
	bool upstream_sent; /* this exchange's head went out on c->obev */
	bool upstream_spent; /* c->obev may carry stray bytes after this response: never reuse */
	uint64_t bytes_out;
	struct timespec t0;
	const char *route;

	/* object reads through the cache (objread.c, hit.c) */
	bool is_cacheable;         /* a plain GET the cache may serve or fill */
	bool no_cache;             /* Cache-Control: no-cache: serve, but store nothing */
	char inm[300];             /* the ETag we asked the origin to confirm, or "" */
	/* "If-None-Match: <inm>\r\nIf-Unmodified-Since: <Last-Modified>\r\n" as sent to the
	 * origin (or a peer signature line) */
	char extra_hdr[512];
	bool redone;               /* resent once without our conditions (stale metadata) */
	struct cache_obj *obj;     /* committed entry awaiting the origin's 304 */
	struct cache_follower *fl; /* running fill awaiting the origin's 304 */
	struct cache_fill *fill;   /* the fill this exchange tees the origin body into */
	bool herd_leader;
	bool herd_waiting;
	bool herd_woken;
	struct herd_waiter herd;
	struct event *ev; /* wake-ups from other threads: herd release, fill progress */
	/* a body served from a cache file: [file_pos, file_end) of file_fd */
	bool serving_file;
	bool is_complete; /* the body being served is all on disk (a hit, not a follow) */
	uint64_t file_pos, file_end, body_offset;
	struct evbuffer_file_segment *seg;
	char origin_request_id[64];
	bool taken_over; /* the cache path answers; the origin's part is over */
	/* pre-staging: HEAD with Range: bytes=0-0 answers once the object is cached */
	bool prestage, prestage_waiting;
	struct bgfill_watch bgw;
	char *held_head;
	size_t held_len;
	struct splicer *sp; /* the body moves by splice (splice.c) */
	struct evbuffer *capture; /* a DeleteObjects body, kept to invalidate its keys */
	/* forwarding to the key's owner node (peerfwd.c) */
	struct peer_target fwd;
	bool fwd_active, fwd_tried;
	struct event *fwd_timer; /* re-checks the owner while its answer is awaited */
};

struct conn {
	struct worker *w;
	struct bufferevent *cbev; /* client */
	struct bufferevent *obev; /* origin, kept across requests while both sides allow */
	struct exchange *x;
	bool origin_reused;
	bool closing;
	bool client_read_paused;
	uint64_t head_started; /* ms (monotonic) the pending request head began arriving, or 0 */
	bool is_peer_port;       /* accepted on peer-listen: only signed peer requests */
	char obev_peer[PEERAUTH_NODE_MAX]; /* where obev goes: a peer's id, or "" (origin) */
	bool origin_read_paused;
	char peer[64];
};

/* proxy.c: the connection and the relay; the cache path calls back into these. */
void conn_accept(struct worker *w, int fd, const char *peer, bool is_peer_port);
/* Sends the request head to the origin, with extra header lines (each ending in CRLF,
 * or NULL) inserted before the empty line. Replies 502 itself on failure. */
int exchange_send_origin(struct conn *c, const char *extra);
/* The same to another node's peer port (peerfwd.c). */
int exchange_send_peer(struct conn *c, const struct peer_target *t, const char *extra);
void exchange_reply(struct conn *c, int status, const char *extra_headers, const char *body,
		    bool close_conn);
void exchange_relay(struct conn *c, const char *route);
void exchange_finish(struct conn *c);
void exchange_abort(struct conn *c, const char *why);
void exchange_reply_error(struct conn *c, int status, const char *code, const char *msg);
void exchange_close_after(struct conn *c);

/* objread.c: object reads through the cache. */
void objread_start(struct conn *c);
/* What the cache path makes of the origin's final response head to an object read. */
enum objread_verdict {
	OBJREAD_RELAY,	    /* relay the response to the client */
	OBJREAD_TAKEN,	    /* the cache path answers (the caller drains the head and stops) */
	OBJREAD_REDO,	    /* the answer is to our conditions: send the client's request again,
			     * as it came, on a fresh connection */
	OBJREAD_UNSERVABLE, /* a 304 for a copy that cannot be read now: answer 503 */
};
enum objread_verdict objread_response(struct conn *c, const char *buf, const struct http_msg *m);
/* Forget what the cache path added to the request, before it goes again (REDO). */
void objread_redo(struct conn *c);
/* Tee the body bytes about to be relayed into the running fill. */
void objread_tee(struct conn *c, struct evbuffer *src, size_t n);
/* The relayed body is complete (commit the fill) or failed (abort it). */
void objread_body_done(struct conn *c, bool ok);
void objread_cleanup(struct exchange *x);
void objread_tee_pipe(struct conn *c, int pr, int tr, int tw, size_t n);

/* splice.c: the rest of a Content-Length body from a plain upstream, by splice(2). */
#define SPLICE_MIN (256 * 1024) /* smaller bodies are not worth the pipes */
int splice_start(struct conn *c);
void splice_on_client_writable(struct conn *c);
void splice_free(struct splicer *sp);

/* invalidate.c: a write's final response head arrived (x->status set): on a 2xx that
 * can change the key, drop its cache entry. Call before the head goes to the client. */
void invalidate_on_write(struct conn *c);
/* DeleteObjects (its body kept in x->capture): drop every key it names, on a 2xx. */
#define MULTI_DELETE_BODY_MAX (2 * 1024 * 1024) /* 1000 keys of 1 KiB, with their XML */
void invalidate_multi_delete(struct conn *c);

/* peerfwd.c: reads whose owner is another node, and the peer port's own requests. */
bool peerfwd_try(struct conn *c);
/* The forward failed before its response started: 1 if the read restarted here. */
int peerfwd_fallback(struct conn *c);
/* Before the forward goes again on a fresh connection: a new signature (a nonce is good
 * once, and the owner may have seen the first). 0, or negative: do not resend. */
int peerfwd_resign(struct conn *c);
/* On the peer port: 0 if the request may go on, else it was answered (403 etc.). */
int peerfwd_admit(struct conn *c);
void peerfwd_invalidate(struct worker *w, const struct cache_key *k);
/* The exchange ends: count the forward's traffic, free its timer. */
void peerfwd_end(struct conn *c, struct exchange *x);

/* hit.c: serving a body from a cache file (committed, or growing under a fill). */
int hit_serve(struct conn *c, const struct http_msg *resp304);
void hit_pump(struct conn *c);

#endif

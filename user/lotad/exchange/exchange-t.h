/* Types of the exchange core: a client connection, the exchange (one request and its
 * response) it runs as an explicit state machine, the routes that plug into it and the
 * body movers it drives. Functions are in exchange.h; the transition table in fsm.h. */
#ifndef LOTA_EXCHANGE_T_H
#define LOTA_EXCHANGE_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "exchange/fsm.h"
#include "http-t.h"
#include "s3.h"

struct bufferevent;
struct evbuffer;
struct event;
struct worker;
struct exchange;
struct origin;
struct http_msg;
struct s3region_tap;

/* Bytes queued towards a slow side before we stop reading from the fast side. */
#define CONN_PIPE_HIGH (1024 * 1024)
#define EXPECT_WAIT_MS 1000 /* a body held for the origin's 100 goes after this anyway */
#define CONN_READ_MAX (256 * 1024)
/* Extra header lines a route adds to the request it sends upstream (If-None-Match and
 * If-Unmodified-Since, or a peer signature), CRLF-terminated. */
#define EXCHANGE_EXTRA_MAX 512
#define UPSTREAM_ID_MAX 64

/* Where an exchange's request goes: the origin, or another node's peer port. */
struct upstream_target {
	char id[UPSTREAM_ID_MAX]; /* "" for the origin, else the peer's node id */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

/* A route: how one kind of request is handled. Routes register with the core
 * (exchange_route_add) in the order they are asked; the core never names one. Every hook
 * but claims and start may be NULL. Private state goes in x->rt_priv. */
struct route {
	const char *name;
	void *arg;
	/* Is this request ours? (after classification: x->s3 is set) */
	bool (*claims)(struct exchange *x, void *arg);
	enum route_verdict (*start)(struct exchange *x, void *arg);
	/* The request left lotad (its socket took every byte) and its answer's head is not
	 * here yet: the route may do work of its own while the origin answers. */
	void (*on_sent)(struct exchange *x);
	/* The final response head from upstream (x->status and framing are set). */
	enum route_verdict (*on_head)(struct exchange *x, const struct http_msg *m, const char *raw);
	/* Response body bytes about to be relayed: the first n bytes of src. */
	void (*on_body)(struct exchange *x, struct evbuffer *src, size_t n);
	/* The same on the splice path: the n bytes in pipe pr, to tee into tw (drained by
	 * tr). NULL: the route cannot take spliced bytes, so the relay stays in user space. */
	void (*on_body_pipe)(struct exchange *x, int pr, int tr, int tw, size_t n);
	/* The relayed body is complete (an incomplete one ends with end()). */
	void (*on_body_end)(struct exchange *x);
	/* exchange_wake() was called (from any thread). */
	enum route_verdict (*on_wake)(struct exchange *x);
	/* The upstream failed before its response head: RT_REROUTE to handle the request
	 * another way, RT_FAIL to answer with the error (the core's default). */
	enum route_verdict (*on_upstream_error)(struct exchange *x, int err);
	/* The request goes again on a fresh connection (a stale keep-alive one): refresh
	 * what may be used once (a peer signature). Negative: do not resend. */
	int (*on_resend)(struct exchange *x);
	/* The exchange leaves this route (it ends, or is rerouted): free x->rt_priv. After
	 * it, nothing of the route may wake the exchange. */
	void (*end)(struct exchange *x);
};

/* What moves a response body the route serves itself (RT_SERVE). */
enum mover_result {
	MOVER_WAIT, /* more later: client writable, or exchange_wake() */
	MOVER_DONE, /* every byte is queued on the client's output */
	MOVER_CUT,  /* the body cannot be completed */
};

struct mover_ops {
	enum mover_result (*pump)(struct exchange *x, void *state);
	void (*free)(void *state);
};

struct conn;

/* What a connection asks of the layer above it (the exchange driver). */
struct conn_ops {
	/* Bytes arrived and no exchange runs: read a request head, start its exchange. */
	void (*on_head)(struct conn *c);
};

struct conn {
	struct worker *w;
	const struct conn_ops *ops;
	struct bufferevent *cbev; /* client */
	struct bufferevent *obev; /* upstream, kept across requests while both sides allow */
	char obev_id[UPSTREAM_ID_MAX]; /* where obev goes: "" (origin) or a peer's id */
	struct origin *obev_origin;    /* which origin, for "" */
	struct exchange *x;
	bool origin_reused;
	bool is_upstream_idle; /* obev finished an exchange cleanly and carries none now */
	bool closing;
	bool client_read_paused;
	bool origin_read_paused;
	bool is_peer_port; /* accepted on peer-listen: only signed peer requests */
	bool is_corked;	   /* TCP_CORK on cbev's socket (exchange_cork_client) */
	uint64_t head_started; /* ms (monotonic) the pending request head began arriving, or 0 */
	char peer[64];
};

/* Events recorded by libevent callbacks for the driver (x->events). */
enum {
	XE_UP_EOF = 1 << 0,
	XE_UP_ERROR = 1 << 1,
	XE_UP_TIMEOUT = 1 << 2,
	XE_WAKE = 1 << 3,
	XE_CLIENT_GONE = 1 << 4,    /* closed or failed */
	XE_CLIENT_STALLED = 1 << 5, /* stopped reading (write timeout) */
	XE_CLIENT_SILENT = 1 << 6,  /* sent nothing for client-timeout mid-request */
};

struct exchange {
	struct conn *c;
	/* The driver (exchange_run), reached through the exchange so that the files below it
	 * (their libevent callbacks) never name it. */
	void (*run)(struct exchange *x);
	enum xstate state;
	unsigned events;
	short tls_what; /* the last upstream error event, for its log line */
	bool is_running, is_rerun;
	const char *cut_why; /* why the answer was cut (XS_ABORT), for the log */

	char *head; /* the client's request head, as received */
	size_t head_len;
	struct http_msg req;
	struct s3_req s3;
	struct timespec t0;

	/* request body, client -> upstream */
	uint64_t req_left;
	struct http_chunked req_chunked;
	bool req_body_done;
	struct evbuffer *req_copy; /* a copy of the body a route asked to keep, or NULL */
	size_t req_copy_max;

	/* upstream */
	char up_err[160]; /* why the upstream connection failed (TLS or socket error) */
	struct upstream_target up; /* set by the route for RT_UPSTREAM */
	struct origin *origin;	   /* the bucket's origin, once the request went to it */
	char extra[EXCHANGE_EXTRA_MAX]; /* lines added to the head sent upstream */
	bool upstream_sent;
	bool is_sent_noted; /* the route's on_sent ran for the request sent last */
	bool upstream_spent; /* the upstream connection may carry stray bytes: never reuse */
	bool is_retried;
	bool has_upstream_continued; /* the upstream sent a 100 to this request */
	/* A body held for the origin's 100 goes after EXPECT_WAIT_MS anyway (radosgw reads
	 * some bodies without a 100): the timer, and whether it ran out. */
	struct event *expect_ev;
	bool is_expect_over;

	/* response */
	int status;
	enum http_body resp_body;
	uint64_t resp_left;
	struct http_chunked resp_chunked;
	bool resp_head_sent;
	bool resp_keep_alive;
	bool is_flushing; /* the body is queued: done once the client's socket took it */
	uint64_t bytes_out;
	const char *label; /* how the request was served, for the log: "hit", "miss", ... */
	/* the start of a 400's body, looked at for the bucket's region once relayed */
	struct s3region_tap *region_tap;

	/* an error answer of lotad's own (RT_FAIL, XS_REPLY) */
	int fail_status;
	const char *fail_code;
	char fail_msg[512];

	/* the route and its state */
	const struct route *rt;
	void *rt_priv;
	unsigned route_next; /* where the next routing starts (after a reroute) */
	struct event *wake_ev;

	/* the body mover */
	const struct mover_ops *mover;
	void *mover_state;
	struct splicer *sp;
};

#endif

/* The exchange's states and what moves it from one to the next: one table, no sockets, no
 * libevent, so that every transition is unit-tested (tests/unit/test_fsm.c). The driver
 * (exchange.c) runs the step of the current state, which returns an input; the table
 * says which state that input leads to. */
#ifndef LOTA_FSM_H
#define LOTA_FSM_H

#include <stdbool.h>

enum xstate {
	XS_INVALID,	/* no such transition (0, so that the table's empty cells say it) */
	XS_ROUTE,	/* a request head arrived: classify it, pick its route, start it */
	XS_SEND,	/* the request goes upstream: connect (or reuse) and send the head */
	XS_WAIT,	/* the route waits for another thread, a timer or a held answer */
	XS_UPSTREAM,	/* the head went upstream; its answer's head is awaited */
	XS_BODY_RELAY,	/* the answer's body moves through user space (evbuffers) */
	XS_BODY_SPLICE, /* ... socket to socket by splice(2), teed into the cache */
	XS_BODY_SERVE,	/* the route serves the body itself (a mover: a cache file, ...) */
	XS_REPLY,	/* lotad answers with an error of its own */
	XS_DONE,	/* complete: log it, keep the connection alive or close it */
	XS_ABORT,	/* the answer cannot be completed: cut the client's connection */
	XS__COUNT,
};

enum xinput {
	XI_WAIT,     /* nothing more to do until an event */
	XI_UPSTREAM, /* send the request upstream */
	XI_SENT,     /* the request head went upstream */
	XI_HOLD,     /* the route waits (RT_WAIT) */
	XI_RELAY,    /* the response head went to the client; its body follows */
	XI_SPLICE,   /* the rest of the body can move by splice */
	XI_SERVE,    /* the route wrote its head; its mover sends the body */
	XI_REDO,     /* send the request again (the route asked, or a stale connection) */
	XI_REROUTE,  /* route the request anew */
	XI_REPLIED,  /* a complete answer of lotad's own is queued */
	XI_FAIL,     /* answer with an error (or cut, if the answer already started) */
	XI_DONE,     /* the answer is complete */
	XI_CUT,      /* the answer cannot be completed */
	XI__COUNT,
};

/* What a route says at each of its hooks. */
enum route_verdict {
	RT_UPSTREAM, /* send the request upstream (x->up, with x->extra lines) */
	RT_WAIT,     /* wait for exchange_wake() (another thread, a timer, a held answer) */
	RT_RELAY,    /* (on_head) relay the response to the client as it is */
	RT_SERVE,    /* the route wrote its own response head and set a body mover */
	RT_REDO,     /* (on_head) send the client's request again, as it came */
	RT_REROUTE,  /* leave this route: route the request anew, from the next route on */
	RT_REPLIED,  /* the route queued a complete answer of its own */
	RT_FAIL,     /* answer with the error set by exchange_fail() */
};

/* The input a route's verdict is to the table. */
enum xinput fsm_input_of(enum route_verdict v);
/* The state input leads to from state s, or XS_INVALID if it cannot happen there (a
 * bug: the driver cuts the connection and logs it). XI_WAIT keeps the state. */
enum xstate fsm_next(enum xstate s, enum xinput in);
bool fsm_is_terminal(enum xstate s);
const char *fsm_state_name(enum xstate s);
const char *fsm_input_name(enum xinput in);

#endif

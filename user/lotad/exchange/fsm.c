/* The exchange's transition table. A row per state; an input missing from a row (a zero
 * cell: XS_INVALID) cannot happen in that state. Cutting the client (XI_CUT) and failing
 * are possible from every state that has not ended: a client may vanish, and lotad may
 * fail, at any moment. */
#include "exchange/fsm.h"

#define ANY_LIVE [XI_CUT] = XS_ABORT, [XI_FAIL] = XS_REPLY

static const enum xstate next[XS__COUNT][XI__COUNT] = {
	[XS_ROUTE] = {ANY_LIVE, [XI_UPSTREAM] = XS_SEND, [XI_HOLD] = XS_WAIT,
		      [XI_SERVE] = XS_BODY_SERVE, [XI_REPLIED] = XS_DONE, [XI_REROUTE] = XS_ROUTE},
	[XS_SEND] = {ANY_LIVE, [XI_SENT] = XS_UPSTREAM, [XI_REROUTE] = XS_ROUTE},
	[XS_WAIT] = {ANY_LIVE, [XI_UPSTREAM] = XS_SEND, [XI_SERVE] = XS_BODY_SERVE,
		     [XI_REPLIED] = XS_DONE, [XI_REROUTE] = XS_ROUTE, [XI_HOLD] = XS_WAIT},
	[XS_UPSTREAM] = {ANY_LIVE, [XI_RELAY] = XS_BODY_RELAY, [XI_SERVE] = XS_BODY_SERVE,
			 [XI_HOLD] = XS_WAIT, [XI_REDO] = XS_SEND, [XI_REROUTE] = XS_ROUTE,
			 [XI_REPLIED] = XS_DONE, [XI_DONE] = XS_DONE},
	[XS_BODY_RELAY] = {ANY_LIVE, [XI_SPLICE] = XS_BODY_SPLICE, [XI_DONE] = XS_DONE},
	[XS_BODY_SPLICE] = {ANY_LIVE, [XI_DONE] = XS_DONE},
	[XS_BODY_SERVE] = {ANY_LIVE, [XI_DONE] = XS_DONE},
	[XS_REPLY] = {[XI_REPLIED] = XS_DONE, [XI_CUT] = XS_ABORT},
};

enum xstate fsm_next(enum xstate s, enum xinput in)
{
	if (s == XS_INVALID || s >= XS__COUNT || in >= XI__COUNT || fsm_is_terminal(s))
		return XS_INVALID;
	return in == XI_WAIT ? s : next[s][in];
}

enum xinput fsm_input_of(enum route_verdict v)
{
	static const enum xinput in[] = {
		[RT_UPSTREAM] = XI_UPSTREAM, [RT_WAIT] = XI_HOLD,	  [RT_RELAY] = XI_RELAY,
		[RT_SERVE] = XI_SERVE,	     [RT_REDO] = XI_REDO,	  [RT_REROUTE] = XI_REROUTE,
		[RT_REPLIED] = XI_REPLIED,   [RT_FAIL] = XI_FAIL,
	};

	return (unsigned)v < sizeof(in) / sizeof(in[0]) ? in[v] : XI_FAIL;
}

bool fsm_is_terminal(enum xstate s)
{
	return s == XS_DONE || s == XS_ABORT;
}

const char *fsm_state_name(enum xstate s)
{
	static const char *const names[] = {"INVALID", "ROUTE", "SEND", "WAIT", "UPSTREAM", "BODY_RELAY",
					    "BODY_SPLICE", "BODY_SERVE", "REPLY", "DONE", "ABORT"};

	return s < XS__COUNT ? names[s] : "INVALID";
}

const char *fsm_input_name(enum xinput in)
{
	static const char *const names[] = {"WAIT", "UPSTREAM", "SENT", "HOLD", "RELAY",
					    "SPLICE", "SERVE", "REDO", "REROUTE", "REPLIED",
					    "FAIL", "DONE", "CUT"};

	return in < XI__COUNT ? names[in] : "?";
}

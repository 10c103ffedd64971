/* The exchange's state machine without sockets (user/lotad/exchange/fsm.c): every cell
 * of the transition table against a table written here from the design, the verdicts
 * routes give, and whole request lives as sequences of inputs and the states they pass. */
#include "unit.h"
#include <stdio.h>
#include <string.h>

#include "exchange/fsm.h"

/* The design, cell by cell: what may happen in each state. A cell not listed is a bug. */
struct cell {
	enum xstate s;
	enum xinput in;
	enum xstate want;
};

static const struct cell design[] = {
	/* a head arrived: its route starts */
	{XS_ROUTE, XI_UPSTREAM, XS_SEND},	  {XS_ROUTE, XI_HOLD, XS_WAIT},
	{XS_ROUTE, XI_SERVE, XS_BODY_SERVE},	  {XS_ROUTE, XI_REPLIED, XS_DONE},
	{XS_ROUTE, XI_REROUTE, XS_ROUTE},	  {XS_ROUTE, XI_FAIL, XS_REPLY},
	{XS_ROUTE, XI_CUT, XS_ABORT},
	/* sending upstream */
	{XS_SEND, XI_SENT, XS_UPSTREAM},	  {XS_SEND, XI_REROUTE, XS_ROUTE},
	{XS_SEND, XI_FAIL, XS_REPLY},		  {XS_SEND, XI_CUT, XS_ABORT},
	/* waiting for another thread */
	{XS_WAIT, XI_UPSTREAM, XS_SEND},	  {XS_WAIT, XI_SERVE, XS_BODY_SERVE},
	{XS_WAIT, XI_REPLIED, XS_DONE},		  {XS_WAIT, XI_REROUTE, XS_ROUTE},
	{XS_WAIT, XI_HOLD, XS_WAIT},		  {XS_WAIT, XI_FAIL, XS_REPLY},
	{XS_WAIT, XI_CUT, XS_ABORT},
	/* the answer's head */
	{XS_UPSTREAM, XI_RELAY, XS_BODY_RELAY},	  {XS_UPSTREAM, XI_SERVE, XS_BODY_SERVE},
	{XS_UPSTREAM, XI_HOLD, XS_WAIT},	  {XS_UPSTREAM, XI_REDO, XS_SEND},
	{XS_UPSTREAM, XI_REROUTE, XS_ROUTE},	  {XS_UPSTREAM, XI_REPLIED, XS_DONE},
	{XS_UPSTREAM, XI_DONE, XS_DONE},	  {XS_UPSTREAM, XI_FAIL, XS_REPLY},
	{XS_UPSTREAM, XI_CUT, XS_ABORT},
	/* bodies */
	{XS_BODY_RELAY, XI_SPLICE, XS_BODY_SPLICE}, {XS_BODY_RELAY, XI_DONE, XS_DONE},
	{XS_BODY_RELAY, XI_FAIL, XS_REPLY},	  {XS_BODY_RELAY, XI_CUT, XS_ABORT},
	{XS_BODY_SPLICE, XI_DONE, XS_DONE},	  {XS_BODY_SPLICE, XI_FAIL, XS_REPLY},
	{XS_BODY_SPLICE, XI_CUT, XS_ABORT},	  {XS_BODY_SERVE, XI_DONE, XS_DONE},
	{XS_BODY_SERVE, XI_FAIL, XS_REPLY},	  {XS_BODY_SERVE, XI_CUT, XS_ABORT},
	/* an error of lotad's own: answered, or cut if the answer had started */
	{XS_REPLY, XI_REPLIED, XS_DONE},	  {XS_REPLY, XI_CUT, XS_ABORT},
};

static enum xstate designed(enum xstate s, enum xinput in)
{
	if (in == XI_WAIT && !fsm_is_terminal(s) && s != XS_INVALID)
		return s;
	for (size_t i = 0; i < sizeof(design) / sizeof(design[0]); i++)
		if (design[i].s == s && design[i].in == in)
			return design[i].want;
	return XS_INVALID;
}

static void test_every_cell(void)
{
	for (int s = 0; s < XS__COUNT; s++) {
		for (int in = 0; in < XI__COUNT; in++) {
			enum xstate got = fsm_next((enum xstate)s, (enum xinput)in);
			enum xstate want = designed((enum xstate)s, (enum xinput)in);

			if (got != want)
				fprintf(stderr, "\n%s --%s--> %s, designed %s\n", fsm_state_name(s),
					fsm_input_name(in), fsm_state_name(got), fsm_state_name(want));
			CU_ASSERT_EQUAL(got, want);
		}
	}
}

static void test_terminal_and_bounds(void)
{
	CU_ASSERT(fsm_is_terminal(XS_DONE));
	CU_ASSERT(fsm_is_terminal(XS_ABORT));
	CU_ASSERT(!fsm_is_terminal(XS_UPSTREAM));
	for (int in = 0; in < XI__COUNT; in++) {
		CU_ASSERT_EQUAL(fsm_next(XS_DONE, (enum xinput)in), XS_INVALID);
		CU_ASSERT_EQUAL(fsm_next(XS_ABORT, (enum xinput)in), XS_INVALID);
	}
	CU_ASSERT_EQUAL(fsm_next(XS__COUNT, XI_DONE), XS_INVALID);
	CU_ASSERT_EQUAL(fsm_next(XS_ROUTE, XI__COUNT), XS_INVALID);
	CU_ASSERT_STRING_EQUAL(fsm_state_name(XS__COUNT), "INVALID");
	CU_ASSERT_STRING_EQUAL(fsm_input_name(XI__COUNT), "?");
}

static void test_verdicts(void)
{
	static const struct {
		enum route_verdict v;
		enum xinput in;
	} map[] = {
		{RT_UPSTREAM, XI_UPSTREAM}, {RT_WAIT, XI_HOLD},	      {RT_RELAY, XI_RELAY},
		{RT_SERVE, XI_SERVE},	    {RT_REDO, XI_REDO},	      {RT_REROUTE, XI_REROUTE},
		{RT_REPLIED, XI_REPLIED},   {RT_FAIL, XI_FAIL},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		CU_ASSERT_EQUAL(fsm_input_of(map[i].v), map[i].in);
	CU_ASSERT_EQUAL(fsm_input_of((enum route_verdict)99), XI_FAIL);
}

/* A request's life: inputs in, the states it passes out ("" ends a list). */
struct life {
	const char *name;
	enum xinput in[12];
	enum xstate through[12];
	int n;
};

static const struct life lives[] = {
	{"hit: the origin's 304, served from a cache file",
	 {XI_UPSTREAM, XI_SENT, XI_WAIT, XI_SERVE, XI_WAIT, XI_DONE},
	 {XS_SEND, XS_UPSTREAM, XS_UPSTREAM, XS_BODY_SERVE, XS_BODY_SERVE, XS_DONE}, 6},
	{"miss: relayed, then spliced to the end",
	 {XI_UPSTREAM, XI_SENT, XI_RELAY, XI_SPLICE, XI_DONE},
	 {XS_SEND, XS_UPSTREAM, XS_BODY_RELAY, XS_BODY_SPLICE, XS_DONE}, 5},
	{"herd: wait for the leader, then validate",
	 {XI_HOLD, XI_WAIT, XI_UPSTREAM, XI_SENT, XI_SERVE, XI_DONE},
	 {XS_WAIT, XS_WAIT, XS_SEND, XS_UPSTREAM, XS_BODY_SERVE, XS_DONE}, 6},
	{"stale keep-alive connection: sent again",
	 {XI_UPSTREAM, XI_SENT, XI_REDO, XI_SENT, XI_RELAY, XI_DONE},
	 {XS_SEND, XS_UPSTREAM, XS_SEND, XS_UPSTREAM, XS_BODY_RELAY, XS_DONE}, 6},
	{"owner unreachable: the read comes back here",
	 {XI_UPSTREAM, XI_REROUTE, XI_UPSTREAM, XI_SENT, XI_SERVE, XI_DONE},
	 {XS_SEND, XS_ROUTE, XS_SEND, XS_UPSTREAM, XS_BODY_SERVE, XS_DONE}, 6},
	{"owner frozen: given up while its answer is awaited",
	 {XI_UPSTREAM, XI_SENT, XI_WAIT, XI_REROUTE, XI_UPSTREAM, XI_SENT, XI_RELAY, XI_DONE},
	 {XS_SEND, XS_UPSTREAM, XS_UPSTREAM, XS_ROUTE, XS_SEND, XS_UPSTREAM, XS_BODY_RELAY,
	  XS_DONE}, 8},
	{"pre-stage: the origin's answer held until the object is cached",
	 {XI_UPSTREAM, XI_SENT, XI_HOLD, XI_WAIT, XI_REPLIED},
	 {XS_SEND, XS_UPSTREAM, XS_WAIT, XS_WAIT, XS_DONE}, 5},
	{"stale headers: 412 to our conditions, the request again as it came",
	 {XI_UPSTREAM, XI_SENT, XI_REDO, XI_SENT, XI_RELAY, XI_DONE},
	 {XS_SEND, XS_UPSTREAM, XS_SEND, XS_UPSTREAM, XS_BODY_RELAY, XS_DONE}, 6},
	{"origin down: 502 before anything was sent",
	 {XI_UPSTREAM, XI_FAIL, XI_REPLIED}, {XS_SEND, XS_REPLY, XS_DONE}, 3},
	{"origin dies mid-body: the client is cut",
	 {XI_UPSTREAM, XI_SENT, XI_RELAY, XI_CUT}, {XS_SEND, XS_UPSTREAM, XS_BODY_RELAY, XS_ABORT}, 4},
	{"an error after the head: cut, never an error body appended",
	 {XI_UPSTREAM, XI_SENT, XI_RELAY, XI_FAIL, XI_CUT},
	 {XS_SEND, XS_UPSTREAM, XS_BODY_RELAY, XS_REPLY, XS_ABORT}, 5},
	{"a HEAD: the answer has no body", {XI_UPSTREAM, XI_SENT, XI_DONE},
	 {XS_SEND, XS_UPSTREAM, XS_DONE}, 3},
	{"the peer port: a probe answered by the gate", {XI_REPLIED}, {XS_DONE}, 1},
	{"the peer port: a read goes on to the cache path",
	 {XI_REROUTE, XI_UPSTREAM, XI_SENT, XI_SERVE, XI_DONE},
	 {XS_ROUTE, XS_SEND, XS_UPSTREAM, XS_BODY_SERVE, XS_DONE}, 5},
	{"bad Host: 400", {XI_FAIL, XI_REPLIED}, {XS_REPLY, XS_DONE}, 2},
	{"client gone while waiting in a herd", {XI_HOLD, XI_CUT}, {XS_WAIT, XS_ABORT}, 2},
};

static void test_lives(void)
{
	for (size_t i = 0; i < sizeof(lives) / sizeof(lives[0]); i++) {
		const struct life *l = &lives[i];
		enum xstate s = XS_ROUTE;

		for (int k = 0; k < l->n; k++) {
			s = fsm_next(s, l->in[k]);
			if (s != l->through[k])
				fprintf(stderr, "\n%s: step %d (%s) gave %s, want %s\n", l->name, k,
					fsm_input_name(l->in[k]), fsm_state_name(s),
					fsm_state_name(l->through[k]));
			CU_ASSERT_EQUAL(s, l->through[k]);
		}
		CU_ASSERT(fsm_is_terminal(s));
	}
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"every cell of the table", test_every_cell},
	    {"terminal states and bounds", test_terminal_and_bounds},
	    {"route verdicts", test_verdicts},
	    {"whole request lives", test_lives},
	};

	return UNIT_RUN("fsm", NULL, NULL, tests);
}

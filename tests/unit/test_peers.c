/* Unit tests for user/peers.c and user/peerprobe.c: the `peers` key, the health state
 * machine with flap damping, placement through the published view, worker reports,
 * self detection, metrics and JSON; and one real probe round over loopback. */
#include "unit.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "http.h"
#include "netaddr.h"
#include "cluster/peers-int.h"

static char err[256];

static void test_parse_spec(void)
{
	static const char *const bad[] = {
	    "10.0.0.1",	     "10.0.0.1:",    "10.0.0.1:0",  "10.0.0.1:65536",
	    ":8081",	     "10.0.0.1:80a", "a,,b",	    "10.0.0.1:1,10.0.0.1:1",
	    "[fd00::1]8081", "[]:1",	     "[fd00::g]:1", "host name:1",
	    "dns:",	     "dns:name",     "dns:name:",   "dns:[::1]:80",
	    "dns:a b:80",    "a:1:2",
	};
	struct peers_spec s;
	char many[PEERS_MAX * 20 + 40] = "";

	CU_ASSERT_EQUAL(peers_parse_spec("", &s, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(s.n, 0);
	CU_ASSERT_EQUAL_FATAL(
	    peers_parse_spec(" 10.0.0.1:8081, node-2.lota.svc:8081 ,[fd00::1]:8081,", &s, err,
			     sizeof(err)),
	    0);
	CU_ASSERT_FALSE(s.is_dns);
	CU_ASSERT_EQUAL_FATAL(s.n, 3);
	CU_ASSERT_STRING_EQUAL(s.entries[0], "10.0.0.1:8081");
	CU_ASSERT_STRING_EQUAL(s.entries[1], "node-2.lota.svc:8081");
	CU_ASSERT_STRING_EQUAL(s.entries[2], "[fd00::1]:8081");
	CU_ASSERT_EQUAL_FATAL(
	    peers_parse_spec("dns:lota-peers.lota.svc.cluster.local:8081", &s, err, sizeof(err)),
	    0);
	CU_ASSERT_TRUE(s.is_dns);
	CU_ASSERT_STRING_EQUAL(s.dns_name, "lota-peers.lota.svc.cluster.local");
	CU_ASSERT_STRING_EQUAL(s.dns_port, "8081");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(peers_parse_spec(bad[i], &s, err, sizeof(err)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "peers: "));
	}
	for (int i = 0; i <= PEERS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s10.0.%d.%d:1",
			 i ? "," : "", i / 250, i % 250);
	CU_ASSERT_EQUAL(peers_parse_spec(many, &s, err, sizeof(err)), -E2BIG);
}

static void test_health_basic(void)
{
	struct peer_health h = {0};
	time_t t = 1000;

	CU_ASSERT_FALSE(peer_health_observe(&h, true, t++));
	CU_ASSERT_TRUE(peer_health_observe(&h, true, t++));
	CU_ASSERT_TRUE(h.is_up);
	/* two failures and a success: still up; three in a row: down */
	CU_ASSERT_FALSE(peer_health_observe(&h, false, t++));
	CU_ASSERT_FALSE(peer_health_observe(&h, false, t++));
	CU_ASSERT_FALSE(peer_health_observe(&h, true, t++));
	CU_ASSERT_FALSE(peer_health_observe(&h, false, t++));
	CU_ASSERT_FALSE(peer_health_observe(&h, false, t++));
	CU_ASSERT_TRUE(h.is_up);
	CU_ASSERT_TRUE(peer_health_observe(&h, false, t++));
	CU_ASSERT_FALSE(h.is_up);
	CU_ASSERT_EQUAL(h.flaps, 1);
	CU_ASSERT_FALSE(h.is_suppressed);
	/* one success is not enough to come back */
	CU_ASSERT_FALSE(peer_health_observe(&h, true, t++));
	CU_ASSERT_TRUE(peer_health_observe(&h, true, t++));
	/* a failed forward takes it down at once, and it needs two probes again */
	CU_ASSERT_TRUE(peer_health_fail(&h, t));
	CU_ASSERT_FALSE(peer_health_fail(&h, t));
	CU_ASSERT_FALSE(h.is_up);
	CU_ASSERT_FALSE(peer_health_observe(&h, true, t++));
	CU_ASSERT_TRUE(peer_health_observe(&h, true, t++));
}

static void flap(struct peer_health *h, time_t *t)
{
	peer_health_observe(h, true, (*t)++);
	peer_health_observe(h, true, (*t)++);
	peer_health_fail(h, (*t)++);
}

static void test_health_damping(void)
{
	struct peer_health h = {0};
	time_t t = 5000, start;
	unsigned p0;

	/* the penalty halves in about PEER_FLAP_HALF_LIFE_S */
	h.penalty = 2000;
	h.penalty_at = t;
	p0 = peer_health_penalty(&h, t + PEER_FLAP_HALF_LIFE_S);
	CU_ASSERT(p0 > 950 && p0 < 1050);
	CU_ASSERT_EQUAL(peer_health_penalty(&h, t + 3600), 0);

	memset(&h, 0, sizeof(h));
	flap(&h, &t);
	flap(&h, &t);
	CU_ASSERT_FALSE(h.is_suppressed);
	flap(&h, &t); /* three falls in nine seconds */
	CU_ASSERT_TRUE(h.is_suppressed);
	CU_ASSERT_EQUAL(h.flaps, 3);
	/* it answers every probe, yet stays down while the penalty is high */
	start = t;
	while (!h.is_up && t < start + 600)
		peer_health_observe(&h, true, t++);
	CU_ASSERT_TRUE(h.is_up);
	CU_ASSERT_FALSE(h.is_suppressed);
	CU_ASSERT(t - start > 20 && t - start < 90);
	printf("\n    suppressed for %lld s after 3 flaps in 9 s", (long long)(t - start));
	/* a peer flapping for an hour is back within PEER_FLAP_MAX's reach once it stops */
	for (int i = 0; i < 600; i++)
		flap(&h, &t);
	start = t;
	while (!h.is_up && t < start + 600)
		peer_health_observe(&h, true, t++);
	CU_ASSERT(t - start < 90);
	/* falling is never damped */
	CU_ASSERT_TRUE(h.is_up);
	CU_ASSERT_FALSE(peer_health_observe(&h, false, t++));
	CU_ASSERT_FALSE(peer_health_observe(&h, false, t++));
	CU_ASSERT_TRUE(peer_health_observe(&h, false, t++));
}

static struct peers *cluster(const char *list, const char *self, const char *listen)
{
	struct peers_opts o = {.peers = list, .self = self, .peer_listen = listen};
	struct peers *p = NULL;

	CU_ASSERT_EQUAL(peers_new(&o, &p, err, sizeof(err)), 0);
	return p;
}

/* How many of nkeys each member owns, by id; returns the keys owned here. */
static unsigned owners(struct peers *p, unsigned nkeys, const char *id, unsigned *of_id)
{
	unsigned here = 0;

	*of_id = 0;
	for (unsigned k = 0; k < nkeys; k++) {
		char key[32];
		struct peer_target t;
		int len = snprintf(key, sizeof(key), "bkt\nobj-%u\n", k);

		if (peers_owner(p, key, (size_t)len, &t) == 0)
			here++;
		else if (strcmp(t.id, id) == 0)
			(*of_id)++;
	}
	return here;
}

static void test_placement(void)
{
	struct peers *p =
	    cluster("127.0.0.1:7001, 127.0.0.1:7002,127.0.0.1:7003", "127.0.0.1:7001", "");
	time_t t = peers_now();
	struct evbuffer *b = evbuffer_new();
	struct peer_target tg;
	unsigned here, two, three;
	char self[PEERAUTH_NODE_MAX], *text;

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	peers_self(p, self, sizeof(self));
	CU_ASSERT_STRING_EQUAL(self, "127.0.0.1:7001");
	/* peers not probed yet are down: everything is handled here */
	CU_ASSERT_EQUAL(owners(p, 3000, "127.0.0.1:7002", &two), 3000);
	peers_observe(p, "127.0.0.1:7002", true, t);
	peers_observe(p, "127.0.0.1:7002", true, t);
	here = owners(p, 3000, "127.0.0.1:7002", &two);
	CU_ASSERT(here > 1350 && here < 1650);
	CU_ASSERT_EQUAL(here + two, 3000);
	peers_observe(p, "127.0.0.1:7003", true, t);
	peers_observe(p, "127.0.0.1:7003", true, t);
	here = owners(p, 3000, "127.0.0.1:7003", &three);
	CU_ASSERT(here > 900 && here < 1100);
	CU_ASSERT(three > 900 && three < 1100);
	CU_ASSERT_EQUAL(p->membership_changes, 2);
	/* a chunk's placement key is "bucket/key\0version\0index", the same on every node */
	for (unsigned k = 0; k < 200; k++) {
		char key[32], full[64];
		struct peer_target a = {.id = ""}, b = {.id = ""};
		int n;

		snprintf(key, sizeof(key), "d/obj-%u", k % 20);
		n = snprintf(full, sizeof(full), "bkt/%s%cv%u%c%u", key, 0, k % 2, 0, k / 40);
		snprintf(self, sizeof(self), "v%u", k % 2);
		CU_ASSERT_EQUAL(peers_chunk_owner(p, "bkt", key, self, k / 40, &a),
				peers_owner(p, full, (size_t)n, &b));
		CU_ASSERT_STRING_EQUAL(a.id, b.id);
	}
	/* so one object's chunks spread over every live member */
	{
		unsigned count[3] = {0};

		for (unsigned i = 0; i < 300; i++) {
			struct peer_target a = {.id = ""};

			if (peers_chunk_owner(p, "bkt", "big", "", i, &a) == 0)
				count[0]++;
			else
				count[strcmp(a.id, "127.0.0.1:7002") == 0 ? 1 : 2]++;
		}
		CU_ASSERT(count[0] > 75 && count[1] > 75 && count[2] > 75);
	}

	/* a worker reports 7003 unreachable: its keys come home, the others stay put */
	CU_ASSERT_EQUAL_FATAL(peers_owner(p, "bkt\nobj-1\n", 10, &tg) >= 0, true);
	for (unsigned k = 0;; k++) {
		char key[32];
		int len = snprintf(key, sizeof(key), "bkt\nobj-%u\n", k);

		if (peers_owner(p, key, (size_t)len, &tg) == 1 &&
		    strcmp(tg.id, "127.0.0.1:7003") == 0)
			break;
	}
	peers_count_sent(p, &tg, 1000);
	peers_report_unreachable(p, &tg);
	peers_apply_reports(p, t);
	CU_ASSERT(owners(p, 3000, "127.0.0.1:7003", &three) > here);
	CU_ASSERT_EQUAL(three, 0);
	CU_ASSERT_EQUAL(owners(p, 3000, "127.0.0.1:7002", &two) + two, 3000);
	CU_ASSERT_EQUAL(p->membership_changes, 3);
	peers_count_served(p);

	peers_render_metrics(p, b);
	evbuffer_add(b, "", 1);
	text = (char *)evbuffer_pullup(b, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "lota_peer_requests_sent 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "lota_peer_requests_served 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "lota_peer_fallbacks 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "lota_membership_changes 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "lota_peers_members 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "lota_peers_up 2\n"));
	evbuffer_drain(b, evbuffer_get_length(b));
	peers_render_json(p, b);
	evbuffer_add(b, "", 1);
	text = (char *)evbuffer_pullup(b, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"mode\":\"static\",\"self\":\"127.0.0.1:7001\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(
	    text, "{\"id\":\"127.0.0.1:7001\",\"state\":\"self\",\"self\":true,\"share\":0.5"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "{\"id\":\"127.0.0.1:7003\",\"state\":\"down\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"sent\":1,\"sent_bytes\":1000,\"fallbacks\":1}"));

	/* membership changes: 7002 leaves, 7004 joins (down until probed), 7001 keeps its state */
	{
		struct sockaddr_storage a[3];
		socklen_t len;

		addr_parse("127.0.0.1:7001", &a[0], &len);
		addr_parse("127.0.0.1:7003", &a[1], &len);
		addr_parse("127.0.0.1:7004", &a[2], &len);
		CU_ASSERT_EQUAL(peers_set_members(p, a, 3, t), 2);
		peers_publish(p);
		CU_ASSERT_EQUAL(owners(p, 3000, "127.0.0.1:7002", &two), 3000);
	}
	evbuffer_free(b);
	peers_free(p);
}

static void test_self_detection(void)
{
	struct peers *p;
	char self[PEERAUTH_NODE_MAX];

	CU_ASSERT_PTR_NULL(cluster("", "", ""));
	/* peer-listen on a wildcard: self is the member at one of our addresses on its port */
	p = cluster("10.255.255.1:7001,127.0.0.1:7002,127.0.0.1:7001", "", "0.0.0.0:7001");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	peers_self(p, self, sizeof(self));
	CU_ASSERT_STRING_EQUAL(self, "127.0.0.1:7001");
	CU_ASSERT_FALSE(p->m[0]->is_self);
	CU_ASSERT_FALSE(p->m[1]->is_self);
	CU_ASSERT_TRUE(p->m[2]->is_self);
	peers_free(p);
	/* peer-listen on one address names this node */
	p = cluster("127.0.0.1:7001,127.0.0.1:7002", "", "127.0.0.1:7002");
	peers_self(p, self, sizeof(self));
	CU_ASSERT_STRING_EQUAL(self, "127.0.0.1:7002");
	peers_free(p);
	/* not a member (a DNS answer without us yet): we own nothing, we forward */
	p = cluster("127.0.0.1:7002", "127.0.0.1:7009", "");
	peers_observe(p, "127.0.0.1:7002", true, 1);
	peers_observe(p, "127.0.0.1:7002", true, 2);
	{
		struct peer_target t;

		CU_ASSERT_EQUAL(peers_owner(p, "k", 1, &t), 1);
		CU_ASSERT_STRING_EQUAL(t.id, "127.0.0.1:7002");
		CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&t.addr)->sin_port), 7002);
		CU_ASSERT_EQUAL(peers_chunk_owner(p, "bkt", "dir/obj", NULL, 3, &t), 1);
	}
	peers_free(p);
	CU_ASSERT_EQUAL(peers_new(&(struct peers_opts){.peers = "127.0.0.1:1", .self = "x"}, &p,
				  err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "self:"));
	CU_ASSERT_EQUAL(peers_owner(NULL, "k", 1, NULL), 0);
}

/* One probe round over loopback: a peer that answers 200 to a signed probe is up after
 * two periods; one on a closed port is not; the probe carries a valid signature. */
static struct peerauth *probe_auth;
static int probes_seen, probes_signed;

static void srv_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	char *head = (char *)evbuffer_pullup(in, -1);
	struct http_msg m;
	struct peerauth_req r;
	const struct http_str *v;
	char node[PEERAUTH_NODE_MAX];

	if (http_parse_request(head, len, &m) < 0)
		return;
	probes_seen++;
	if (peerauth_req_of(&m, &r, &v) == 0 &&
	    peerauth_verify(probe_auth, &r, v, time(NULL), node, sizeof(node)) == 0 &&
	    strcmp(node, "127.0.0.1:7101") == 0 && http_str_eq(&r.target, PEERS_PROBE_PATH))
		probes_signed++;
	evbuffer_drain(in, len);
	evbuffer_add_printf(bufferevent_get_output(bev),
			    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

static void srv_event(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

static void srv_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		       void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(arg, fd, BEV_OPT_CLOSE_ON_FREE);

	bufferevent_setcb(bev, srv_read, NULL, srv_event, NULL);
	bufferevent_enable(bev, EV_READ);
}

static void stop(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* An unused loopback port: bound, read back, closed. */
static int free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	return ntohs(sin.sin_port);
}

static void test_probes(void)
{
	struct event_base *base = event_base_new();
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sin);
	struct evconnlistener *l;
	struct timeval tv = {2, 600000};
	struct peers_opts o = {.self = "127.0.0.1:7101"};
	struct peers *p = NULL;
	char path[] = "/tmp/test_peers.XXXXXX", list[128];
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, "probe-secret-0123456789\n", 24) == 24);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(peerauth_open(path, &probe_auth, err, sizeof(err)), 0);
	o.auth = probe_auth;
	l = evconnlistener_new_bind(base, srv_accept, base, LEV_OPT_CLOSE_ON_FREE, 16,
				    (struct sockaddr *)&sin, sizeof(sin));
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &slen);
	snprintf(list, sizeof(list), "127.0.0.1:7101,127.0.0.1:%d,127.0.0.1:%d",
		 ntohs(sin.sin_port), free_port());
	o.peers = list;
	CU_ASSERT_EQUAL_FATAL(peers_new(&o, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(peers_start(p, base), 0);
	event_base_once(base, -1, EV_TIMEOUT, stop, base, &tv);
	event_base_dispatch(base);
	CU_ASSERT_TRUE(p->m[1]->h.is_up);
	CU_ASSERT_FALSE(p->m[2]->h.is_up);
	CU_ASSERT(p->m[2]->probes_failed >= 2);
	CU_ASSERT(probes_seen >= 2);
	CU_ASSERT_EQUAL(probes_signed, probes_seen);
	CU_ASSERT_EQUAL(p->membership_changes, 1);
	peers_free(p);
	evconnlistener_free(l);
	event_base_free(base);
	peerauth_free(probe_auth);
	unlink(path);
}

/* dns mode: the members are what the name resolves to (here through /etc/hosts). */
static void test_dns_members(void)
{
	struct event_base *base = event_base_new();
	struct peers_opts o = {.peers = "dns:localhost:7201", .self = "127.0.0.1:7201"};
	struct timeval tv = {0, 500000};
	struct peers *p = NULL;
	char self[PEERAUTH_NODE_MAX];

	CU_ASSERT_EQUAL_FATAL(peers_new(&o, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p->n, 0);
	CU_ASSERT_EQUAL_FATAL(peers_start(p, base), 0);
	event_base_once(base, -1, EV_TIMEOUT, stop, base, &tv);
	event_base_dispatch(base);
	CU_ASSERT_FATAL(p->n >= 1);
	for (size_t i = 0; i < p->n; i++) /* and [::1]:7201 where hosts lists it */
		CU_ASSERT_EQUAL(p->m[i]->is_self, strcmp(p->m[i]->id, "127.0.0.1:7201") == 0);
	peers_self(p, self, sizeof(self));
	CU_ASSERT_STRING_EQUAL(self, "127.0.0.1:7201");
	peers_free(p);
	event_base_free(base);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"the peers key", test_parse_spec},
	    {"health: up after 2, down after 3", test_health_basic},
	    {"health: flap damping", test_health_damping},
	    {"placement, reports, metrics, JSON", test_placement},
	    {"self detection", test_self_detection},
	    {"probes over loopback", test_probes},
	    {"dns members", test_dns_members},
	};

	return UNIT_RUN("peers", NULL, NULL, tests);
}

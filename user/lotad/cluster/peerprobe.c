/* The control thread's side of peers: setup from the configuration, the one-second tick
 * (reports from workers, DNS re-resolution, the cluster secret's reload), health probes
 * over bufferevents, and the /admin/peers handler. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>

#include "log.h"
#include "netaddr.h"
#include "cluster/peers-int.h"

static int canonical(const char *hostport, char *id, size_t idlen, struct sockaddr_storage *ss)
{
	struct sockaddr_storage tmp;
	socklen_t len;

	if (!ss)
		ss = &tmp;
	if (addr_parse(hostport, ss, &len) < 0)
		return -EINVAL;
	if (id)
		addr_str((struct sockaddr *)ss, id, idlen);
	return 0;
}

static int setup_self(struct peers *p, const struct peers_opts *o, char *err, size_t errlen)
{
	struct sockaddr_storage ss;

	if (o->self && o->self[0] &&
	    canonical(o->self, p->self_cfg, sizeof(p->self_cfg), NULL) < 0) {
		snprintf(err, errlen, "self: '%s' is not a HOST:PORT address", o->self);
		return -EINVAL;
	}
	if (!o->peer_listen || !o->peer_listen[0])
		return 0;
	if (canonical(o->peer_listen, NULL, 0, &ss) < 0) {
		snprintf(err, errlen, "peer-listen: '%s' is not a HOST:PORT address",
			 o->peer_listen);
		return -EINVAL;
	}
	p->listen_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							: ((struct sockaddr_in *)&ss)->sin_port);
	/* a peer-listen on one address names this node; a wildcard leaves it to the members */
	if (!p->self_cfg[0] &&
	    !(ss.ss_family == AF_INET &&
	      ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY)) &&
	    !(ss.ss_family == AF_INET6 &&
	      IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr)))
		addr_str((struct sockaddr *)&ss, p->self_cfg, sizeof(p->self_cfg));
	return 0;
}

static int static_members(struct peers *p, char *err, size_t errlen)
{
	struct sockaddr_storage addrs[PEERS_MAX];

	for (size_t i = 0; i < p->spec.n; i++) {
		if (canonical(p->spec.entries[i], NULL, 0, &addrs[i]) < 0) {
			snprintf(err, errlen, "peers: cannot resolve '%s'", p->spec.entries[i]);
			return -EINVAL;
		}
	}
	return peers_set_members(p, addrs, p->spec.n, peers_now()) < 0 ? -ENOMEM : 0;
}

int peers_new(const struct peers_opts *o, struct peers **out, char *err, size_t errlen)
{
	struct peers *p;
	int r;

	*out = NULL;
	if (!o->peers || !o->peers[0])
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->auth = o->auth;
	r = peers_parse_spec(o->peers, &p->spec, err, errlen);
	if (r == 0)
		r = setup_self(p, o, err, errlen);
	if (r == 0 && !p->spec.is_dns)
		r = static_members(p, err, errlen);
	if (r < 0) {
		peers_free(p);
		return r;
	}
	peers_publish(p);
	*out = p;
	return 0;
}

/* --- probes -------------------------------------------------------------------- */

static void probe_done(struct peer *m, bool ok)
{
	bufferevent_free(m->probe);
	m->probe = NULL;
	peers_observe(m->p, m->id, ok, peers_now());
}

static void probe_read(struct bufferevent *bev, void *arg)
{
	struct peer *m = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
	bool ok;

	if (!line) {
		if (evbuffer_get_length(in) > 256)
			probe_done(m, false);
		return;
	}
	ok = strlen(line) >= 12 && strncmp(line, "HTTP/1.", 7) == 0 &&
	     strncmp(line + 8, " 200", 4) == 0;
	if (!ok)
		log_debug("peers: probe %s: '%.80s'", m->id, line);
	free(line);
	probe_done(m, ok);
}

static void probe_event(struct bufferevent *bev, short what, void *arg)
{
	struct peer *m = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	log_debug("peers: probe %s: %s", m->id,
		  what & BEV_EVENT_TIMEOUT ? "timed out"
		  : (what & BEV_EVENT_EOF) ? "closed"
					   : "failed");
	probe_done(m, false);
}

/* "GET /healthz ..." with its signature before the empty line, or unsigned (tests). */
static void probe_head(struct peers *p, struct peer *m, char *out, size_t cap)
{
	char line[PEERAUTH_LINE_MAX] = "", self[PEERAUTH_NODE_MAX];
	int n = snprintf(
	    out, cap, "GET " PEERS_PROBE_PATH " HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
	    m->id);

	peers_self(p, self, sizeof(self));
	if (!p->auth || n < 0 || (size_t)n + sizeof(line) > cap ||
	    peerauth_sign_head(p->auth, out, (size_t)n, self[0] ? self : "-", time(NULL), line,
			       sizeof(line)) < 0)
		return;
	snprintf(out + n - 2, cap - (size_t)n + 2, "%s\r\n", line);
}

static void probe_start(struct peers *p, struct peer *m)
{
	struct timeval tv = {0, PEERS_PROBE_TIMEOUT_MS * 1000};
	char head[PEERAUTH_NODE_MAX + PEERAUTH_LINE_MAX + 128];

	m->probe = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!m->probe)
		return;
	probe_head(p, m, head, sizeof(head));
	bufferevent_setcb(m->probe, probe_read, NULL, probe_event, m);
	bufferevent_set_timeouts(m->probe, &tv, &tv);
	evbuffer_add(bufferevent_get_output(m->probe), head, strlen(head));
	bufferevent_enable(m->probe, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(m->probe, (struct sockaddr *)&m->addr, (int)m->addrlen) < 0)
		probe_done(m, false);
}

/* --- DNS ----------------------------------------------------------------------- */

static void resolved(int err, struct evutil_addrinfo *res, void *arg)
{
	struct peers *p = arg;
	struct sockaddr_storage addrs[PEERS_MAX + 1];
	size_t n = 0;

	if (err) {
		/* keep the members we have: a DNS hiccup is not a cluster change */
		log_warn("peers: resolve %s: %s; keeping %zu members", p->spec.dns_name,
			 evutil_gai_strerror(err), p->n);
		return;
	}
	for (struct evutil_addrinfo *ai = res; ai && n <= PEERS_MAX; ai = ai->ai_next) {
		if (ai->ai_addrlen <= sizeof(addrs[0]) &&
		    (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)) {
			memset(&addrs[n], 0, sizeof(addrs[n]));
			memcpy(&addrs[n++], ai->ai_addr, ai->ai_addrlen);
		}
	}
	evutil_freeaddrinfo(res);
	if (peers_set_members(p, addrs, n, peers_now()) > 0)
		peers_publish(p);
}

static void resolve(struct peers *p)
{
	struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};

	p->last_resolve = peers_now();
	evdns_getaddrinfo(p->dns, p->spec.dns_name, p->spec.dns_port, &hints, resolved, p);
}

/* --- the tick ------------------------------------------------------------------ */

static void reload_secret(struct peers *p)
{
	char err[256];
	int r = peerauth_reload(p->auth, time(NULL), err, sizeof(err));

	if (r > 0)
		log_info("peers: cluster secret reloaded");
	else if (r < 0)
		log_error("peers: %s; keeping the secret in use", err);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peers *p = arg;
	time_t now = peers_now();

	peers_apply_reports(p, now);
	if (p->auth)
		reload_secret(p);
	if (p->dns && now - p->last_resolve >= PEERS_RESOLVE_S)
		resolve(p);
	for (size_t i = 0; i < p->n; i++)
		if (!p->m[i]->is_self && !p->m[i]->probe)
			probe_start(p, p->m[i]);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	peers_apply_reports(arg, peers_now());
}

void peers_admin(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	peers_render_json(arg, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

int peers_start(struct peers *p, struct event_base *base)
{
	struct timeval tv = {PEERS_PROBE_MS / 1000, (PEERS_PROBE_MS % 1000) * 1000};

	p->base = base;
	p->tick = event_new(base, -1, EV_PERSIST, tick_cb, p);
	p->wake = event_new(base, -1, 0, wake_cb, p);
	if (!p->tick || !p->wake)
		return -ENOMEM;
	if (p->spec.is_dns) {
		p->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
		if (!p->dns)
			p->dns = evdns_base_new(base, 0);
		if (!p->dns)
			return -ENOMEM;
		/* by name: NULL would add only localhost (see steering.c) */
		evdns_base_load_hosts(p->dns, "/etc/hosts");
		resolve(p);
	}
	tick_cb(-1, 0, p);
	return event_add(p->tick, &tv);
}

void peers_free(struct peers *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		if (p->m[i]->probe)
			bufferevent_free(p->m[i]->probe);
		free(p->m[i]);
	}
	if (p->tick)
		event_free(p->tick);
	if (p->wake)
		event_free(p->wake);
	if (p->dns)
		evdns_base_free(p->dns, 0);
	free(p->view);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

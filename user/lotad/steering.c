/* BPF steering for the daemon: loads bpf/steer.bpf.c through bpf/steer-loader.c, feeds the targets map
 * from `host` (resolved on the control thread, port 80) and `targets`, and serves
 * /admin/targets for lotactl. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "admin/admin.h"
#include "log.h"
#include "lotad.h"
#include "netaddr.h"
#include "steer-loader.h"
#include "steering.h"

#define TARGETS_MAX 256
#define RESOLVE_EVERY_S 10
#define TARGET_GRACE_S 300 /* an address that left DNS keeps being steered this long */
#define HOST_PORT "80"

struct target {
	struct sockaddr_storage addr;
	time_t last_seen;
	bool is_static;
};

struct steering {
	struct lotad *d;
	struct steer *s;
	struct evdns_base *dns;
	struct event *timer;
	struct target t[TARGETS_MAX];
	int n;
};

/* A name being resolved, with where its answer goes. */
struct lookup {
	struct steering *st;
	char name[];
};

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

	return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static int target_add(struct steering *st, const struct sockaddr *sa, bool is_static)
{
	char buf[64];
	int i, r;

	for (i = 0; i < st->n; i++) {
		if (same_addr(&st->t[i].addr, sa)) {
			st->t[i].last_seen = time(NULL);
			if (is_static && !st->t[i].is_static && steer_target_add(st->s, sa, true) == 0)
				st->t[i].is_static = true;
			return 0;
		}
	}
	if (st->n == TARGETS_MAX) {
		log_warn("bpf: targets: %d entries already, not adding %s", TARGETS_MAX,
			 addr_str(sa, buf, sizeof(buf)));
		return -ENOSPC;
	}
	r = steer_target_add(st->s, sa, is_static);
	if (r < 0) {
		log_warn("bpf: targets: add %s: %s", addr_str(sa, buf, sizeof(buf)), strerror(-r));
		return r;
	}
	memcpy(&st->t[st->n].addr, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
							   : sizeof(struct sockaddr_in6));
	st->t[st->n].last_seen = time(NULL);
	st->t[st->n].is_static = is_static;
	st->n++;
	log_info("bpf: steering %s%s", addr_str(sa, buf, sizeof(buf)), is_static ? " (static)" : "");
	return 0;
}

static int target_del_at(struct steering *st, int i)
{
	char buf[64];
	int r = steer_target_del(st->s, (struct sockaddr *)&st->t[i].addr);

	log_info("bpf: no longer steering %s", addr_str((struct sockaddr *)&st->t[i].addr, buf, sizeof(buf)));
	st->t[i] = st->t[--st->n];
	return r == -ENOENT ? 0 : r;
}

static void resolved_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	struct lookup *l = arg;

	if (err) {
		log_debug("bpf: resolve %s: %s", l->name, evutil_gai_strerror(err));
	} else {
		for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
			target_add(l->st, ai->ai_addr, false);
		evutil_freeaddrinfo(res);
	}
	free(l);
}

static void resolve_hosts(struct steering *st)
{
	struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	const char *p = st->d->cfg.host;

	while (*p) {
		size_t n = strcspn(p, ",");
		struct lookup *l = n && *p != '*' ? malloc(sizeof(*l) + n + 1) : NULL;

		if (l) {
			l->st = st;
			memcpy(l->name, p, n);
			l->name[n] = '\0';
			evdns_getaddrinfo(st->dns, l->name, HOST_PORT, &hints, resolved_cb, l);
		}
		p += n;
		if (*p == ',')
			p++;
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct steering *st = arg;
	time_t now = time(NULL);

	for (int i = st->n - 1; i >= 0; i--)
		if (!st->t[i].is_static && now - st->t[i].last_seen > TARGET_GRACE_S)
			target_del_at(st, i);
	resolve_hosts(st);
}

static void static_targets(struct steering *st)
{
	const char *p = st->d->cfg.targets;

	while (*p) {
		size_t n = strcspn(p, ",");
		char one[300];
		struct sockaddr_storage ss;
		socklen_t len;

		snprintf(one, sizeof(one), "%.*s", (int)n, p);
		if (addr_parse(one, &ss, &len) < 0)
			log_warn("targets: '%s' is not IP:PORT; ignored", one);
		else
			target_add(st, (struct sockaddr *)&ss, true);
		p += n;
		if (*p == ',')
			p++;
	}
}

static void targets_json(struct steering *st, struct evbuffer *b)
{
	char buf[64];
	time_t now = time(NULL);

	evbuffer_add_printf(b, "{\"targets\":[");
	for (int i = 0; i < st->n; i++)
		evbuffer_add_printf(b, "%s{\"addr\":\"%s\",\"static\":%s,\"seen_s_ago\":%lld}",
				    i ? "," : "", addr_str((struct sockaddr *)&st->t[i].addr, buf, sizeof(buf)),
				    st->t[i].is_static ? "true" : "false", (long long)(now - st->t[i].last_seen));
	evbuffer_add_printf(b, "]}\n");
}

/* GET /admin/targets; POST /admin/targets?add=IP:PORT or ?del=IP:PORT. */
static void admin_targets(struct evhttp_request *req, void *arg)
{
	struct steering *st = arg;
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq q;
	const char *add, *del;
	struct sockaddr_storage ss;
	socklen_t len;
	int code = 200, r = 0;

	evhttp_parse_query(evhttp_request_get_uri(req), &q);
	add = evhttp_find_header(&q, "add");
	del = evhttp_find_header(&q, "del");
	if (!st->s && (add || del)) {
		code = 409;
		evbuffer_add_printf(b, "{\"error\":\"BPF steering is not active\"}\n");
	} else if ((add || del) && addr_parse(add ? add : del, &ss, &len) < 0) {
		code = 400;
		evbuffer_add_printf(b, "{\"error\":\"not an IP:PORT address\"}\n");
	} else {
		if (add)
			r = target_add(st, (struct sockaddr *)&ss, true);
		for (int i = 0; del && i < st->n; i++)
			if (same_addr(&st->t[i].addr, (struct sockaddr *)&ss))
				r = target_del_at(st, i);
		if (r < 0) {
			code = 500;
			evbuffer_add_printf(b, "{\"error\":\"%s\"}\n", strerror(-r));
		} else {
			targets_json(st, b);
		}
	}
	evhttp_clear_headers(&q);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
}

static int steer_opts_from(struct lotad *d, struct steer_opts *o, char *err, size_t errlen)
{
	const char *to = d->cfg.steer_to[0] ? d->cfg.steer_to : d->cfg.listen;
	socklen_t len;

	memset(o, 0, sizeof(*o));
	o->cgroup = d->cfg.cgroup[0] ? d->cfg.cgroup : NULL;
	o->pin_dir = d->cfg.bpf_pin_dir[0] ? d->cfg.bpf_pin_dir : NULL;
	o->is_sockmap = d->cfg.sockmap;
	o->is_pin_links = d->cfg.pin_links;
	o->own_tgid = getpid();
	if (addr_parse(to, &o->redirect, &len) < 0) {
		snprintf(err, errlen, "steer-to: '%s' is not an address:port", to);
		return -EINVAL;
	}
	return 0;
}

static void render_metrics(void *arg, struct evbuffer *out)
{
	struct steering *st = arg;
	struct steer_stats s;

	evbuffer_add_printf(out, "# HELP lota_bpf_attached 1 if BPF steering is loaded and attached\n"
				 "# TYPE lota_bpf_attached gauge\nlota_bpf_attached %d\n", st->s != NULL);
	evbuffer_add_printf(out, "# HELP lota_bpf_targets steering targets in the map\n"
				 "# TYPE lota_bpf_targets gauge\nlota_bpf_targets %d\n", st->n);
	if (!st->s || steer_stats(st->s, &s) < 0)
		return;
#define C(name, help)                                                                              \
	evbuffer_add_printf(out, "# HELP lota_bpf_" #name " " help "\n# TYPE lota_bpf_" #name           \
				 " counter\nlota_bpf_" #name " %llu\n", (unsigned long long)s.name)
	C(rewritten, "connects rewritten to lotad");
	C(skipped_own, "connects by lotad itself, left alone");
	C(map_miss, "connects to addresses that are not targets");
	C(inserted, "sockets inserted into the sockhash");
	C(redirected, "sends redirected by sk_msg");
	C(redirect_failed, "sends that fell back to TCP");
	C(budget_spent, "flows that used up their sk_msg budget");
#undef C
}

static void render_status(void *arg, struct evbuffer *b)
{
	struct steering *st = arg;

	evbuffer_add_printf(b, "{\"attached\":%s,\"pin_dir\":", st->s ? "true" : "false");
	admin_json_str(b, st->d->cfg.bpf_pin_dir);
	evbuffer_add_printf(b, ",\"sockmap\":%s}", st->d->cfg.sockmap ? "true" : "false");
}

/* Watches the intercepted names (re-resolved every RESOLVE_EVERY_S) and loads the
 * static targets. */
static void start_targets(struct steering *st)
{
	struct timeval tv = {RESOLVE_EVERY_S, 0};
	struct lotad *d = st->d;

	static_targets(st);
	st->dns = evdns_base_new(d->control_base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
							  EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!st->dns)
		st->dns = evdns_base_new(d->control_base, 0);
	/* NULL would load only "localhost" (libevent's default), and the fallback base above
	 * reads no hosts file at all: name the file, so /etc/hosts entries always count. */
	if (st->dns)
		evdns_base_load_hosts(st->dns, "/etc/hosts");
	st->timer = event_new(d->control_base, -1, EV_PERSIST, tick_cb, st);
	if (st->dns && st->timer) {
		event_add(st->timer, &tv);
		resolve_hosts(st);
	}
}

int steering_start(struct lotad *d, struct steering **out)
{
	struct admin_section sec = {.name = "bpf", .status = render_status, .metrics = render_metrics};
	struct steering *st = calloc(1, sizeof(*st));
	struct steer_opts o;
	char err[512];
	int r;

	if (!st)
		return -ENOMEM;
	st->d = d;
	sec.arg = st;
	*out = st;
	if (admin_route(d, "/admin/targets", admin_targets, st) < 0 || admin_section_add(d, &sec) < 0)
		return -ENOSPC;
	if (strcmp(d->cfg.bpf, "off") == 0) {
		log_info("bpf: off; lotad is a plain endpoint at %s", d->cfg.listen);
		return 0;
	}
	r = steer_opts_from(d, &o, err, sizeof(err));
	if (r == 0)
		r = steer_start(&o, &st->s, err, sizeof(err));
	if (r < 0 && strcmp(d->cfg.bpf, "on") == 0) {
		log_error("%s", err);
		return r;
	}
	if (r < 0) {
		log_warn("%s; BPF steering is off, lotad is a plain endpoint at %s", err, d->cfg.listen);
		st->s = NULL;
		return 0;
	}
	log_info("bpf: steering attached to %s, pinned at %s, sockmap %s",
		 o.cgroup ? o.cgroup : "the cgroup2 root", steer_pin_dir(st->s),
		 o.is_sockmap ? "on" : "off");
	start_targets(st);
	return 0;
}

void steering_stop(struct steering *st)
{
	if (!st)
		return;
	if (st->timer)
		event_free(st->timer);
	st->timer = NULL;
	if (st->dns)
		evdns_base_free(st->dns, 1);
	st->dns = NULL;
	steer_stop(st->s);
	st->s = NULL;
}

void steering_free(struct steering *st)
{
	steering_stop(st);
	free(st);
}

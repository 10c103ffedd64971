/* The admin endpoint on the control thread. /healthz and /metrics face the network on the
 * `admin` TCP address (probes, Prometheus). Everything else (the JSON API lotactl speaks)
 * changes or reveals state, so it is served only on the unix socket `admin-socket`, which
 * its file mode guards, or on TCP with the bearer token of `admin-token`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/un.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin/admin.h"
#include "adminauth.h"
#include "json.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "netaddr.h"

/* Which listener a request came in on. */
struct surface {
	struct lotad *d;
	bool is_local; /* the unix socket: whoever can open it is trusted */
};

/* Control thread only (every admin callback and the reload timer run there): no locks. */
struct admin {
	struct admin_route routes[ADMIN_ROUTES_MAX];
	int nroutes;
	struct admin_section sections[ADMIN_SECTIONS_MAX];
	int nsections;
	struct surface tcp, local;
	struct adminauth *auth; /* NULL: no admin-token, TCP answers /admin/... with 403 */
	struct event *reload_ev;
	char reload_err[256]; /* the last reload error, logged once */
	uint64_t refused;
	uint64_t unlogged; /* refused since the last log line */
	time_t last_log;
	struct adminsock sock;
};

static int route_add(struct admin *adm, const char *path, admin_handler fn, void *arg,
		     bool is_public)
{
	if (adm->nroutes == ADMIN_ROUTES_MAX)
		return -ENOSPC;
	adm->routes[adm->nroutes++] = (struct admin_route){path, fn, arg, is_public};
	return 0;
}

int admin_route(struct lotad *d, const char *path, admin_handler fn, void *arg)
{
	return route_add(d->admin, path, fn, arg, false);
}

int admin_section_add(struct lotad *d, const struct admin_section *s)
{
	struct admin *adm = d->admin;

	if (adm->nsections == ADMIN_SECTIONS_MAX)
		return -ENOSPC;
	adm->sections[adm->nsections++] = *s;
	return 0;
}

static void emit_evbuffer(void *arg, const char *p, size_t n)
{
	evbuffer_add(arg, p, n);
}

void admin_json_str(struct evbuffer *b, const char *s)
{
	json_write_str(s, emit_evbuffer, b);
}

static void refresh_sections(struct admin *adm)
{
	for (int i = 0; i < adm->nsections; i++)
		if (adm->sections[i].refresh)
			adm->sections[i].refresh(adm->sections[i].arg);
}

void admin_render_status(struct lotad *d, struct evbuffer *out)
{
	struct admin *adm = d->admin;

	refresh_sections(adm);
	for (int i = 0; i < adm->nsections; i++) {
		if (!adm->sections[i].status)
			continue;
		evbuffer_add_printf(out, ",\"%s\":", adm->sections[i].name);
		adm->sections[i].status(adm->sections[i].arg, out);
	}
}

static void reply_text(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *b)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
}

void admin_render_health(struct lotad *d, struct evbuffer *out)
{
	struct admin *adm = d->admin;
	char why[1024];
	int n = 0;

	evbuffer_add_printf(out, "ok");
	for (int i = 0; i < adm->nsections; i++) {
		const struct admin_section *s = &adm->sections[i];
		const char *r = s->degraded ? s->degraded(s->arg, why, sizeof(why)) : NULL;

		if (r)
			evbuffer_add_printf(out, "%s%s degraded: %s", n++ ? "; " : " (", s->name,
					    r);
	}
	evbuffer_add_printf(out, "%s\n", n ? ")" : "");
}

/* 503 while draining, so that a readiness probe takes the node out of rotation; a
 * degraded module still serves (its requests go a slower way), so that is a 200 with
 * the reason, and "ok" alone means all is well. */
static void healthz(struct evhttp_request *req, void *arg)
{
	struct lotad *d = arg;
	struct evbuffer *b = evbuffer_new();
	bool is_draining = lotad_is_draining(d);

	if (is_draining)
		evbuffer_add_printf(b, "draining\n");
	else
		admin_render_health(d, b);
	reply_text(req, is_draining ? 503 : 200, "text/plain", b);
	evbuffer_free(b);
}

void admin_render_metrics(struct lotad *d, struct evbuffer *out)
{
	struct admin *adm = d->admin;

	refresh_sections(adm);
	metrics_render(emit_evbuffer, out);
	for (int i = 0; i < adm->nsections; i++)
		if (adm->sections[i].metrics)
			adm->sections[i].metrics(adm->sections[i].arg, out);
	evbuffer_add_printf(out, "# HELP lota_worker_connections connections open on each worker "
				 "thread\n# TYPE lota_worker_connections gauge\n");
	for (int i = 0; i < d->nworkers; i++)
		evbuffer_add_printf(out, "lota_worker_connections{worker=\"%d\"} %lu\n", i,
				    __atomic_load_n(&d->workers[i].nconns, __ATOMIC_RELAXED));
	evbuffer_add_printf(out,
			    "# HELP lota_admin_refused admin API calls refused on the TCP address "
			    "(no admin-token, missing or wrong token)\n"
			    "# TYPE lota_admin_refused counter\nlota_admin_refused %llu\n",
			    (unsigned long long)adm->refused);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	admin_render_metrics(arg, b);
	reply_text(req, 200, "text/plain; version=0.0.4", b);
	evbuffer_free(b);
}

/* The request target as a log line may show it: bounded, control bytes replaced. */
static void printable(const char *s, char *out, size_t cap)
{
	size_t i = 0;

	for (; s[i] && i + 1 < cap; i++)
		out[i] = (s[i] > ' ' && s[i] <= '~') ? s[i] : '?';
	out[i] = '\0';
}

static const char *method_name(enum evhttp_cmd_type c)
{
	switch (c) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return "a request";
	}
}

/* One log line per ADMIN_REFUSED_LOG_S at most; lota_admin_refused counts every one. */
static void log_refused(struct admin *adm, struct evhttp_request *req, const char *why)
{
	char *host = NULL, target[160], more[96] = "";
	ev_uint16_t port = 0;
	time_t now = time(NULL);

	adm->refused++;
	if (now - adm->last_log < ADMIN_REFUSED_LOG_S) {
		adm->unlogged++;
		return;
	}
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &host, &port);
	printable(evhttp_request_get_uri(req), target, sizeof(target));
	if (adm->unlogged)
		snprintf(more, sizeof(more), " (and %llu more since the last such line)",
			 (unsigned long long)adm->unlogged);
	log_warn("admin: refused %s %s from %s:%u: %s%s",
		 method_name(evhttp_request_get_command(req)), target, host ? host : "?",
		 (unsigned)port, why, more);
	adm->last_log = now;
	adm->unlogged = 0;
}

static void refuse(struct admin *adm, struct evhttp_request *req, int code, const char *why,
		   const char *msg)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evbuffer_new();

	log_refused(adm, req, why);
	if (code == 401)
		evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"lotad admin\"");
	evbuffer_add_printf(b, "{\"error\":\"%s\"}\n", msg);
	reply_text(req, code, "application/json", b);
	evbuffer_free(b);
}

/* The request's one Authorization value; NULL if it has none, or more than one (which
 * could mean different things to lotad and a proxy in front of it). */
static const char *authorization(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *v = NULL;
	struct evkeyval *kv;

	for (kv = TAILQ_FIRST(h); kv; kv = TAILQ_NEXT(kv, next)) {
		if (strcasecmp(kv->key, "Authorization") != 0)
			continue;
		if (v)
			return NULL;
		v = kv->value;
	}
	return v;
}

/* A protected call on the TCP address: true if its bearer token opens it; otherwise it
 * has been answered (403 or 401) and nothing else happens. */
static bool is_authorized(struct admin *adm, struct evhttp_request *req)
{
	enum adminauth_verdict v;

	if (!adm->auth) {
		refuse(adm, req, 403, "no admin-token configured",
		       "the admin API is not served on this TCP address: use the unix socket "
		       "(admin-socket; lotactl --admin unix:PATH, curl --unix-socket PATH), or set "
		       "admin-token and send Authorization: Bearer <token>");
		return false;
	}
	v = adminauth_check(adm->auth, authorization(req));
	if (v == ADMINAUTH_OK)
		return true;
	if (v == ADMINAUTH_MISSING)
		refuse(adm, req, 401, "no bearer token",
		       "send Authorization: Bearer <the token in admin-token> (lotactl "
		       "--token-file FILE), or use the unix socket");
	else
		refuse(adm, req, 403, "wrong bearer token", "wrong bearer token");
	return false;
}

static const struct admin_route *route_find(struct admin *adm, const char *uri)
{
	size_t n = strcspn(uri, "?");

	for (int i = 0; i < adm->nroutes; i++)
		if (strlen(adm->routes[i].path) == n && strncmp(uri, adm->routes[i].path, n) == 0)
			return &adm->routes[i];
	return NULL;
}

/* Unknown paths are protected too: the TCP address tells a stranger nothing but
 * /healthz and /metrics. */
static void dispatch(struct evhttp_request *req, void *arg)
{
	const struct surface *s = arg;
	struct admin *adm = s->d->admin;
	const struct admin_route *rt = route_find(adm, evhttp_request_get_uri(req));

	if (!(rt && rt->is_public) && !s->is_local && !is_authorized(adm, req))
		return;
	if (!rt) {
		evhttp_send_error(req, 404, "no such admin path");
		return;
	}
	rt->fn(req, rt->arg);
}

static void reload_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin *adm = arg;
	char err[sizeof(adm->reload_err)];
	int r = adminauth_reload(adm->auth, err, sizeof(err));

	if (r >= 0) {
		if (r > 0)
			log_info("admin-token %s: new token in use", adminauth_path(adm->auth));
		adm->reload_err[0] = '\0';
	} else if (strcmp(err, adm->reload_err) != 0) {
		log_error("%s; the token in use stays", err);
		snprintf(adm->reload_err, sizeof(adm->reload_err), "%s", err);
	}
}

int admin_check(struct lotad *d, char *err, size_t errlen)
{
	const char *sock = d->cfg.admin_socket;
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	struct admin *adm = calloc(1, sizeof(*adm));

	if (!adm) {
		snprintf(err, errlen, "admin: out of memory");
		return -ENOMEM;
	}
	d->admin = adm;
	if (sock[0] && sock[0] != '/') {
		snprintf(err, errlen, "admin-socket: '%s' is not an absolute path", sock);
		return -EINVAL;
	}
	if (strlen(sock) > max) {
		snprintf(err, errlen, "admin-socket: '%s' is longer than %zu bytes", sock, max);
		return -EINVAL;
	}
	if (!d->cfg.admin_token[0])
		return 0;
	return adminauth_open(d->cfg.admin_token, &adm->auth, err, errlen);
}

static struct evhttp *serve(struct lotad *d, int fd, struct surface *s)
{
	struct evhttp *http = evhttp_new(d->control_base);

	if (!http || !evhttp_accept_socket_with_handle(http, fd))
		return NULL;
	evhttp_set_max_headers_size(http, ADMIN_HEADERS_MAX);
	evhttp_set_max_body_size(http, ADMIN_BODY_MAX);
	evhttp_set_gencb(http, dispatch, s);
	return http;
}

static int start_reload(struct lotad *d)
{
	struct timeval tv = {ADMIN_RELOAD_MS / 1000, (ADMIN_RELOAD_MS % 1000) * 1000};
	struct admin *adm = d->admin;

	if (!adm->auth)
		return 0;
	adm->reload_ev = event_new(d->control_base, -1, EV_PERSIST, reload_cb, adm);
	if (!adm->reload_ev || event_add(adm->reload_ev, &tv) < 0)
		return -ENOMEM;
	return 0;
}

int admin_start(struct lotad *d, char *err, size_t errlen)
{
	struct admin *adm = d->admin;
	int fd;

	adm->tcp = (struct surface){d, false};
	adm->local = (struct surface){d, true};
	fd = netaddr_listen(d->cfg.admin, false, err, errlen);
	if (fd < 0)
		return fd;
	if (!serve(d, fd, &adm->tcp)) {
		snprintf(err, errlen, "%s: cannot serve", d->cfg.admin);
		return -EINVAL;
	}
	if (d->cfg.admin_socket[0]) {
		fd = adminsock_listen(&adm->sock, d->cfg.admin_socket, err, errlen);
		if (fd < 0)
			return fd;
		if (!serve(d, fd, &adm->local)) {
			snprintf(err, errlen, "admin-socket %s: cannot serve", d->cfg.admin_socket);
			return -EINVAL;
		}
		log_info("admin-socket %s: the admin API, for whoever may open it (mode 0600)",
			 d->cfg.admin_socket);
	}
	if (adm->auth)
		log_info("admin-token %s: /admin/... on %s with its bearer token",
			 adminauth_path(adm->auth), d->cfg.admin);
	else
		log_info("admin: %s serves /healthz and /metrics only (no admin-token)",
			 d->cfg.admin);
	if (start_reload(d) < 0) {
		snprintf(err, errlen, "admin-token: out of memory");
		return -ENOMEM;
	}
	route_add(adm, "/healthz", healthz, d, true);
	route_add(adm, "/metrics", metrics_cb, d, true);
	return 0;
}

void admin_stop(struct lotad *d)
{
	struct admin *adm = d->admin;

	if (!adm)
		return;
	adminsock_remove(&adm->sock);
	if (adm->reload_ev)
		event_free(adm->reload_ev);
	adm->reload_ev = NULL;
	adminauth_free(adm->auth);
	free(adm);
	d->admin = NULL;
}

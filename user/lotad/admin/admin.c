/* The admin endpoint on the control thread: /healthz for probes, /metrics for
 * Prometheus, and the small JSON API that lotactl speaks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin/admin.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"

static struct admin_route routes[ADMIN_ROUTES_MAX];
static int nroutes;

int admin_route(const char *path, admin_handler fn, void *arg)
{
	if (nroutes == ADMIN_ROUTES_MAX)
		return -ENOSPC;
	routes[nroutes++] = (struct admin_route){path, fn, arg};
	return 0;
}

static void reply_text(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *b)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
}

/* 503 while draining, so that a readiness probe takes the node out of rotation. */
static void healthz(struct evhttp_request *req, void *arg)
{
	struct lotad *d = arg;
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, d->is_draining ? "draining\n" : "ok\n");
	reply_text(req, d->is_draining ? 503 : 200, "text/plain", b);
	evbuffer_free(b);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
	struct lotad *d = arg;
	struct evbuffer *b = evbuffer_new();

	lotad_refresh_gauges(d);
	metrics_render(b);
	lotad_render_extra_metrics(d, b);
	reply_text(req, 200, "text/plain; version=0.0.4", b);
	evbuffer_free(b);
}

/* POST /admin/log-level?level=debug, or GET to read it. */
static void log_level_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq q;
	const char *lv;
	enum log_level l;
	int code = 200;

	evhttp_parse_query(evhttp_request_get_uri(req), &q);
	lv = evhttp_find_header(&q, "level");
	if (lv && log_level_parse(lv, &l) < 0) {
		code = 400;
		evbuffer_add_printf(b, "{\"error\":\"unknown level\"}\n");
	} else {
		if (lv) {
			log_set_level(l);
			log_warn("log-level set to %s", lv);
		}
		evbuffer_add_printf(b, "{\"log_level\":\"%s\"}\n", log_level_name(log_get_level()));
	}
	evhttp_clear_headers(&q);
	reply_text(req, code, "application/json", b);
	evbuffer_free(b);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	size_t n = strcspn(uri, "?");

	for (int i = 0; i < nroutes; i++) {
		if (strlen(routes[i].path) == n && strncmp(uri, routes[i].path, n) == 0) {
			routes[i].fn(req, routes[i].arg);
			return;
		}
	}
	evhttp_send_error(req, 404, "no such admin path");
}

int admin_start(struct lotad *d, char *err, size_t errlen)
{
	struct evhttp *http = evhttp_new(d->control_base);
	int fd;

	if (!http)
		return -ENOMEM;
	fd = listen_socket(d->cfg.admin, false, err, errlen);
	if (fd < 0)
		return fd;
	if (!evhttp_accept_socket_with_handle(http, fd)) {
		snprintf(err, errlen, "%s: cannot serve", d->cfg.admin);
		return -EINVAL;
	}
	admin_route("/healthz", healthz, d);
	admin_route("/metrics", metrics_cb, d);
	admin_route("/admin/log-level", log_level_cb, d);
	adminapi_register(d);
	evhttp_set_gencb(http, dispatch, d);
	return 0;
}

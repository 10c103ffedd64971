/* The admin API's own JSON routes, which lotactl speaks: /admin/status (the daemon, then
 * each module's section), /admin/stats (every metric) and /admin/log-level. Modules add
 * their own calls (evict, targets, peers) with admin_route(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin/admin.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"

static void json_reply(struct evhttp_request *req, int code, struct evbuffer *b)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
}

/* What /healthz says, as a JSON string member. */
static void health_member(struct lotad *d, struct evbuffer *b)
{
	struct evbuffer *h = evbuffer_new();
	char text[2048];
	size_t n;

	if (h)
		admin_render_health(d, h);
	n = h ? evbuffer_remove(h, text, sizeof(text) - 1) : 0;
	while (n && text[n - 1] == '\n')
		n--;
	text[n] = '\0';
	evbuffer_add_printf(b, ",\"health\":");
	admin_json_str(b, n ? text : "?");
	if (h)
		evbuffer_free(h);
}

static void status_cb(struct evhttp_request *req, void *arg)
{
	struct lotad *d = arg;
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "{\"pid\":%d,\"uptime_s\":%lld,\"listen\":", (int)getpid(),
			    (long long)(time(NULL) - d->started));
	admin_json_str(b, d->cfg.listen);
	evbuffer_add_printf(b, ",\"origin\":");
	admin_json_str(b, d->cfg.origin);
	evbuffer_add_printf(b, ",\"workers\":%d,\"log_level\":\"%s\"", d->nworkers,
			    log_level_name(log_get_level()));
	health_member(d, b);
	admin_render_status(d, b);
	evbuffer_add(b, "}\n", 2);
	json_reply(req, 200, b);
	evbuffer_free(b);
}

/* Every counter and gauge of /metrics, as one JSON object. */
static void stats_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *prom = evbuffer_new(), *b = evbuffer_new();
	char *line;
	bool is_first = true;

	admin_render_metrics(arg, prom);
	evbuffer_add(b, "{", 1);
	while ((line = evbuffer_readln(prom, NULL, EVBUFFER_EOL_LF)) != NULL) {
		char *sp = strrchr(line, ' ');

		if (line[0] != '#' && sp && strncmp(line, "lota_", 5) == 0) {
			*sp = '\0';
			evbuffer_add_printf(b, "%s\"", is_first ? "" : ",");
			/* a labelled sample's name has quotes: worker_connections{worker=\"0\"} */
			for (const char *p = line + 5; *p; p++)
				evbuffer_add_printf(b, "%s%c", *p == '"' || *p == '\\' ? "\\" : "",
						    *p);
			evbuffer_add_printf(b, "\":%s", sp + 1);
			is_first = false;
		}
		free(line);
	}
	evbuffer_add(b, "}\n", 2);
	json_reply(req, 200, b);
	evbuffer_free(prom);
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
	json_reply(req, code, b);
	evbuffer_free(b);
}

int adminapi_register(struct lotad *d)
{
	if (admin_route(d, "/admin/status", status_cb, d) < 0 ||
	    admin_route(d, "/admin/stats", stats_cb, d) < 0 ||
	    admin_route(d, "/admin/log-level", log_level_cb, d) < 0)
		return -ENOSPC;
	return 0;
}

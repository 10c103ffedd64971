/* The JSON admin API lotactl speaks: /admin/status, /admin/stats and /admin/evict. */
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
#include "cache.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "exchange/reply.h"
#include "steering.h"

static time_t started;

static void json_reply(struct evhttp_request *req, int code, struct evbuffer *b)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
}

static void json_str(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			evbuffer_add_printf(b, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			evbuffer_add_printf(b, "\\u%04x", *s);
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static void status_cb(struct evhttp_request *req, void *arg)
{
	struct lotad *d = arg;
	struct evbuffer *b = evbuffer_new();
	uint64_t hits, misses;

	lotad_refresh_gauges(d);
	hits = metric_get(M_cache_hits) + metric_get(M_cache_coalesced);
	misses = metric_get(M_cache_misses);
	evbuffer_add_printf(b, "{\"pid\":%d,\"uptime_s\":%lld,\"listen\":", (int)getpid(),
			    (long long)(time(NULL) - started));
	json_str(b, d->cfg.listen);
	evbuffer_add_printf(b, ",\"origin\":");
	json_str(b, d->cfg.origin);
	evbuffer_add_printf(b, ",\"workers\":%d,\"bpf\":{\"attached\":%s,\"pin_dir\":", d->nworkers,
			    steering_active(d) ? "true" : "false");
	json_str(b, d->cfg.bpf_pin_dir);
	evbuffer_add_printf(b, ",\"sockmap\":%s},\"cache\":{\"enabled\":%s,\"dir\":",
			    d->cfg.sockmap ? "true" : "false", d->cache ? "true" : "false");
	json_str(b, d->cfg.cache_dir);
	evbuffer_add_printf(b,
			    ",\"entries\":%llu,\"bytes_used\":%llu,\"capacity\":%llu,"
			    "\"hit_ratio\":%.4f,\"background_fills\":%s},\"log_level\":\"%s\"}\n",
			    (unsigned long long)metric_get(M_cache_entries),
			    (unsigned long long)metric_get(M_cache_bytes_used),
			    (unsigned long long)metric_get(M_cache_capacity_bytes),
			    hits + misses ? (double)hits / (double)(hits + misses) : 0.0,
			    d->bgfill ? "true" : "false", log_level_name(log_get_level()));
	json_reply(req, 200, b);
	evbuffer_free(b);
}

/* Every counter and gauge of /metrics, as one JSON object. */
static void stats_cb(struct evhttp_request *req, void *arg)
{
	struct lotad *d = arg;
	struct evbuffer *prom = evbuffer_new(), *b = evbuffer_new();
	char *line;
	bool first = true;

	lotad_refresh_gauges(d);
	metrics_render(prom);
	lotad_render_extra_metrics(d, prom);
	admin_render_metrics(prom);
	evbuffer_add(b, "{", 1);
	while ((line = evbuffer_readln(prom, NULL, EVBUFFER_EOL_LF)) != NULL) {
		char *sp = strrchr(line, ' ');

		if (line[0] != '#' && sp && strncmp(line, "lota_", 5) == 0) {
			*sp = '\0';
			evbuffer_add_printf(b, "%s\"%s\":%s", first ? "" : ",", line + 5, sp + 1);
			first = false;
		}
		free(line);
	}
	evbuffer_add(b, "}\n", 2);
	json_reply(req, 200, b);
	evbuffer_free(prom);
	evbuffer_free(b);
}

/* POST /admin/evict?bucket=B&key=K[&version=V]: drop one entry; ?all=1: every entry. */
static void evict_cb(struct evhttp_request *req, void *arg)
{
	struct lotad *d = arg;
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq q;
	const char *bucket, *key, *version, *all;
	int code = 200, n;

	evhttp_parse_query(evhttp_request_get_uri(req), &q);
	all = evhttp_find_header(&q, "all");
	bucket = evhttp_find_header(&q, "bucket");
	key = evhttp_find_header(&q, "key");
	version = evhttp_find_header(&q, "version");
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		code = 405;
		evbuffer_add_printf(b, "{\"error\":\"use POST\"}\n");
	} else if (!d->cache) {
		code = 409;
		evbuffer_add_printf(b, "{\"error\":\"the cache is not enabled\"}\n");
	} else if (all && strcmp(all, "1") == 0 && !bucket && !key) {
		n = cache_clear(d->cache);
		log_warn("admin: evicted all %d cached objects", n);
		evbuffer_add_printf(b, "{\"evicted\":%d}\n", n);
	} else if (!bucket || !key) {
		code = 400;
		evbuffer_add_printf(b, "{\"error\":\"bucket and key are required\"}\n");
	} else {
		struct cache_key k = {bucket, key, version ? version : ""};

		n = cache_invalidate(d->cache, &k);
		if (n > 0)
			metric_add(M_cache_invalidations, (uint64_t)n);
		evbuffer_add_printf(b, "{\"evicted\":%d}\n", n < 0 ? 0 : n);
	}
	evhttp_clear_headers(&q);
	json_reply(req, code, b);
	evbuffer_free(b);
}

void adminapi_register(struct lotad *d)
{
	started = time(NULL);
	admin_route("/admin/status", status_cb, d);
	admin_route("/admin/stats", stats_cb, d);
	admin_route("/admin/evict", evict_cb, d);
}

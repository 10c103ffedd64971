/* The admin HTTP endpoint (control thread). Modules add routes with admin_route(). */
#ifndef LOTA_ADMIN_H
#define LOTA_ADMIN_H

#include <stddef.h>

struct evhttp_request;
struct evbuffer;
struct lotad;

#define ADMIN_ROUTES_MAX 32

typedef void (*admin_handler)(struct evhttp_request *req, void *arg);

struct admin_route {
	const char *path;
	admin_handler fn;
	void *arg;
};

int admin_start(struct lotad *d, char *err, size_t errlen);
int admin_route(const char *path, admin_handler fn, void *arg);
/* adminapi.c: the JSON routes lotactl uses. */
void adminapi_register(struct lotad *d);

/* Provided by main.c: update gauges, and add metrics of other modules (BPF, peers). */
void lotad_refresh_gauges(struct lotad *d);
void lotad_render_extra_metrics(struct lotad *d, struct evbuffer *out);

#endif

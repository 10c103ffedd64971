/* The admin HTTP endpoint (control thread). Modules add routes with admin_route(). */
#ifndef LOTA_ADMIN_H
#define LOTA_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct evhttp_request;
struct evbuffer;
struct lotad;

#define ADMIN_ROUTES_MAX 32
#define ADMIN_HEADERS_MAX (16 * 1024) /* request head bytes the admin endpoint reads */
#define ADMIN_BODY_MAX (64 * 1024)    /* request body bytes (lotactl sends none) */
#define ADMIN_REFUSED_LOG_S 10	      /* at most one line about refused calls this often */
#define ADMIN_RELOAD_MS 1000	      /* how often the admin-token file is checked */

typedef void (*admin_handler)(struct evhttp_request *req, void *arg);

struct admin_route {
	const char *path;
	admin_handler fn;
	void *arg;
	bool is_public; /* served on the TCP address without a token: /healthz, /metrics */
};

/* Before anything starts: checks admin-socket and loads admin-token. A bad value names
 * its key in err (lotad exits 2). */
int admin_check(struct lotad *d, char *err, size_t errlen);
/* Serves the TCP address and the unix socket. */
int admin_start(struct lotad *d, char *err, size_t errlen);
/* Removes the unix socket lotad made, if it is still that one. */
void admin_stop(struct lotad *d);
/* Every route a module adds is protected: only the unix socket, or TCP with the token. */
int admin_route(const char *path, admin_handler fn, void *arg);
/* lota_admin_refused, for /metrics and /admin/stats. */
void admin_render_metrics(struct evbuffer *out);
/* adminsock.c: the admin API's unix socket. Its directory is made if missing, a stale
 * socket file (nobody listening) is replaced, and the socket is made with mode 0600. */
#define ADMINSOCK_PATH_MAX 108 /* sizeof(sun_path), the NUL included */
#define ADMINSOCK_DIR_MODE 0755
struct adminsock {
	char path[ADMINSOCK_PATH_MAX];
	dev_t dev; /* of the socket file made, so that only that one is removed */
	ino_t ino;
	bool is_made;
};
/* Returns the listening socket, or a negative errno with err naming admin-socket. */
int adminsock_listen(struct adminsock *s, const char *path, char *err, size_t errlen);
void adminsock_remove(struct adminsock *s);

/* adminapi.c: the JSON routes lotactl uses. */
void adminapi_register(struct lotad *d);

/* Provided by main.c: update gauges, and add metrics of other modules (BPF, peers). */
void lotad_refresh_gauges(struct lotad *d);
void lotad_render_extra_metrics(struct lotad *d, struct evbuffer *out);

#endif

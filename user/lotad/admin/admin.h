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

/* A module's part of /admin/status and /metrics. Every hook may be NULL. */
#define ADMIN_SECTIONS_MAX 8
struct admin_section {
	const char *name; /* its key in /admin/status */
	/* Before /metrics or /admin/status are written: update gauges. */
	void (*refresh)(void *arg);
	/* Writes the section's JSON value (an object) for /admin/status. */
	void (*status)(void *arg, struct evbuffer *json);
	/* Appends Prometheus lines of its own to /metrics. */
	void (*metrics)(void *arg, struct evbuffer *out);
	/* NULL while the module works as it should; else why it serves in a degraded way
	 * (written into buf, cap bytes), which /healthz says with its 200. */
	const char *(*degraded)(void *arg, char *buf, size_t cap);
	void *arg;
};

/* Before anything starts: makes d->admin, checks admin-socket and loads admin-token. A
 * bad value names its key in err (lotad exits 2). */
int admin_check(struct lotad *d, char *err, size_t errlen);
/* Serves the TCP address and the unix socket. */
int admin_start(struct lotad *d, char *err, size_t errlen);
/* Removes the unix socket lotad made, if it is still that one, and frees d->admin. */
void admin_stop(struct lotad *d);
/* Every route a module adds is protected: only the unix socket, or TCP with the token. */
int admin_route(struct lotad *d, const char *path, admin_handler fn, void *arg);
int admin_section_add(struct lotad *d, const struct admin_section *s);
/* "ok", or "ok (NAME degraded: WHY; ...)" for each section that says it is degraded. */
void admin_render_health(struct lotad *d, struct evbuffer *out);
/* Every metric: the process's counters, each section's, and the admin endpoint's own. */
void admin_render_metrics(struct lotad *d, struct evbuffer *out);
/* Each section's status, as ',"name":{...}' members of an object being written. */
void admin_render_status(struct lotad *d, struct evbuffer *out);
/* s as a JSON string, into b. */
void admin_json_str(struct evbuffer *b, const char *s);

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

/* adminapi.c: the JSON routes of the core lotactl uses (status, stats, log-level). */
int adminapi_register(struct lotad *d);

#endif

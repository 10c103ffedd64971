/* ctl: the pieces of lotactl, the operator's CLI: a small blocking HTTP/1.1 client (for
 * lotad's admin port and its S3 port), a reader of the flat JSON lotad's admin API
 * answers, and pre-staging of an S3 prefix. lotactl is a CLI, so blocking sockets with
 * timeouts are the simple, right tool; lotad itself never uses any of this. */
#ifndef LOTA_CTL_H
#define LOTA_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CTL_HOST_MAX 256
#define CTL_PATH_MAX 4096
#define CTL_HEAD_MAX (64 * 1024)	/* response head bytes lotactl accepts */
#define CTL_BODY_MAX (64 * 1024 * 1024) /* response body bytes lotactl keeps in memory */
#define CTL_MAX_HEADERS 16		/* request headers one call may add */

#define CTL_UNIX_PATH_MAX 108 /* sizeof(sun_path), the NUL included */

/* Where to connect: "http://HOST[:PORT]", "HOST:PORT" or "[V6]:PORT", or a unix socket. */
struct ctl_url {
	char host[CTL_HOST_MAX];	 /* without brackets */
	char hostport[CTL_HOST_MAX + 8]; /* as it goes into the Host header */
	char port[8];
	char unix_path[CTL_UNIX_PATH_MAX]; /* "" for TCP */
	char name[CTL_HOST_MAX + 8];	   /* how errors name it: "HOST:PORT" or the path */
};

struct ctl_header {
	const char *name;
	const char *value;
};

struct ctl_response {
	int status;
	char *head; /* the raw response head, NUL-terminated */
	char *body; /* NUL-terminated; body_len bytes */
	size_t body_len;
};

int ctl_url_parse(const char *s, const char *default_port, struct ctl_url *out, char *err,
		  size_t errlen);
/* A unix socket path (lotad's admin-socket); requests carry Host: localhost. */
int ctl_url_unix(const char *path, struct ctl_url *out, char *err, size_t errlen);

/* One request on a fresh connection (Connection: close). timeout_ms bounds each wait for
 * the socket, not the whole exchange. A HEAD never reads a body. On error, err says what
 * failed on what: "127.0.0.1:9090: connect: Connection refused", or for a unix socket
 * "/run/lota/admin.sock: connect: No such file or directory". */
int ctl_http(const struct ctl_url *u, const char *method, const char *target,
	     const struct ctl_header *h, size_t nh, int timeout_ms, struct ctl_response *out,
	     char *err, size_t errlen);
void ctl_response_free(struct ctl_response *r);

/* The value of header name in the head of r (case-insensitive), copied into out. */
int ctl_header_get(const struct ctl_response *r, const char *name, char *out, size_t cap);

/* Percent-encodes s the strict S3 way (RFC 3986 unreserved kept; '/' kept if asked). */
int ctl_uri_encode(const char *s, bool keep_slash, char *out, size_t cap);

/* JSON: finds the value at a dotted path ("cache.bytes_used") in an object and copies
 * its raw text (strings unquoted and unescaped) into out. -ENOENT when absent. */
int ctl_json_get(const char *json, const char *path, char *out, size_t cap);

/* Prints every scalar of a JSON document as "path value" lines, arrays indexed. */
int ctl_json_print_flat(FILE *f, const char *json);

struct ctl_prestage_opts {
	const char *endpoint; /* lotad's S3 URL */
	const char *bucket;
	const char *prefix;
	const char *profile; /* NULL: AWS_PROFILE or "default" */
	const char *sse_c_key_file; /* NULL: no SSE-C key; else a file of its 32 bytes */
	int concurrency;
	int timeout_s;
	bool is_json;
};

/* Lists bucket/prefix and pre-stages every object through lotad; prints progress and a
 * summary. Returns the process exit code: 0 when every object is cached. */
int ctl_prestage(const struct ctl_prestage_opts *o);

#endif

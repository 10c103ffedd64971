/* A client connection and the exchange (one request and its response) it is running.
 * Idle connections hold only struct conn; the big parse state lives in the exchange. */
#ifndef LOTA_CONN_H
#define LOTA_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "http-t.h"
#include "s3.h"

struct bufferevent;
struct worker;

/* Bytes queued towards a slow side before we stop reading from the fast side. */
#define CONN_PIPE_HIGH (1024 * 1024)
#define CONN_READ_MAX (256 * 1024)

struct exchange {
	char *head; /* the client's request head, as received */
	size_t head_len;
	struct http_msg req;
	struct s3_req s3;
	uint64_t req_left;
	struct http_chunked req_chunked;
	bool req_body_done;

	int status;
	enum http_body resp_body;
	uint64_t resp_left;
	struct http_chunked resp_chunked;
	bool resp_head_sent;
	bool resp_keep_alive;
	bool resp_done;
	bool origin_retried;
	uint64_t bytes_out;
	struct timespec t0;
	const char *route;
};

struct conn {
	struct worker *w;
	struct bufferevent *cbev; /* client */
	struct bufferevent *obev; /* origin, kept across requests while both sides allow */
	struct exchange *x;
	bool origin_reused;
	bool closing;
	bool client_read_paused;
	bool origin_read_paused;
	char peer[64];
};

/* proxy.c */
void conn_accept(struct worker *w, int fd, const char *peer);

#endif

/* Writing a socket bufferevent's queue now, rather than at its next writable event, where
 * other callbacks of the same turn come first (an origin read that stores a MiB). */
#ifndef LOTA_WRITENOW_H
#define LOTA_WRITENOW_H

#include <sys/types.h>

struct bufferevent;

/* Writes as much of bev's output as its socket takes now (file segments by sendfile); its
 * write callback still runs at the next turn, as after libevent's own write. Returns the
 * bytes written, 0 if none (queue empty, socket full); errors are left for libevent. */
ssize_t writenow(struct bufferevent *bev);

#endif

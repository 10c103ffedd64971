/* Reading a plain TCP bufferevent's socket in big steps. libevent 2.1 reads at most
 * 4 KiB per readable event (EVBUFFER_MAX_READ), whatever its max single read says: a
 * fast body then costs an epoll turn, a read and a write per 4 KiB. */
#ifndef LOTA_READMORE_H
#define LOTA_READMORE_H

#include <stddef.h>

struct bufferevent;

/* Reads up to max more bytes of what the socket of bev (plain TCP, not TLS) holds now
 * into bev's input; returns how many (0: none there). End of stream and errors are left
 * for libevent's next read to report. */
size_t readmore(struct bufferevent *bev, size_t max);

#endif

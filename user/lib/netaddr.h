/* Socket addresses as text: "HOST:PORT" and "[V6]:PORT" parsed (numeric or resolved)
 * and written. Pure: libc only. */
#ifndef LOTA_NETADDR_H
#define LOTA_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Splits s into host (without brackets) and port; def_port (or NULL: required) when s
 * has none. -EINVAL if malformed or too long. */
int netaddr_split(const char *s, char *host, size_t hcap, char *port, size_t pcap,
		  const char *def_port);
/* Resolves host and port (getaddrinfo, numeric first) into ss. */
int netaddr_resolve(const char *host, const char *port, struct sockaddr_storage *ss, socklen_t *len);
/* Splits "HOST:PORT" or "[V6]:PORT" into a socket address (numeric or resolved). */
int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* "HOST:PORT" text of a socket address. */
const char *addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* A listening TCP socket of our own on addr, so that SO_REUSEPORT (reuseport) is set
 * before bind; without it, a second process cannot silently share the port. Returns the
 * fd, or a negative errno with err naming the address and the reason. */
#define NETADDR_BACKLOG 4096
int netaddr_listen(const char *addr, bool reuseport, char *err, size_t errlen);

/* An address is this machine's if a socket can bind to it (any port). */
bool netaddr_is_local(const struct sockaddr_storage *ss);

#endif

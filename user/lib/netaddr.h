/* Socket addresses as text: "HOST:PORT" and "[V6]:PORT" parsed (numeric or resolved)
 * and written. Pure: libc only. */
#ifndef LOTA_NETADDR_H
#define LOTA_NETADDR_H

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

#endif

/* Socket addresses as text, both ways. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netaddr.h"

int netaddr_split(const char *s, char *host, size_t hcap, char *port, size_t pcap,
			   const char *def_port)
{
	const char *colon, *hs = s, *he;

	if (*s == '[') {
		he = strchr(s, ']');
		if (!he)
			return -EINVAL;
		hs = s + 1;
		colon = he[1] == ':' ? he + 1 : NULL;
		if (he[1] && !colon)
			return -EINVAL;
	} else {
		colon = strrchr(s, ':');
		he = colon ? colon : s + strlen(s);
	}
	if (he == hs || (size_t)(he - hs) >= hcap)
		return -EINVAL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (colon) {
		if (!colon[1] || strlen(colon + 1) >= pcap || strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return -EINVAL;
		strcpy(port, colon + 1);
	} else {
		if (!def_port)
			return -EINVAL;
		snprintf(port, pcap, "%s", def_port);
	}
	return 0;
}

int netaddr_resolve(const char *host, const char *port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int r = getaddrinfo(host, port, &hints, &res);

	if (r != 0)
		return -EHOSTUNREACH;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256], port[8];

	if (netaddr_split(s, host, sizeof(host), port, sizeof(port), NULL) < 0)
		return -EINVAL;
	return netaddr_resolve(host, port, ss, len);
}

const char *addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	}
	return buf;
}


/* A listening socket of our own, so that SO_REUSEPORT is set before bind. With
 * reuseport, every worker binds the same address; without it, a second process cannot
 * silently share the port with us. */
int netaddr_listen(const char *addr, bool reuseport, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (addr_parse(addr, &ss, &len) < 0) {
		snprintf(err, errlen, "'%s' is not a HOST:PORT address", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, NETADDR_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", addr, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -errno;
}

bool netaddr_is_local(const struct sockaddr_storage *ss)
{
	struct sockaddr_storage a = *ss;
	socklen_t len =
	    ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return false;
	if (a.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a)->sin6_port = 0;
	else
		((struct sockaddr_in *)&a)->sin_port = 0;
	r = bind(fd, (struct sockaddr *)&a, len);
	close(fd);
	return r == 0;
}

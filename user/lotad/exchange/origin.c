/* Connections to the origin. TLS verifies the certificate chain and the host name and
 * sends SNI; a plain http:// origin gets a plain socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "exchange/origin.h"
#include "exchange/readmore.h"

static int tls_setup(struct origin *o, const char *ca_file, char *err, size_t errlen)
{
	o->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!o->ssl_ctx) {
		snprintf(err, errlen, "origin: TLS context: %s", ERR_reason_error_string(ERR_get_error()));
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(o->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(o->ssl_ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file && *ca_file) {
		if (SSL_CTX_load_verify_locations(o->ssl_ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "ca-file: %s: cannot load certificates", ca_file);
			return -EINVAL;
		}
	} else if (SSL_CTX_set_default_verify_paths(o->ssl_ctx) != 1) {
		snprintf(err, errlen, "origin: cannot load the system's CA certificates");
		return -EINVAL;
	}
	return 0;
}

int origin_init(struct origin *o, const char *url, const char *ca_file, char *err, size_t errlen)
{
	const char *rest;
	char hostport[300];
	size_t n;

	memset(o, 0, sizeof(*o));
	o->connect_ms = o->read_ms = ORIGIN_TIMEOUT_MS;
	if (strncasecmp(url, "http://", 7) == 0) {
		rest = url + 7;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		rest = url + 8;
		o->is_tls = true;
	} else {
		snprintf(err, errlen, "origin: '%s' is not an http:// or https:// URL", url);
		return -EINVAL;
	}
	n = strcspn(rest, "/");
	if (n == 0 || n >= sizeof(hostport) || (rest[n] && strcmp(rest + n, "/") != 0)) {
		snprintf(err, errlen, "origin: '%s': want scheme://host[:port] with no path", url);
		return -EINVAL;
	}
	memcpy(hostport, rest, n);
	hostport[n] = '\0';
	if (netaddr_split(hostport, o->host, sizeof(o->host), o->port, sizeof(o->port),
			    o->is_tls ? "443" : "80") < 0) {
		snprintf(err, errlen, "origin: '%s': bad host or port", url);
		return -EINVAL;
	}
	snprintf(o->label, sizeof(o->label), "%s", hostport);
	snprintf(o->url, sizeof(o->url), "%s", url);
	if (netaddr_resolve(o->host, o->port, &o->addr, &o->addrlen) < 0) {
		snprintf(err, errlen, "origin: %s: cannot resolve host", o->host);
		return -EHOSTUNREACH;
	}
	return o->is_tls ? tls_setup(o, ca_file, err, errlen) : 0;
}

void origin_free(struct origin *o)
{
	SSL_CTX_free(o->ssl_ctx);
	o->ssl_ctx = NULL;
}

static SSL *tls_session(struct origin *o)
{
	SSL *ssl = SSL_new(o->ssl_ctx);
	struct in6_addr ip;
	bool is_ip = inet_pton(AF_INET, o->host, &ip) == 1 || inet_pton(AF_INET6, o->host, &ip) == 1;

	if (!ssl)
		return NULL;
	if (!is_ip)
		SSL_set_tlsext_host_name(ssl, o->host);
	/* Check the certificate names the origin: a DNS name or an IP address SAN. */
	if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), o->host) != 1
		  : SSL_set1_host(ssl, o->host) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

struct bufferevent *origin_connect(struct origin *o, struct event_base *base)
{
	struct bufferevent *bev;
	int one = 1;

	if (o->is_tls) {
		SSL *ssl = tls_session(o);

		if (!ssl) {
			errno = ENOMEM;
			return NULL;
		}
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!bev) {
			SSL_free(ssl);
			errno = ENOMEM;
			return NULL;
		}
	} else {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (!bev) {
			errno = ENOMEM;
			return NULL;
		}
	}
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&o->addr, (int)o->addrlen) < 0) {
		int e = errno ? errno : ECONNREFUSED;

		bufferevent_free(bev);
		errno = e;
		return NULL;
	}
	setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return bev;
}

struct timeval origin_tv(unsigned ms)
{
	return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* libevent's connect waits for the socket to be writable, under the write timeout; the
 * read timeout runs during it too, so the connect ends after the shorter of the two. */
void origin_set_timeouts(const struct origin *o, struct bufferevent *bev)
{
	struct timeval rd = origin_tv(o->read_ms), wr = origin_tv(o->connect_ms);

	bufferevent_set_timeouts(bev, &rd, &wr);
}

size_t origin_read_more(const struct origin *o, struct bufferevent *bev, size_t max)
{
	return o->is_tls ? 0 : readmore(bev, max);
}

const char *origin_tls_error(struct bufferevent *bev, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long e, first = 0;
	long vr;

	buf[0] = '\0';
	if (!ssl)
		return buf;
	/* libevent queues SSL_get_error()'s small code first; keep the first real one. */
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (!first && ERR_GET_LIB(e) != 0)
			first = e;
	vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK)
		snprintf(buf, len, "TLS: certificate verify failed: %s", X509_verify_cert_error_string(vr));
	else if (first)
		snprintf(buf, len, "TLS: %s", ERR_reason_error_string(first));
	return buf;
}

void origin_note(struct origin *o, enum origin_outcome what)
{
	switch (what) {
	case ORIGIN_SENT:
		__atomic_fetch_add(&o->n_requests, 1, __ATOMIC_RELAXED);
		break;
	case ORIGIN_ANSWERED:
		__atomic_store_n(&o->fails, 0, __ATOMIC_RELAXED);
		break;
	case ORIGIN_FAILED:
	case ORIGIN_TIMED_OUT:
		__atomic_fetch_add(what == ORIGIN_FAILED ? &o->n_errors : &o->n_timeouts, 1,
				   __ATOMIC_RELAXED);
		__atomic_fetch_add(&o->fails, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&o->last_failure, time(NULL), __ATOMIC_RELAXED);
		break;
	}
}

bool origin_is_down(const struct origin *o)
{
	return __atomic_load_n(&o->fails, __ATOMIC_RELAXED) > 0;
}

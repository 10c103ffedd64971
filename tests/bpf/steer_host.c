/* Test stand-in for lotad's steering half: steer_start() with the given options, add
 * targets, optionally check that its own connect to a target is left alone, then serve
 * a one-line HTTP reply on the redirect address until SIGTERM.
 *   steer_host --cgroup DIR --pin-dir DIR --redirect IP:PORT [--target IP:PORT]...
 *              [--sockmap] [--pin-links] [--msg-budget N] [--no-serve] [--self-check IP:PORT]
 * Prints "ready" once steering is attached (and, with --self-check, "self: <body>"). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "steer-loader.h"

static volatile sig_atomic_t is_stopping;

static void on_term(int sig)
{
	is_stopping = 1;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;
	char host[128];
	const char *colon = strrchr(s, ':');
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (!colon || (n = (size_t)(colon - s)) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = 0;
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		host[n - 1] = 0;
		memmove(host, host + 1, n - 1);
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)atoi(colon + 1));
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)atoi(colon + 1));
		return 0;
	}
	return -EINVAL;
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* GET / from addr and print the body: the reply tells which server answered. */
static void self_check(const struct sockaddr_storage *addr)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	char buf[4096];
	size_t got = 0;
	ssize_t n;
	char *body;
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sa_len(addr)) ||
	    write(fd, req, sizeof(req) - 1) < 0) {
		printf("self: error %s\n", strerror(errno));
		goto out;
	}
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	body = strstr(buf, "\r\n\r\n");
	printf("self: %s\n", body ? body + 4 : "(no body)");
out:
	if (fd >= 0)
		close(fd);
	fflush(stdout);
}

static void serve_one(int c)
{
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
				    "Connection: close\r\n\r\nsteered";
	char buf[8192];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(buf) - 1 && (n = read(c, buf + got, sizeof(buf) - 1 - got)) > 0) {
		got += (size_t)n;
		buf[got] = 0;
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	if (write(c, reply, sizeof(reply) - 1) < 0)
		perror("steer_host: write");
	shutdown(c, SHUT_WR);
	while (read(c, buf, sizeof(buf)) > 0)
		;
}

static int serve(const struct sockaddr_storage *addr)
{
	int one = 1, fd, c;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)addr, sa_len(addr)) || listen(fd, 128)) {
		perror("steer_host: listen");
		return -1;
	}
	while (!is_stopping) {
		c = accept(fd, NULL, NULL);
		if (c < 0)
			continue;
		if (fork() == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			serve_one(c);
			_exit(0);
		}
		close(c);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"cgroup", 1, 0, 'c'},     {"pin-dir", 1, 0, 'p'},
	    {"redirect", 1, 0, 'r'},   {"target", 1, 0, 't'},
	    {"sockmap", 0, 0, 's'},    {"pin-links", 0, 0, 'l'},
	    {"msg-budget", 1, 0, 'b'}, {"no-serve", 0, 0, 'n'},
	    {"self-check", 1, 0, 'x'}, {0, 0, 0, 0},
	};
	struct steer_opts o = {0};
	struct sockaddr_storage targets[16], self;
	struct sigaction sa = {.sa_handler = on_term};
	int ntargets = 0, opt, rc, i;
	bool is_serving = true, is_self_check = false;
	struct steer_stats st;
	struct steer *s;
	char err[256];

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o.cgroup = optarg;
			break;
		case 'p':
			o.pin_dir = optarg;
			break;
		case 'r':
			if (parse_addr(optarg, &o.redirect))
				goto usage;
			break;
		case 't':
			if (ntargets == 16 || parse_addr(optarg, &targets[ntargets++]))
				goto usage;
			break;
		case 's':
			o.is_sockmap = true;
			break;
		case 'l':
			o.is_pin_links = true;
			break;
		case 'b':
			o.msg_budget = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			is_serving = false;
			break;
		case 'x':
			if (parse_addr(optarg, &self))
				goto usage;
			is_self_check = true;
			break;
		default:
			goto usage;
		}
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rc = steer_start(&o, &s, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (i = 0; i < ntargets; i++) {
		rc = steer_target_add(s, (struct sockaddr *)&targets[i], true);
		if (rc) {
			fprintf(stderr, "steer_host: add target: %s\n", strerror(-rc));
			steer_stop(s);
			return 1;
		}
	}
	printf("ready %s\n", steer_pin_dir(s));
	fflush(stdout);
	if (is_self_check)
		self_check(&self);
	if (is_serving)
		serve(&o.redirect);
	else
		while (!is_stopping)
			pause();
	if (!steer_stats(s, &st))
		printf("stats rewritten=%llu skipped_own=%llu redirected=%llu\n",
		       (unsigned long long)st.rewritten, (unsigned long long)st.skipped_own,
		       (unsigned long long)st.redirected);
	steer_stop(s);
	return 0;
usage:
	fprintf(stderr, "usage: see the comment at the top of tests/bpf/steer_host.c\n");
	return 2;
}

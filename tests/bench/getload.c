/* getload: the benchmark's HTTP/1.1 GET load generator. N connections (one thread each)
 * start together and each GETs one path K times with keep-alive, reading bodies into a
 * private buffer (or discarding them in the kernel with MSG_TRUNC, -d), and reports one
 * JSON line: bytes, wall seconds, and per-request latency and time to first byte.
 * curl reads slower than what we measure; this client is checked against the limit
 * server by the suite. -H LINE adds a header line to every request (up to 8: SSE-C keys). Build: cc -O2 -o getload getload.c -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (4u << 20)
#define HDR_MAX 65536

struct conn {
	pthread_t th;
	int idx;
	uint64_t bytes;
	int errors;
	double *lat, *ttfb; /* seconds, per request */
	int done;
	char err[160];
};

static struct sockaddr_in g_addr;
static const char *g_host, *g_path;
static char g_extra[4096]; /* -H lines, each ending in CRLF */
static int g_reqs, g_discard;
static pthread_barrier_t g_start;
static double g_t0;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&g_addr, sizeof(g_addr))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One GET on fd: 0 and the body length, or -1 (c->err says why). */
static int get_one(struct conn *c, int fd, char *buf, double *ttfb, uint64_t *body)
{
	char req[16384];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: getload\r\n%s\r\n",
			 g_path, g_host, g_extra);
	double t0 = now();
	if (n >= (int)sizeof(req) || send(fd, req, n, MSG_NOSIGNAL) != n) {
		snprintf(c->err, sizeof(c->err), "send: %s", strerror(errno));
		return -1;
	}
	size_t have = 0;
	char *end = NULL;
	while (!end) {
		ssize_t r = recv(fd, buf + have, HDR_MAX - have, 0);
		if (r <= 0) {
			snprintf(c->err, sizeof(c->err), "recv headers: %s", r ? strerror(errno) : "EOF");
			return -1;
		}
		if (!have)
			*ttfb = now() - t0;
		have += r;
		buf[have] = 0;
		end = strstr(buf, "\r\n\r\n");
		if (!end && have >= HDR_MAX) {
			snprintf(c->err, sizeof(c->err), "headers too long");
			return -1;
		}
	}
	if (strncmp(buf, "HTTP/1.1 200", 12) && strncmp(buf, "HTTP/1.1 206", 12)) {
		snprintf(c->err, sizeof(c->err), "status: %.40s", buf);
		return -1;
	}
	const char *cl = strcasestr(buf, "\r\ncontent-length:");
	if (!cl || cl > end) {
		snprintf(c->err, sizeof(c->err), "no Content-Length");
		return -1;
	}
	uint64_t len = strtoull(cl + 17, NULL, 10);
	uint64_t got = have - (size_t)(end + 4 - buf);
	while (got < len) {
		size_t want = len - got < BUF_SIZE ? len - got : BUF_SIZE;
		ssize_t r = recv(fd, buf, want, g_discard ? MSG_TRUNC : 0);
		if (r <= 0) {
			snprintf(c->err, sizeof(c->err), "recv body at %llu/%llu: %s",
				 (unsigned long long)got, (unsigned long long)len,
				 r ? strerror(errno) : "EOF");
			return -1;
		}
		got += r;
	}
	if (got != len) {
		snprintf(c->err, sizeof(c->err), "pipelined bytes past the body");
		return -1;
	}
	*body = len;
	return 0;
}

static void *run(void *arg)
{
	struct conn *c = arg;
	char *buf = malloc(BUF_SIZE + 1);
	int fd = dial();
	if (fd < 0)
		snprintf(c->err, sizeof(c->err), "connect: %s", strerror(errno));
	pthread_barrier_wait(&g_start);
	for (int k = 0; fd >= 0 && k < g_reqs; k++) {
		double t0 = now(), ttfb = 0;
		uint64_t body = 0;
		if (get_one(c, fd, buf, &ttfb, &body)) {
			c->errors++;
			break;
		}
		c->lat[k] = now() - t0;
		c->ttfb[k] = ttfb;
		c->bytes += body;
		c->done++;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static void print_list(const char *name, struct conn *cs, int n, int is_ttfb)
{
	printf("\"%s\":[", name);
	int first = 1;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < cs[i].done; k++) {
			printf("%s%.6f", first ? "" : ",", is_ttfb ? cs[i].ttfb[k] : cs[i].lat[k]);
			first = 0;
		}
	printf("]");
}

int main(int argc, char **argv)
{
	int opt;
	size_t extra = 0;
	while ((opt = getopt(argc, argv, "dH:")) != -1) {
		if (opt == 'd') {
			g_discard = 1;
		} else if (opt == 'H' && extra + strlen(optarg) + 3 < sizeof(g_extra)) {
			extra += (size_t)snprintf(g_extra + extra, sizeof(g_extra) - extra, "%s\r\n", optarg);
		} else {
			fprintf(stderr, "getload: bad option or -H lines too long\n");
			return 2;
		}
	}
	if (argc - optind != 5) {
		fprintf(stderr, "usage: getload [-d] [-H LINE]... IP:PORT HOST-HEADER PATH CONNS REQS-PER-CONN\n"
				"  -d  discard bodies in the kernel (recv MSG_TRUNC) instead of copying\n");
		return 2;
	}
	char ip[64];
	snprintf(ip, sizeof(ip), "%s", argv[optind]);
	char *colon = strrchr(ip, ':');
	if (!colon)
		return 2;
	*colon = 0;
	g_addr.sin_family = AF_INET;
	g_addr.sin_port = htons(atoi(colon + 1));
	inet_pton(AF_INET, ip, &g_addr.sin_addr);
	g_host = argv[optind + 1];
	g_path = argv[optind + 2];
	int n = atoi(argv[optind + 3]);
	g_reqs = atoi(argv[optind + 4]);
	struct conn *cs = calloc(n, sizeof(*cs));
	pthread_barrier_init(&g_start, NULL, n + 1);
	for (int i = 0; i < n; i++) {
		cs[i].idx = i;
		cs[i].lat = calloc(g_reqs, sizeof(double));
		cs[i].ttfb = calloc(g_reqs, sizeof(double));
		pthread_create(&cs[i].th, NULL, run, &cs[i]);
	}
	g_t0 = now();
	pthread_barrier_wait(&g_start);
	g_t0 = now();
	uint64_t bytes = 0;
	int errors = 0, reqs = 0;
	const char *err = "";
	for (int i = 0; i < n; i++) {
		pthread_join(cs[i].th, NULL);
		bytes += cs[i].bytes;
		errors += cs[i].errors + (cs[i].err[0] && !cs[i].errors);
		reqs += cs[i].done;
		if (cs[i].err[0])
			err = cs[i].err;
	}
	double secs = now() - g_t0;
	printf("{\"bytes\":%llu,\"secs\":%.6f,\"reqs\":%d,\"errors\":%d,\"error\":\"%s\",",
	       (unsigned long long)bytes, secs, reqs, errors, err);
	print_list("lat", cs, n, 0);
	printf(",");
	print_list("ttfb", cs, n, 1);
	printf("}\n");
	return errors ? 1 : 0;
}

/* sendfile_server: the benchmark's "limit": the least a server can do to deliver a file
 * over loopback. Every request on a keep-alive connection (one thread each) gets the
 * whole file with sendfile from the page cache; nothing is parsed but the blank line.
 * With BIND_IP it listens there instead (the NET rig's link check, net.py).
 * Build: cc -O2 -o sendfile_server sendfile_server.c -lpthread
 * Usage: sendfile_server PORT FILE [BIND_IP]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_file;
static off_t g_size;

/* Reads until the end of one request's headers; 0, or -1 on EOF/error. */
static int read_request(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	for (;;) {
		ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
		if (r <= 0)
			return -1;
		have += r;
		buf[have] = 0;
		if (strstr(buf, "\r\n\r\n"))
			return 0;
		if (have >= cap - 1)
			return -1;
	}
}

static void *serve(void *arg)
{
	int fd = (int)(long)arg;
	char buf[16384], hdr[128];
	while (!read_request(fd, buf, sizeof(buf))) {
		int n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n\r\n",
				 (long long)g_size);
		if (send(fd, hdr, n, MSG_NOSIGNAL | MSG_MORE) != n)
			break;
		off_t off = 0;
		while (off < g_size)
			if (sendfile(fd, g_file, &off, g_size - off) <= 0)
				goto out;
	}
out:
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: sendfile_server PORT FILE [BIND_IP]\n");
		return 2;
	}
	g_file = open(argv[2], O_RDONLY);
	struct stat st;
	if (g_file < 0 || fstat(g_file, &st)) {
		perror(argv[2]);
		return 1;
	}
	g_size = st.st_size;
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (argc == 4 && inet_pton(AF_INET, argv[3], &a.sin_addr) != 1) {
		fprintf(stderr, "sendfile_server: %s: not an IPv4 address\n", argv[3]);
		return 2;
	}
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1024)) {
		perror("bind/listen");
		return 1;
	}
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_t th;
		pthread_create(&th, NULL, serve, (void *)(long)fd);
		pthread_detach(th);
	}
}

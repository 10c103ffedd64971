/* delay_relay: the far-away origin of the NET benchmark (net.py). A TCP relay that holds
 * every byte it forwards for half a round trip in each direction, and a connection's first
 * request bytes one more round trip (the TCP handshake a real link would cost), so that
 * clients on a fast veth see the origin RTT_MS away: netem is not in this kernel. Link
 * rates are htb's job; CONN_RATE (bytes/s, optional) caps what each connection gets from
 * upstream, as object stores pace a single GET (S3: about 100 MB/s per connection) so
 * that clients open several. One thread, epoll, bounded queues and connections.
 *
 *   delay_relay LISTEN_IP:PORT UPSTREAM_IP:PORT RTT_MS LIFETIME_S [CONN_RATE]
 *
 * Prints "ready" once listening; exits after LIFETIME_S or on SIGTERM/SIGINT, with a
 * line of counters on stderr. Build: cc -O2 -o delay_relay delay_relay.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RELAYS 512
#define READ_SIZE (256u << 10)
#define DIR_QUEUE_MAX (8u << 20) /* bytes held per direction of one connection */
#define ALL_QUEUE_MAX (512u << 20) /* bytes held by the whole relay */
#define MAX_EVENTS 256

struct chunk {
	struct chunk *next;
	uint64_t due_ns;
	size_t len, off;
	bool is_eof;
	char data[];
};

/* One direction of a relayed connection: bytes read from `from`, written to `to`. */
struct dir {
	int from, to;
	bool can_read, can_write, is_eof_read, is_eof_sent;
	bool is_up; /* client -> upstream: the first bytes also wait for the handshake */
	struct chunk *head, *tail;
	size_t queued;
	uint64_t free_ns; /* downstream, capped: when the connection's rate lets bytes go next */
};

struct relay {
	int cfd, ufd;
	bool is_connected, is_dead;
	uint64_t accepted_ns;
	struct dir up, down;
	/* epoll's data.ptr: which socket an event is about */
	struct side {
		struct relay *r;
		bool is_client;
	} cside, uside;
};

static struct relay *g_relay[MAX_RELAYS];
static int g_nrelays, g_epfd;
static uint64_t g_rtt_ns, g_queued, g_conn_rate;
static uint64_t g_accepted, g_refused, g_bytes_up, g_bytes_down;
static struct sockaddr_in g_upstream;
static volatile sig_atomic_t g_stop;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (!colon || colon - s >= (long)sizeof(host))
		return -EINVAL;
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(atoi(colon + 1));
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

/* When len bytes read now may leave: half a round trip later, the first request bytes
 * not before a handshake's round trip after the accept, and a capped connection's
 * downstream bytes not before its rate allows. */
static uint64_t due_time(const struct relay *r, struct dir *d, uint64_t now, size_t len)
{
	uint64_t t = now;

	if (d->is_up && t < r->accepted_ns + g_rtt_ns)
		t = r->accepted_ns + g_rtt_ns;
	if (!d->is_up && g_conn_rate) {
		if (t < d->free_ns)
			t = d->free_ns;
		d->free_ns = t + (uint64_t)len * 1000000000u / g_conn_rate;
	}
	return t + g_rtt_ns / 2;
}

static void push(struct dir *d, struct chunk *c)
{
	c->next = NULL;
	if (d->tail)
		d->tail->next = c;
	else
		d->head = c;
	d->tail = c;
	d->queued += c->len;
	g_queued += c->len;
}

static void pop(struct dir *d)
{
	struct chunk *c = d->head;

	d->head = c->next;
	if (!d->head)
		d->tail = NULL;
	d->queued -= c->len;
	g_queued -= c->len;
	free(c);
}

/* A capped connection holds what its rate sends in two round trips (what a link that
 * slow has in flight), not more: the bytes a client that hangs up never gets are the
 * ones the upstream had already sent, as with a real far-away store. */
static size_t dir_queue_max(const struct dir *d)
{
	uint64_t q;

	if (d->is_up || !g_conn_rate)
		return DIR_QUEUE_MAX;
	q = g_conn_rate * 2 * g_rtt_ns / 1000000000u;
	return q < READ_SIZE ? READ_SIZE : q > DIR_QUEUE_MAX ? DIR_QUEUE_MAX : (size_t)q;
}

/* Reads what the queues may hold; 0, or -1 when the connection must end. */
static int dir_read(struct relay *r, struct dir *d, uint64_t now)
{
	static char buf[READ_SIZE];

	while (d->can_read && !d->is_eof_read && d->queued < dir_queue_max(d) &&
	       g_queued < ALL_QUEUE_MAX) {
		ssize_t n = recv(d->from, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			d->can_read = errno == EINTR;
			continue;
		}
		if (n < 0)
			return -1;
		struct chunk *c = malloc(sizeof(*c) + n);
		if (!c)
			return -1;
		memcpy(c->data, buf, n);
		c->len = n;
		c->off = 0;
		c->is_eof = n == 0;
		c->due_ns = due_time(r, d, now, n);
		d->is_eof_read = n == 0;
		push(d, c);
	}
	return 0;
}

/* Writes the chunks that are due; 0, or -1 when the connection must end. */
static int dir_write(struct dir *d, uint64_t now)
{
	while (d->head && d->head->due_ns <= now && d->can_write) {
		struct chunk *c = d->head;
		if (c->is_eof) {
			shutdown(d->to, SHUT_WR);
			d->is_eof_sent = true;
			pop(d);
			continue;
		}
		ssize_t n = send(d->to, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			d->can_write = errno == EINTR;
			continue;
		}
		if (n < 0)
			return -1;
		*(d->is_up ? &g_bytes_up : &g_bytes_down) += n;
		c->off += n;
		if (c->off == c->len)
			pop(d);
	}
	return 0;
}

static void relay_free(struct relay *r)
{
	while (r->up.head)
		pop(&r->up);
	while (r->down.head)
		pop(&r->down);
	close(r->cfd);
	close(r->ufd);
	free(r);
}

static void relay_pump(struct relay *r, uint64_t now)
{
	if (r->is_dead)
		return;
	if (dir_write(&r->up, now) || dir_write(&r->down, now) ||
	    dir_read(r, &r->up, now) || dir_read(r, &r->down, now) ||
	    dir_write(&r->up, now) || dir_write(&r->down, now))
		r->is_dead = true;
	if (r->up.is_eof_sent && r->down.is_eof_sent)
		r->is_dead = true;
}

static int watch(int fd, struct side *s)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				  .data.ptr = s };

	return epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int relay_open(int cfd)
{
	int one = 1, ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct relay *r = calloc(1, sizeof(*r));

	if (ufd < 0 || !r)
		goto err;
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(ufd, (struct sockaddr *)&g_upstream, sizeof(g_upstream)) &&
	    errno != EINPROGRESS)
		goto err;
	r->cfd = cfd;
	r->ufd = ufd;
	r->accepted_ns = now_ns();
	r->up = (struct dir){ .from = cfd, .to = ufd, .is_up = true };
	r->down = (struct dir){ .from = ufd, .to = cfd };
	r->cside = (struct side){ r, true };
	r->uside = (struct side){ r, false };
	if (watch(cfd, &r->cside) || watch(ufd, &r->uside))
		goto err;
	g_relay[g_nrelays++] = r;
	return 0;
err:
	if (ufd >= 0)
		close(ufd);
	free(r);
	return -1;
}

static void accept_all(int lfd)
{
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		if (g_nrelays == MAX_RELAYS || relay_open(cfd)) {
			g_refused++;
			close(cfd);
			continue;
		}
		g_accepted++;
	}
}

/* Records what epoll says happened; relay_pump acts on it. */
static void on_event(struct side *s, uint32_t events)
{
	struct relay *r = s->r;
	int err = 0;
	socklen_t len = sizeof(err);

	if (events & EPOLLERR)
		r->is_dead = true;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
		(s->is_client ? &r->up : &r->down)->can_read = true;
	if (!(events & EPOLLOUT))
		return;
	if (!s->is_client && !r->is_connected) {
		if (getsockopt(r->ufd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			r->is_dead = true;
			return;
		}
		r->is_connected = true;
	}
	(s->is_client ? &r->down : &r->up)->can_write = true;
}

/* How long until the next queued chunk is due (a second when none is queued). */
static struct timespec next_timeout(uint64_t now)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < g_nrelays; i++) {
		struct dir *d[2] = { &g_relay[i]->up, &g_relay[i]->down };
		for (int k = 0; k < 2; k++)
			if (d[k]->head && d[k]->can_write && d[k]->head->due_ns < best)
				best = d[k]->head->due_ns;
	}
	uint64_t wait = best == UINT64_MAX ? 1000000000u : best <= now ? 0 : best - now;
	return (struct timespec){ .tv_sec = wait / 1000000000u, .tv_nsec = wait % 1000000000u };
}

static void sweep(uint64_t now)
{
	for (int i = 0; i < g_nrelays;) {
		relay_pump(g_relay[i], now);
		if (g_relay[i]->is_dead) {
			relay_free(g_relay[i]);
			g_relay[i] = g_relay[--g_nrelays];
			continue;
		}
		i++;
	}
}

static int listen_on(const struct sockaddr_in *a)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)a, sizeof(*a)) || listen(fd, 1024)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in la;
	struct epoll_event evs[MAX_EVENTS];
	struct sigaction sa = { .sa_handler = on_signal };
	int lfd;

	if ((argc != 5 && argc != 6) || parse_addr(argv[1], &la) || parse_addr(argv[2], &g_upstream)) {
		fprintf(stderr, "usage: delay_relay LISTEN_IP:PORT UPSTREAM_IP:PORT RTT_MS LIFETIME_S "
				"[CONN_RATE]\n");
		return 2;
	}
	g_conn_rate = argc == 6 ? strtoull(argv[5], NULL, 10) : 0;
	g_rtt_ns = (uint64_t)atoi(argv[3]) * 1000000u;
	uint64_t end = now_ns() + (uint64_t)atoi(argv[4]) * 1000000000u;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	lfd = listen_on(&la);
	g_epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	if (lfd < 0 || g_epfd < 0 || epoll_ctl(g_epfd, EPOLL_CTL_ADD, lfd, &lev)) {
		fprintf(stderr, "delay_relay: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!g_stop && now_ns() < end) {
		struct timespec ts = next_timeout(now_ns());
		int n = epoll_pwait2(g_epfd, evs, MAX_EVENTS, &ts, NULL);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr)
				accept_all(lfd);
			else
				on_event(evs[i].data.ptr, evs[i].events);
		}
		sweep(now_ns());
	}
	fprintf(stderr, "delay_relay: connections %llu (refused %llu), bytes up %llu, down %llu\n",
		(unsigned long long)g_accepted, (unsigned long long)g_refused,
		(unsigned long long)g_bytes_up, (unsigned long long)g_bytes_down);
	return 0;
}

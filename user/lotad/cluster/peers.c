/* peers: the member list and its health, the view workers place keys with, the traffic
 * counters, and their rendering for /metrics and /admin/peers. The control thread's
 * timers, DNS and probes are in peerprobe.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "netaddr.h"
#include "cluster/peers-int.h"

/* --- health -------------------------------------------------------------------- */

unsigned peer_health_penalty(const struct peer_health *h, time_t now)
{
	/* 0.977 per second halves in 30 s; integer steps keep libm out of the daemon */
	unsigned long long v = h->penalty;
	time_t dt = now - h->penalty_at;

	for (time_t i = 0; i < dt && v > 0; i++)
		v = v * 977 / 1000;
	return (unsigned)v;
}

static void set_penalty(struct peer_health *h, unsigned v, time_t now)
{
	h->penalty = v > PEER_FLAP_MAX ? PEER_FLAP_MAX : v;
	h->penalty_at = now;
}

static bool go_down(struct peer_health *h, time_t now)
{
	if (!h->is_up)
		return false;
	h->is_up = false;
	h->since = now;
	h->flaps++;
	set_penalty(h, peer_health_penalty(h, now) + PEER_FLAP_PENALTY, now);
	if (h->penalty > PEER_FLAP_SUPPRESS)
		h->is_suppressed = true;
	return true;
}

bool peer_health_observe(struct peer_health *h, bool ok, time_t now)
{
	if (!ok) {
		h->ok_run = 0;
		h->fail_run++;
		return h->fail_run >= PEER_DOWN_AFTER && go_down(h, now);
	}
	h->fail_run = 0;
	h->ok_run++;
	if (h->is_up || h->ok_run < PEER_UP_AFTER)
		return false;
	if (h->is_suppressed) {
		if (peer_health_penalty(h, now) >= PEER_FLAP_REUSE)
			return false;
		h->is_suppressed = false;
	}
	h->is_up = true;
	h->since = now;
	return true;
}

bool peer_health_fail(struct peer_health *h, time_t now)
{
	h->ok_run = 0;
	h->fail_run = PEER_DOWN_AFTER;
	return go_down(h, now);
}

/* --- the `peers` key ----------------------------------------------------------- */

static bool valid_port(const char *s, size_t n)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v > 0 && v < 65536;
}

/* HOST:PORT or [V6]:PORT, with a host of name or address characters only. */
static bool valid_hostport(const char *s, size_t n)
{
	const char *colon;
	size_t hlen;

	if (n > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (!rb || rb == s + 1 || (size_t)(rb - s) + 1 >= n || rb[1] != ':')
			return false;
		for (const char *c = s + 1; c < rb; c++)
			if (!strchr("0123456789abcdefABCDEF:.", *c))
				return false;
		return valid_port(rb + 2, n - (size_t)(rb - s) - 2);
	}
	colon = memrchr(s, ':', n);
	if (!colon)
		return false;
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen > 253 || memchr(s, ':', hlen))
		return false;
	for (size_t i = 0; i < hlen; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_",
			    s[i]))
			return false;
	return valid_port(colon + 1, n - hlen - 1);
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

static int parse_dns(const char *s, struct peers_spec *out, char *err, size_t errlen)
{
	const char *rest = s + 4, *colon = strrchr(rest, ':');

	if (!colon || !valid_hostport(rest, strlen(rest)) || rest[0] == '[' ||
	    (size_t)(colon - rest) >= sizeof(out->dns_name)) {
		snprintf(err, errlen, "peers: '%s' is not dns:NAME:PORT", s);
		return -EINVAL;
	}
	out->is_dns = true;
	memcpy(out->dns_name, rest, (size_t)(colon - rest));
	out->dns_name[colon - rest] = '\0';
	snprintf(out->dns_port, sizeof(out->dns_port), "%s", colon + 1);
	return 0;
}

int peers_parse_spec(const char *s, struct peers_spec *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(s, "dns:", 4) == 0)
		return parse_dns(s, out, err, errlen);
	while (*s) {
		size_t n = strcspn(s, ","), len = n;
		const char *e = s;

		trim(&e, &len);
		if (len == 0 && s[n] == '\0' && out->n > 0)
			break; /* one trailing comma */
		if (!valid_hostport(e, len) || len >= sizeof(out->entries[0])) {
			snprintf(err, errlen, "peers: '%.*s' is not HOST:PORT", (int)len, e);
			return -EINVAL;
		}
		if (out->n == PEERS_MAX) {
			snprintf(err, errlen, "peers: more than %d members", PEERS_MAX);
			return -E2BIG;
		}
		for (size_t i = 0; i < out->n; i++) {
			if (strlen(out->entries[i]) == len &&
			    memcmp(out->entries[i], e, len) == 0) {
				snprintf(err, errlen, "peers: '%.*s' appears twice", (int)len, e);
				return -EINVAL;
			}
		}
		memcpy(out->entries[out->n], e, len);
		out->entries[out->n++][len] = '\0';
		s += n;
		if (*s == ',')
			s++;
	}
	return 0;
}

/* --- members ------------------------------------------------------------------- */

int peers_slot_for(struct peers *p, const char *id)
{
	int free_slot = -1;

	for (int i = 0; i < PEERS_SLOTS; i++) {
		if (strcmp(p->slots[i].id, id) == 0)
			return i;
		if (free_slot < 0 && !p->slots[i].id[0])
			free_slot = i;
	}
	if (free_slot < 0)
		free_slot = 0; /* more ids than slots in one run: share the first one's counters */
	pthread_mutex_lock(&p->lock);
	snprintf(p->slots[free_slot].id, sizeof(p->slots[free_slot].id), "%s", id);
	pthread_mutex_unlock(&p->lock);
	return free_slot;
}

static struct peer *find(struct peers *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->m[i]->id, id) == 0)
			return p->m[i];
	return NULL;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static bool is_self(struct peers *p, const struct peer *m)
{
	if (p->self_cfg[0])
		return strcmp(p->self_cfg, m->id) == 0;
	/* no `self`: the member on our peer port at one of our own addresses */
	return p->listen_port && port_of(&m->addr) == p->listen_port &&
	       netaddr_is_local(&m->addr);
}

static struct peer *member_new(struct peers *p, const struct sockaddr_storage *ss, const char *id,
			       time_t now)
{
	struct peer *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->p = p;
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->addr = *ss;
	m->addrlen =
	    ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	m->id_hash = hrw_hash(id, strlen(id));
	m->slot = peers_slot_for(p, id);
	m->is_self = is_self(p, m);
	m->h.since = now;
	m->h.penalty_at = now;
	log_info("peers: %s joins%s", id, m->is_self ? " (this node)" : "");
	return m;
}

static void member_free(struct peer *m)
{
	if (m->probe)
		bufferevent_free(m->probe);
	free(m);
}

int peers_set_members(struct peers *p, const struct sockaddr_storage *addrs, size_t n, time_t now)
{
	struct peer *next[PEERS_MAX];
	size_t k = 0, changes = 0;

	for (size_t i = 0; i < n && k < PEERS_MAX; i++) {
		char id[PEERAUTH_NODE_MAX];
		struct peer *m;
		bool dup = false;

		addr_str((const struct sockaddr *)&addrs[i], id, sizeof(id));
		for (size_t j = 0; j < k; j++)
			dup |= strcmp(next[j]->id, id) == 0;
		if (dup)
			continue;
		m = find(p, id);
		if (!m) {
			m = member_new(p, &addrs[i], id, now);
			if (!m)
				return -ENOMEM;
			changes++;
		}
		next[k++] = m;
	}
	if (n > PEERS_MAX)
		log_warn("peers: %zu members, only the first %d are used", n, PEERS_MAX);
	for (size_t i = 0; i < p->n; i++) {
		bool kept = false;

		for (size_t j = 0; j < k; j++)
			kept |= next[j] == p->m[i];
		if (!kept) {
			log_info("peers: %s leaves", p->m[i]->id);
			member_free(p->m[i]);
			changes++;
		}
	}
	memcpy(p->m, next, k * sizeof(next[0]));
	p->n = k;
	return (int)changes;
}

void peers_observe(struct peers *p, const char *id, bool ok, time_t now)
{
	struct peer *m = find(p, id);

	if (!m || m->is_self)
		return;
	if (ok)
		m->probes_ok++;
	else
		m->probes_failed++;
	if (peer_health_observe(&m->h, ok, now)) {
		log_info("peers: %s is %s", m->id, m->h.is_up ? "up" : "down");
		peers_publish(p);
	} else if (ok && m->h.is_suppressed && m->h.ok_run == PEER_UP_AFTER) {
		log_info("peers: %s answers again but flapped %llu times: kept down for now", m->id,
			 (unsigned long long)m->h.flaps);
	}
}

/* --- the view ------------------------------------------------------------------ */

static struct peers_view *view_get(struct peers *p)
{
	struct peers_view *v;

	pthread_mutex_lock(&p->lock);
	v = p->view;
	if (v)
		__atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void view_put(struct peers_view *v)
{
	if (v && __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(v);
}

static bool same_placement(const struct peers_view *a, const struct peers_view *b)
{
	if (!a || a->n != b->n || a->self != b->self)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->nodes[i].id_hash != b->nodes[i].id_hash ||
		    a->nodes[i].is_live != b->nodes[i].is_live)
			return false;
	return true;
}

/* Each live member's share of PEERS_SHARE_SAMPLES synthetic placement keys: the share of
 * chunks it owns (HRW spreads any set of keys alike), without asking every node for its
 * index. */
static void estimate_shares(struct peers_view *v)
{
	unsigned count[PEERS_MAX] = {0};

	for (uint64_t k = 0; k < PEERS_SHARE_SAMPLES; k++) {
		int o = hrw_owner_hash(v->nodes, v->n, hrw_hash(&k, sizeof(k)));

		if (o >= 0)
			count[o]++;
	}
	for (size_t i = 0; i < v->n; i++)
		v->share[i] = (double)count[i] / PEERS_SHARE_SAMPLES;
}

static struct peers_view *view_build(struct peers *p)
{
	struct peers_view *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->refs = 1;
	v->n = p->n;
	v->self = -1;
	for (size_t i = 0; i < p->n; i++) {
		const struct peer *m = p->m[i];

		v->nodes[i] = (struct hrw_node){m->id_hash, m->is_self || m->h.is_up};
		snprintf(v->targets[i].id, sizeof(v->targets[i].id), "%s", m->id);
		v->targets[i].addr = m->addr;
		v->targets[i].addrlen = m->addrlen;
		v->targets[i].slot = m->slot;
		if (m->is_self) {
			v->self = (int)i;
			snprintf(v->self_id, sizeof(v->self_id), "%s", m->id);
		}
	}
	if (v->self < 0)
		snprintf(v->self_id, sizeof(v->self_id), "%s", p->self_cfg);
	return v;
}

void peers_publish(struct peers *p)
{
	struct peers_view *v = view_build(p), *old;

	if (!v) {
		log_error("peers: out of memory: placement not updated");
		return;
	}
	old = view_get(p);
	if (same_placement(old, v)) {
		view_put(old);
		free(v);
		return;
	}
	v->generation = old ? old->generation + 1 : 1;
	view_put(old);
	estimate_shares(v);
	pthread_mutex_lock(&p->lock);
	old = p->view;
	p->view = v;
	pthread_mutex_unlock(&p->lock);
	if (old)
		__atomic_add_fetch(&p->membership_changes, 1, __ATOMIC_RELAXED);
	view_put(old);
}

int peers_owner(struct peers *p, const void *key, size_t klen, struct peer_target *out)
{
	struct peers_view *v;
	int o, r = 0;

	if (!p)
		return 0;
	v = view_get(p);
	if (!v)
		return 0;
	o = hrw_owner(v->nodes, v->n, key, klen);
	if (o >= 0 && o != v->self) {
		*out = v->targets[o];
		r = 1;
	}
	view_put(v);
	return r;
}

int peers_chunk_owner(struct peers *p, const char *bucket, const char *key, const char *version,
		      uint64_t index, struct peer_target *out)
{
	char buf[PEERS_PLACEMENT_KEY_MAX];
	int n = snprintf(buf, sizeof(buf), "%s/%s%c%s%c%llu", bucket, key, 0, version ? version : "",
			 0, (unsigned long long)index);

	/* longer than S3 allows: the classifier refused it already; keep the answer defined */
	if (n < 0 || (size_t)n >= sizeof(buf))
		return 0;
	return peers_owner(p, buf, (size_t)n, out);
}

bool peers_has_live_peer(struct peers *p)
{
	struct peers_view *v = p ? view_get(p) : NULL;
	bool is_live = false;

	for (size_t i = 0; v && i < v->n && !is_live; i++)
		is_live = (int)i != v->self && v->nodes[i].is_live;
	view_put(v);
	return is_live;
}

bool peers_is_up(struct peers *p, const char *id)
{
	struct peers_view *v = p ? view_get(p) : NULL;
	bool is_up = false;

	for (size_t i = 0; v && i < v->n; i++)
		if (strcmp(v->targets[i].id, id) == 0)
			is_up = v->nodes[i].is_live;
	view_put(v);
	return is_up;
}

size_t peers_live(struct peers *p, struct peer_target *out, size_t max)
{
	struct peers_view *v = p ? view_get(p) : NULL;
	size_t n = 0;

	for (size_t i = 0; v && i < v->n && n < max; i++)
		if ((int)i != v->self && v->nodes[i].is_live)
			out[n++] = v->targets[i];
	view_put(v);
	return n;
}

void peers_self(struct peers *p, char *buf, size_t len)
{
	struct peers_view *v = p ? view_get(p) : NULL;

	snprintf(buf, len, "%s", v ? v->self_id : "");
	view_put(v);
}

/* --- counters ------------------------------------------------------------------ */

void peers_count_sent(struct peers *p, const struct peer_target *t, uint64_t bytes)
{
	__atomic_add_fetch(&p->requests_sent, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&p->slots[t->slot].sent, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&p->slots[t->slot].sent_bytes, bytes, __ATOMIC_RELAXED);
}

void peers_count_served(struct peers *p)
{
	__atomic_add_fetch(&p->requests_served, 1, __ATOMIC_RELAXED);
}

void peers_count_fallback(struct peers *p, const struct peer_target *t)
{
	__atomic_add_fetch(&p->fallbacks, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&p->slots[t->slot].fallbacks, 1, __ATOMIC_RELAXED);
}

void peers_count(struct peers *p, enum peers_counter c, uint64_t n)
{
	if (p && c < PEERS_COUNTERS)
		__atomic_add_fetch(&p->counters[c], n, __ATOMIC_RELAXED);
}

void peers_report_unreachable(struct peers *p, const struct peer_target *t)
{
	__atomic_add_fetch(&p->fallbacks, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&p->slots[t->slot].fallbacks, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&p->slots[t->slot].failed, 1, __ATOMIC_RELEASE);
	if (p->wake)
		event_active(p->wake, EV_READ, 0);
}

/* Control thread: apply the failures workers reported since the last call. */
void peers_apply_reports(struct peers *p, time_t now)
{
	bool changed = false;

	for (size_t i = 0; i < p->n; i++) {
		struct peer *m = p->m[i];

		if (!__atomic_exchange_n(&p->slots[m->slot].failed, 0, __ATOMIC_ACQ_REL) ||
		    m->is_self)
			continue;
		if (peer_health_fail(&m->h, now)) {
			log_warn("peers: %s failed a peer request: down until it answers "
				 "probes again",
				 m->id);
			changed = true;
		}
	}
	if (changed)
		peers_publish(p);
}

static uint64_t get(const uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

void peers_render_metrics(struct peers *p, struct evbuffer *out)
{
	size_t up = 0;

	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		up += p->m[i]->is_self || p->m[i]->h.is_up;
#define M(name, type, help, v)                                                                     \
	evbuffer_add_printf(out,                                                                   \
			    "# HELP lota_" #name " " help "\n# TYPE lota_" #name " " #type         \
			    "\nlota_" #name " %llu\n",                                             \
			    (unsigned long long)(v))
	M(peer_requests_sent, counter, "chunk requests sent to other nodes' peer ports",
	  get(&p->requests_sent));
	M(peer_requests_served, counter, "peer requests served for other nodes",
	  get(&p->requests_served));
	M(peer_fallbacks, counter, "peer requests that failed before their answer and were "
	  "served another way", get(&p->fallbacks));
	M(peer_chunk_requests_sent, counter, "chunks asked of their owner node",
	  get(&p->counters[PEERS_CHUNKS_SENT]));
	M(peer_chunk_requests_kept_alive, counter, "chunk requests sent on a connection an "
	  "earlier chunk of the same owner came by", get(&p->counters[PEERS_CHUNKS_SENT_KEPT]));
	M(peer_chunk_requests_served, counter, "chunks served to other nodes",
	  get(&p->counters[PEERS_CHUNKS_SERVED]));
	M(peer_chunk_failovers, counter, "chunks whose owner failed mid-transfer: the rest came "
	  "from the origin", get(&p->counters[PEERS_CHUNK_FAILOVERS]));
	M(peer_chunk_bytes, counter, "chunk bytes received from owner nodes",
	  get(&p->counters[PEERS_CHUNK_BYTES]));
	M(peer_chunk_bytes_served, counter, "chunk bytes answered to other nodes (an answer cut "
	  "short counts whole)", get(&p->counters[PEERS_CHUNK_BYTES_SERVED]));
	M(peer_prefetches_sent, counter, "chunk fills begun on their owner ahead of a reader",
	  get(&p->counters[PEERS_PREFETCHES_SENT]));
	M(peer_invalidations_sent, counter, "invalidations sent to other nodes for writes here",
	  get(&p->counters[PEERS_INVALIDATIONS_SENT]));
	M(membership_changes, counter, "changes of the live member set",
	  get(&p->membership_changes));
	M(peers_members, gauge, "cluster members, this node included", p->n);
	M(peers_up, gauge, "members up, this node included", up);
#undef M
}

static void json_member(struct evbuffer *b, const struct peer *m, double share, time_t now)
{
	const struct peer_slot *s = &m->p->slots[m->slot];
	const char *state = m->is_self		 ? "self"
			    : m->h.is_up	 ? "up"
			    : m->h.is_suppressed ? "damped"
						 : "down";

	/* ids are checked addresses: nothing in them needs JSON escaping */
	evbuffer_add_printf(
	    b,
	    "{\"id\":\"%s\",\"state\":\"%s\",\"self\":%s,\"share\":%.4f,"
	    "\"since_s\":%lld,\"flaps\":%llu,\"penalty\":%u,\"probes_ok\":%llu,"
	    "\"probes_failed\":%llu,\"sent\":%llu,\"sent_bytes\":%llu,\"fallbacks\":%llu}",
	    m->id, state, m->is_self ? "true" : "false", share, (long long)(now - m->h.since),
	    (unsigned long long)m->h.flaps, peer_health_penalty(&m->h, now),
	    (unsigned long long)m->probes_ok, (unsigned long long)m->probes_failed,
	    (unsigned long long)get(&s->sent), (unsigned long long)get(&s->sent_bytes),
	    (unsigned long long)get(&s->fallbacks));
}

void peers_render_json(struct peers *p, struct evbuffer *b)
{
	struct peers_view *v = view_get(p);
	time_t now = peers_now();

	evbuffer_add_printf(b, "{\"mode\":\"%s\",\"self\":\"%s\",\"generation\":%llu,\"members\":[",
			    p->spec.is_dns ? "dns" : "static", v ? v->self_id : "",
			    (unsigned long long)(v ? v->generation : 0));
	for (size_t i = 0; i < p->n; i++) {
		double share = 0;

		for (size_t j = 0; v && j < v->n; j++)
			if (strcmp(v->targets[j].id, p->m[i]->id) == 0)
				share = v->share[j];
		if (i)
			evbuffer_add(b, ",", 1);
		json_member(b, p->m[i], share, now);
	}
	evbuffer_add_printf(b,
			    "],\"requests_sent\":%llu,\"requests_served\":%llu,\"fallbacks\":%llu,"
			    "\"chunk_requests_sent\":%llu,\"chunk_requests_served\":%llu,"
			    "\"chunk_failovers\":%llu,\"membership_changes\":%llu}\n",
			    (unsigned long long)get(&p->requests_sent),
			    (unsigned long long)get(&p->requests_served),
			    (unsigned long long)get(&p->fallbacks),
			    (unsigned long long)get(&p->counters[PEERS_CHUNKS_SENT]),
			    (unsigned long long)get(&p->counters[PEERS_CHUNKS_SERVED]),
			    (unsigned long long)get(&p->counters[PEERS_CHUNK_FAILOVERS]),
			    (unsigned long long)get(&p->membership_changes));
	view_put(v);
}

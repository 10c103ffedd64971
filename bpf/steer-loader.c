/* Transparent steering loader: opens the generated skeleton, writes the config map, pins
 * maps and programs with BTF under the pin directory and attaches to one cgroup. Links
 * belong to this process unless pinned, so steering ends with lotad (fail-open). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer-loader.h"
#include "steer.h"
#include "steer.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#define BPFFS_ROOT "/sys/fs/bpf"

enum { LINK_CONNECT4, LINK_CONNECT6, LINK_SOCKOPS, LINK_MAX };

struct steer {
	struct steer_bpf *skel;
	struct bpf_link *links[LINK_MAX];
	bool is_msg_attached;
	bool is_pin_links;
	bool is_pin_dir_ours; /* on bpffs and ours to clean: only then unpin */
	int cgroup_fd;
	char cgroup[PATH_MAX];
	char pin_dir[PATH_MAX];
};

/* What gets pinned, under which file name: maps and programs, then links. */
struct pin {
	const char *name;
	bool is_link;
};

static const struct pin pins[] = {
    {"targets", false},	     {"config", false},	     {"stats", false},	 {"flows", false},
    {"clients", false},	     {"peers", false},	     {"pending", false}, {"connect4", false},
    {"connect6", false},     {"sockops", false},     {"msg", false},	 {"link_connect4", true},
    {"link_connect6", true}, {"link_sockops", true},
};

static const char *link_pin_names[LINK_MAX] = {"link_connect4", "link_connect6", "link_sockops"};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = (size_t)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < errlen)
		snprintf(err + n, errlen - n, ": %s", strerror(-rc));
	return rc;
}

static int pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int cgroup2_mount(char *buf, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2"))
			continue;
		rc = strlen(m->mnt_dir) < len ? 0 : -ENAMETOOLONG;
		if (!rc)
			strcpy(buf, m->mnt_dir);
		break;
	}
	endmntent(f);
	return rc;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	char *p;

	if (strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The pin directory must be on bpffs; mount it at /sys/fs/bpf if that is where the
 * directory is meant to live and nobody has mounted it yet. */
static int pin_dir_prepare(const char *dir, char *err, size_t errlen)
{
	int rc;

	if (!strncmp(dir, BPFFS_ROOT "/", strlen(BPFFS_ROOT "/")) && !is_bpffs(BPFFS_ROOT) &&
	    mount("bpf", BPFFS_ROOT, "bpf", 0, "mode=0700"))
		return fail(err, errlen, -errno, "bpf: mount bpffs on %s", BPFFS_ROOT);
	rc = mkdir_p(dir);
	if (rc)
		return fail(err, errlen, rc, "bpf: mkdir %s", dir);
	if (!is_bpffs(dir))
		return fail(err, errlen, -ENOTSUP, "bpf: pin dir %s is not on bpffs", dir);
	return 0;
}

/* A previous lotad may have died with its pins (and, with pin_links, its links) in
 * place: detach those links, then drop every pin we would create. */
static int pins_clear(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	size_t i;
	int fd;

	for (i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		if (pin_path(path, sizeof(path), dir, pins[i].name))
			return fail(err, errlen, -ENAMETOOLONG, "bpf: pin dir %s", dir);
		if (pins[i].is_link) {
			fd = bpf_obj_get(path);
			if (fd >= 0) {
				bpf_link_detach(fd);
				close(fd);
			}
		}
		if (unlink(path) && errno != ENOENT)
			return fail(err, errlen, -errno, "bpf: unpin stale %s", path);
	}
	return 0;
}

static int config_fill(struct steer_config *c, const struct steer_opts *o, char *err, size_t errlen)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	const struct sockaddr_in *s4 = (const void *)&o->redirect;
	const struct sockaddr_in6 *s6 = (const void *)&o->redirect;

	memset(c, 0, sizeof(*c));
	if (o->redirect.ss_family == AF_INET && s4->sin_addr.s_addr != htonl(INADDR_ANY)) {
		memcpy(c->redirect_v4, mapped, 12);
		memcpy(c->redirect_v4 + 12, &s4->sin_addr, 4);
		c->redirect_port = s4->sin_port;
		c->flags |= STEER_CFG_HAS_V4;
	} else if (o->redirect.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(c->redirect_v4, &s6->sin6_addr, 16);
		c->redirect_port = s6->sin6_port;
		c->flags |= STEER_CFG_HAS_V4;
	} else if (o->redirect.ss_family == AF_INET6 && !IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr)) {
		memcpy(c->redirect_v6, &s6->sin6_addr, 16);
		c->redirect_port = s6->sin6_port;
		c->flags |= STEER_CFG_HAS_V6;
	}
	if (!c->flags || !c->redirect_port)
		return fail(err, errlen, -EINVAL,
			    "bpf: redirect address must be one IPv4 or IPv6 address and a port");
	if (o->is_sockmap)
		c->flags |= STEER_CFG_SOCKMAP;
	c->own_tgid = o->own_tgid ? (uint32_t)o->own_tgid : (uint32_t)getpid();
	c->msg_budget = o->msg_budget ? o->msg_budget : STEER_DEFAULT_MSG_BUDGET;
	return 0;
}

static int pin_all(struct steer *s, char *err, size_t errlen)
{
	struct steer_bpf *k = s->skel;
	struct {
		const char *name;
		struct bpf_map *map;
		struct bpf_program *prog;
	} objs[] = {
	    {"targets", k->maps.steer_targets, NULL},
	    {"config", k->maps.steer_config, NULL},
	    {"stats", k->maps.steer_stats, NULL},
	    {"flows", k->maps.steer_flows, NULL},
	    {"clients", k->maps.steer_clients, NULL},
	    {"peers", k->maps.steer_peers, NULL},
	    {"pending", k->maps.steer_pending, NULL},
	    {"connect4", NULL, k->progs.steer_connect4},
	    {"connect6", NULL, k->progs.steer_connect6},
	    {"sockops", NULL, k->progs.steer_sockops},
	    {"msg", NULL, k->progs.steer_msg},
	};
	char path[PATH_MAX];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
		if (pin_path(path, sizeof(path), s->pin_dir, objs[i].name))
			return fail(err, errlen, -ENAMETOOLONG, "bpf: pin dir %s", s->pin_dir);
		rc = objs[i].map ? bpf_map__pin(objs[i].map, path)
				 : bpf_program__pin(objs[i].prog, path);
		if (rc)
			return fail(err, errlen, rc, "bpf: pin %s", path);
	}
	return 0;
}

static int attach_one(struct steer *s, int idx, struct bpf_program *prog, const char *what,
		      char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct bpf_link *l;
	int rc;

	l = bpf_program__attach_cgroup(prog, s->cgroup_fd);
	if (!l)
		return fail(err, errlen, -errno, "bpf: attach %s to %s", what, s->cgroup);
	s->links[idx] = l;
	if (!s->is_pin_links)
		return 0;
	if (pin_path(path, sizeof(path), s->pin_dir, link_pin_names[idx]))
		return fail(err, errlen, -ENAMETOOLONG, "bpf: pin dir %s", s->pin_dir);
	rc = bpf_link__pin(l, path);
	if (rc)
		return fail(err, errlen, rc, "bpf: pin %s", path);
	return 0;
}

/* The sk_msg program goes on the clients sockhash only (see steer.bpf.c); sockops is
 * attached after it so no socket enters the map before the program is there. */
static int attach_all(struct steer *s, bool is_sockmap, char *err, size_t errlen)
{
	struct steer_bpf *k = s->skel;
	int rc;

	if (is_sockmap) {
		rc = bpf_prog_attach(bpf_program__fd(k->progs.steer_msg),
				     bpf_map__fd(k->maps.steer_clients), BPF_SK_MSG_VERDICT, 0);
		if (rc)
			return fail(err, errlen, -errno, "bpf: attach sk_msg to map clients");
		s->is_msg_attached = true;
		rc = attach_one(s, LINK_SOCKOPS, k->progs.steer_sockops, "sockops", err, errlen);
		if (rc)
			return rc;
	}
	rc = attach_one(s, LINK_CONNECT4, k->progs.steer_connect4, "connect4", err, errlen);
	if (rc)
		return rc;
	return attach_one(s, LINK_CONNECT6, k->progs.steer_connect6, "connect6", err, errlen);
}

static int load(struct steer *s, const struct steer_opts *o, char *err, size_t errlen)
{
	struct steer_config cfg;
	uint32_t zero = 0;
	int rc;

	rc = config_fill(&cfg, o, err, errlen);
	if (rc)
		return rc;
	s->skel = steer_bpf__open();
	if (!s->skel)
		return fail(err, errlen, -errno, "bpf: open steer object");
	rc = steer_bpf__load(s->skel);
	if (rc)
		return fail(err, errlen, rc, "bpf: load steer programs");
	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.steer_config), &zero, &cfg, BPF_ANY))
		return fail(err, errlen, -errno, "bpf: write config map");
	return 0;
}

int steer_start(const struct steer_opts *o, struct steer **out, char *err, size_t errlen)
{
	struct steer *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return fail(err, errlen, -ENOMEM, "bpf: steer");
	s->cgroup_fd = -1;
	s->is_pin_links = o->is_pin_links;
	snprintf(s->pin_dir, sizeof(s->pin_dir), "%s", o->pin_dir ? o->pin_dir : STEER_PIN_DIR);
	if (o->cgroup)
		snprintf(s->cgroup, sizeof(s->cgroup), "%s", o->cgroup);
	else if ((rc = cgroup2_mount(s->cgroup, sizeof(s->cgroup))))
		goto err_msg_cgroup;
	s->cgroup_fd = open(s->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->cgroup_fd < 0) {
		rc = fail(err, errlen, -errno, "bpf: open cgroup %s", s->cgroup);
		goto err;
	}
	rc = load(s, o, err, errlen);
	if (rc)
		goto err;
	rc = pin_dir_prepare(s->pin_dir, err, errlen);
	if (rc)
		goto err;
	s->is_pin_dir_ours = true;
	rc = pins_clear(s->pin_dir, err, errlen);
	if (!rc)
		rc = pin_all(s, err, errlen);
	if (!rc)
		rc = attach_all(s, o->is_sockmap, err, errlen);
	if (rc)
		goto err;
	*out = s;
	return 0;
err_msg_cgroup:
	rc = fail(err, errlen, rc, "bpf: find the cgroup2 mount in /proc/self/mounts");
err:
	steer_stop(s);
	return rc;
}

static void unpin_all(const char *dir)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(pins) / sizeof(pins[0]); i++)
		if (!pin_path(path, sizeof(path), dir, pins[i].name))
			unlink(path);
	rmdir(dir);
}

void steer_stop(struct steer *s)
{
	int i;

	if (!s)
		return;
	for (i = LINK_MAX - 1; i >= 0; i--) {
		if (!s->links[i])
			continue;
		bpf_link__detach(s->links[i]);
		bpf_link__destroy(s->links[i]);
		s->links[i] = NULL;
	}
	if (s->is_msg_attached)
		bpf_prog_detach2(bpf_program__fd(s->skel->progs.steer_msg),
				 bpf_map__fd(s->skel->maps.steer_clients), BPF_SK_MSG_VERDICT);
	if (s->is_pin_dir_ours)
		unpin_all(s->pin_dir);
	steer_bpf__destroy(s->skel);
	if (s->cgroup_fd >= 0)
		close(s->cgroup_fd);
	free(s);
}

static int target_key(struct steer_target_key *k, const struct sockaddr *sa)
{
	const struct sockaddr_in *s4 = (const void *)sa;
	const struct sockaddr_in6 *s6 = (const void *)sa;

	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		k->addr[10] = 0xff;
		k->addr[11] = 0xff;
		memcpy(k->addr + 12, &s4->sin_addr, 4);
		k->port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(k->addr, &s6->sin6_addr, 16);
		k->port = ntohs(s6->sin6_port);
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

static void target_sockaddr(struct sockaddr_storage *ss, const struct steer_target_key *k)
{
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)k->addr)) {
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, k->addr + 12, 4);
		s4->sin_port = htons(k->port);
	} else {
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, k->addr, 16);
		s6->sin6_port = htons(k->port);
	}
}

int steer_target_add(struct steer *s, const struct sockaddr *sa, bool is_static)
{
	int fd = bpf_map__fd(s->skel->maps.steer_targets);
	struct steer_target v = {.flags = is_static ? STEER_TARGET_F_STATIC : 0}, old;
	struct steer_target_key k;
	int rc = target_key(&k, sa);

	if (rc)
		return rc;
	/* Added again: keep last_hit_ns, only ever gain the static flag. (A connect racing
	 * this read-modify-write may lose one last_hit_ns update: harmless.) */
	if (bpf_map_lookup_elem(fd, &k, &old) == 0) {
		if (!is_static || (old.flags & STEER_TARGET_F_STATIC))
			return 0;
		old.flags |= STEER_TARGET_F_STATIC;
		v = old;
	}
	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
		return -errno;
	return 0;
}

int steer_target_del(struct steer *s, const struct sockaddr *sa)
{
	struct steer_target_key k;
	int rc = target_key(&k, sa);

	if (rc)
		return rc;
	if (bpf_map_delete_elem(bpf_map__fd(s->skel->maps.steer_targets), &k))
		return -errno;
	return 0;
}

int steer_targets_list(struct steer *s, struct sockaddr_storage *out, size_t max)
{
	int fd = bpf_map__fd(s->skel->maps.steer_targets);
	struct steer_target_key k, next;
	void *prev = NULL;
	size_t n = 0;

	/* Bounded: a map changing under the walk can restart it from the first key. */
	while (n <= STEER_MAX_TARGETS && !bpf_map_get_next_key(fd, prev, &next)) {
		if (n < max)
			target_sockaddr(&out[n], &next);
		n++;
		k = next;
		prev = &k;
	}
	if (n <= STEER_MAX_TARGETS && errno != ENOENT)
		return -errno;
	return (int)n;
}

int steer_stats(struct steer *s, struct steer_stats *st)
{
	uint64_t sums[STEER_STAT_MAX] = {0};
	int ncpu = libbpf_num_possible_cpus();
	int fd = bpf_map__fd(s->skel->maps.steer_stats);
	uint64_t *v;
	uint32_t i;
	int c;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < STEER_STAT_MAX; i++) {
		if (bpf_map_lookup_elem(fd, &i, v)) {
			free(v);
			return -errno;
		}
		for (c = 0; c < ncpu; c++)
			sums[i] += v[c];
	}
	free(v);
	st->rewritten = sums[STEER_STAT_REWRITTEN];
	st->skipped_own = sums[STEER_STAT_SKIPPED_OWN];
	st->map_miss = sums[STEER_STAT_MAP_MISS];
	st->inserted = sums[STEER_STAT_INSERTED];
	st->redirected = sums[STEER_STAT_REDIRECTED];
	st->redirect_failed = sums[STEER_STAT_REDIRECT_FAILED];
	st->budget_spent = sums[STEER_STAT_BUDGET_SPENT];
	return 0;
}

const char *steer_pin_dir(const struct steer *s)
{
	return s->pin_dir;
}

/* The admin API's unix socket (admin-socket): lotactl's default way in. Whoever can open
 * the file may call everything, so it is made with mode 0600 (root's, as lotad runs), and
 * a file lotad did not make is never removed unless it is a socket nobody listens on. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin.h"
#include "log.h"

#define ADMINSOCK_BACKLOG 64

/* mkdir -p of the socket's directory. */
static int make_dir(const char *path, char *err, size_t errlen)
{
	char dir[ADMINSOCK_PATH_MAX];
	char *slash;
	struct stat st;
	int e;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, ADMINSOCK_DIR_MODE) < 0 && errno != EEXIST)
			goto err;
		*p = '/';
	}
	if (mkdir(dir, ADMINSOCK_DIR_MODE) < 0 && errno != EEXIST)
		goto err;
	if (stat(dir, &st) < 0)
		goto err;
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "admin-socket %s: %s is not a directory", path, dir);
		return -ENOTDIR;
	}
	return 0;
err:
	e = errno;
	snprintf(err, errlen, "admin-socket %s: mkdir %s: %s", path, dir, strerror(e));
	return -e;
}

static int connect_to(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), r = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* A socket file left by a lotad that died is replaced; one that answers belongs to a
 * running lotad, and anything else is not ours to delete. */
static int clear_stale(const struct sockaddr_un *sa, char *err, size_t errlen)
{
	const char *path = sa->sun_path;
	struct stat st;
	int r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "admin-socket %s: exists and is not a socket", path);
		return -EEXIST;
	}
	r = connect_to(sa);
	if (r == 0 || r == -EAGAIN) {
		snprintf(err, errlen,
			 "admin-socket %s: another process is serving it "
			 "(another lotad?)",
			 path);
		return -EADDRINUSE;
	}
	if (r != -ECONNREFUSED) {
		snprintf(err, errlen, "admin-socket %s: connect: %s", path, strerror(-r));
		return r;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		snprintf(err, errlen, "admin-socket %s: unlink: %s", path, strerror(-r));
		return r;
	}
	log_info("admin-socket %s: removed a stale socket", path);
	return 0;
}

/* bind() makes the file with 0777 & ~umask: 0177 makes it 0600 from its first instant.
 * umask is per process; this runs before any other thread exists. */
static int bind_private(int fd, const struct sockaddr_un *sa)
{
	mode_t old = umask(0177);
	int r = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));

	umask(old);
	return r < 0 ? -errno : 0;
}

int adminsock_listen(struct adminsock *s, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "admin-socket %s: longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = make_dir(path, err, errlen);
	if (r == 0)
		r = clear_stale(&sa, err, errlen);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "admin-socket %s: socket: %s", path, strerror(-r));
		return r;
	}
	r = bind_private(fd, &sa);
	if (r == 0 && listen(fd, ADMINSOCK_BACKLOG) < 0)
		r = -errno;
	if (r == 0 && lstat(path, &st) < 0)
		r = -errno;
	if (r < 0) {
		snprintf(err, errlen, "admin-socket %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->is_made = true;
	return fd;
}

/* Only the file this lotad made: a newer lotad may already have replaced it. */
void adminsock_remove(struct adminsock *s)
{
	struct stat st;

	if (!s->is_made)
		return;
	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	s->is_made = false;
}

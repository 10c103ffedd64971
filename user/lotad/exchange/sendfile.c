/* A body mover that sends bytes of a file by sendfile (libevent file segments): a cache
 * file, or one still being written (its extent function says how far it is readable). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "exchange/exchange-int.h"
#include "metrics.h"

/* File bytes queued on the client's output at once: segments cost no memory. */
#define FILE_QUEUE (8 * 1024 * 1024)

struct file_mover {
	struct evbuffer_file_segment *seg;
	uint64_t pos, end;
	file_extent_fn extent;
	void *arg;
};

static enum mover_result file_pump(struct exchange *x, void *state)
{
	struct file_mover *fm = state;
	struct evbuffer *out = exchange_client_out(x);
	uint64_t end = fm->end;

	if (fm->extent && fm->extent(fm->arg, &end) < 0)
		return MOVER_CUT;
	if (end > fm->end)
		end = fm->end;
	while (fm->pos < end && evbuffer_get_length(out) < FILE_QUEUE) {
		uint64_t n = end - fm->pos;

		if (n > FILE_QUEUE)
			n = FILE_QUEUE;
		if (evbuffer_add_file_segment(out, fm->seg, (ev_off_t)fm->pos, (ev_off_t)n) < 0)
			return MOVER_CUT;
		fm->pos += n;
		exchange_count_out(x, n);
		metric_add(M_cache_bytes_served, n);
	}
	return fm->pos == fm->end ? MOVER_DONE : MOVER_WAIT;
}

static void file_free(void *state)
{
	struct file_mover *fm = state;

	if (!fm)
		return;
	if (fm->seg)
		evbuffer_file_segment_free(fm->seg);
	free(fm);
}

static const struct mover_ops file_ops = {file_pump, file_free};

int exchange_serve_file(struct exchange *x, int fd, uint64_t pos, uint64_t end,
			file_extent_fn extent, void *arg)
{
	struct file_mover *fm = calloc(1, sizeof(*fm));
	int dupfd = dup(fd);

	if (!fm || dupfd < 0) {
		free(fm);
		if (dupfd >= 0)
			close(dupfd);
		return dupfd < 0 ? -EMFILE : -ENOMEM;
	}
	/* The segment owns the duplicate, so that the file outlives the caller's handle
	 * for as long as queued bytes refer to it. */
	fm->seg = evbuffer_file_segment_new(dupfd, 0, (ev_off_t)end, EVBUF_FS_CLOSE_ON_FREE);
	if (!fm->seg) {
		close(dupfd);
		free(fm);
		return -ENOMEM;
	}
	fm->pos = pos;
	fm->end = end;
	fm->extent = extent;
	fm->arg = arg;
	exchange_serve(x, &file_ops, fm);
	return 0;
}

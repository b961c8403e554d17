// SPDX-License-Identifier: GPL-2.0-or-later
/* Reading a whole file, for the boot loaders. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/file.h"
#include "vmm/log.h"

int file_read_all(const char *path, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t done = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_errno(-errno, "cannot open %s", path);
	if (fstat(fd, &st) < 0) {
		ret = error_errno(-errno, "cannot stat %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (1LL << 32)) {
		ret = error(-EINVAL, "%s: not a regular file of at most 4 GiB", path);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = error(-ENOMEM, "%s: out of memory", path);
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = error_errno(n < 0 ? -errno : -EIO, "cannot read %s", path);
			free(buf);
			buf = NULL;
			goto out;
		}
		done += (size_t)n;
	}
	*data = buf;
	*len = done;
out:
	close(fd);
	return ret;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * userfaultfd for postcopy.  The destination registers guest RAM in MISSING
 * mode before its vCPUs start; from then on any access to a page that is not
 * there (never written here, or discarded) blocks in the kernel and queues a
 * message on the uffd, until the fault server places the page with
 * UFFDIO_COPY (or UFFDIO_ZEROPAGE), which installs it atomically and wakes the
 * waiters.  The faulting thread never sees a half-written page.
 *
 * A uffd is bound to the address space that created it, not to the process
 * that uses it: a forked fault server, which does not even map guest RAM,
 * reads the faults and places pages into the VMM's memory through it, copying
 * from its own buffers.
 *
 * Opening: /dev/userfaultfd (Linux 6.1+, governed by the device's file mode)
 * first, then the userfaultfd() system call (root, CAP_SYS_PTRACE, or
 * vm.unprivileged_userfaultfd=1).  Never UFFD_USER_MODE_ONLY, which would be
 * allowed more often: KVM reaches guest pages from the kernel (a vCPU faults
 * inside KVM_RUN), and such faults would then fail instead of waiting.
 * No features are asked for: MISSING faults on anonymous memory are in every
 * kernel that has userfaultfd at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "migrate/uffd.h"

/* Without non-cooperative events (none are asked for) EAGAIN with no progress should not repeat. */
#define UFFD_RETRIES 1000

void uffd_explain(int err, char *why, size_t len)
{
	switch (-err) {
	case ENOSYS:
	case ENOENT:
		snprintf(why, len, "this kernel has no userfaultfd (built without CONFIG_USERFAULTFD): "
			 "postcopy cannot run here, use precopy");
		break;
	case EPERM:
	case EACCES:
		snprintf(why, len, "userfaultfd is not permitted: run as root, or give the user access to "
			 "/dev/userfaultfd (Linux 6.1+), or set sysctl vm.unprivileged_userfaultfd=1, "
			 "or grant CAP_SYS_PTRACE; in a container, its seccomp profile must also allow "
			 "the userfaultfd system call");
		break;
	default:
		snprintf(why, len, "cannot create a userfaultfd: %s", strerror(-err));
		break;
	}
}

static int uffd_new(void)
{
	int dev, fd, dev_err, sys_err;

	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		dev_err = errno;
		close(dev);
		if (fd >= 0)
			return fd;
	} else {
		dev_err = errno;
	}
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	sys_err = errno;
	/*
	 * The system call says best what is missing, except that it cannot tell
	 * a user who may not use it from one who could have used the device.
	 */
	if (sys_err == ENOSYS && dev_err != ENOENT && dev_err != ENODEV)
		return -dev_err;
	if (sys_err == EPERM && (dev_err == EACCES || dev_err == EPERM))
		return -EACCES;
	return -sys_err;
}

/* A userfaultfd with the API features @features, or -errno and @why. */
static int open_features(uint64_t features, char *why, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	uint64_t need = 1ULL << _UFFDIO_REGISTER | 1ULL << _UFFDIO_UNREGISTER;
	int fd, ret;

	fd = uffd_new();
	if (fd < 0) {
		uffd_explain(fd, why, len);
		return fd;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		ret = -errno;
		if (features && ret == -EINVAL)
			snprintf(why, len, "this kernel's userfaultfd has no minor faults on shared memory");
		else
			snprintf(why, len, "userfaultfd API handshake refused: %s", strerror(-ret));
		close(fd);
		return features && ret == -EINVAL ? -EOPNOTSUPP : ret;
	}
	if ((api.ioctls & need) != need) {
		snprintf(why, len, "this kernel's userfaultfd cannot register memory");
		close(fd);
		return -EOPNOTSUPP;
	}
	return fd;
}

int uffd_open(char *why, size_t len)
{
	return open_features(0, why, len);
}

int uffd_open_minor(char *why, size_t len)
{
	return open_features(UFFD_FEATURE_MINOR_SHMEM, why, len);
}

int uffd_check(bool minor, char *why, size_t len)
{
	int fd = minor ? uffd_open_minor(why, len) : uffd_open(why, len);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int register_mode(int fd, void *addr, size_t len, uint64_t mode, uint64_t need)
{
	struct uffdio_register reg = { .range = { (uintptr_t)addr, len }, .mode = mode };

	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		return -errno;
	if ((reg.ioctls & need) != need) {
		uffd_unregister(fd, addr, len);
		return -EOPNOTSUPP;
	}
	return 0;
}

int uffd_register(int fd, void *addr, size_t len)
{
	return register_mode(fd, addr, len, UFFDIO_REGISTER_MODE_MISSING,
			     1ULL << _UFFDIO_COPY | 1ULL << _UFFDIO_ZEROPAGE | 1ULL << _UFFDIO_WAKE);
}

int uffd_register_minor(int fd, void *addr, size_t len)
{
	return register_mode(fd, addr, len, UFFDIO_REGISTER_MODE_MINOR,
			     1ULL << _UFFDIO_CONTINUE | 1ULL << _UFFDIO_WAKE);
}

int uffd_register_shared(int fd, void *addr, size_t len)
{
	return register_mode(fd, addr, len, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR,
			     1ULL << _UFFDIO_CONTINUE | 1ULL << _UFFDIO_WAKE);
}

/*
 * UFFDIO_UNREGISTER wakes the range's waiters before it clears the range, and
 * a fault taken under the per-VMA lock (not mmap_lock) can queue itself in
 * between: it then sleeps until the uffd's last close (seen on 6.18, once in
 * a few hundred runs of test_faultsrv).  A wake after the clear finds it; a
 * fault after the clear no longer waits.
 */
int uffd_unregister(int fd, void *addr, size_t len)
{
	struct uffdio_range r = { (uintptr_t)addr, len };

	if (ioctl(fd, UFFDIO_UNREGISTER, &r))
		return -errno;
	return uffd_wake(fd, addr, len);
}

/*
 * EAGAIN from UFFDIO_COPY and UFFDIO_ZEROPAGE means "not all of it": the
 * kernel reports the bytes it did place (and woke their waiters) in the
 * copy/zeropage field, or a negative value when it placed nothing (it was
 * interrupted, or the address space was changing).  Either way the rest is
 * asked for again.
 */
enum place_how { PLACE_COPY, PLACE_ZERO, PLACE_CONTINUE };

/* UFFDIO_COPY from @src, UFFDIO_ZEROPAGE or UFFDIO_CONTINUE: the bytes placed, or -errno. */
static int64_t place_once(int fd, enum place_how how, void *dst, const void *src, size_t len)
{
	struct uffdio_copy c = { .dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len };
	struct uffdio_zeropage z = { .range = { (uintptr_t)dst, len } };
	struct uffdio_continue k = { .range = { (uintptr_t)dst, len } };
	static const unsigned long req[] = { UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_CONTINUE };
	void *arg = how == PLACE_COPY ? (void *)&c : how == PLACE_ZERO ? (void *)&z : (void *)&k;
	int64_t done;

	if (!ioctl(fd, req[how], arg))
		return (int64_t)len;
	if (errno != EAGAIN)
		return -errno;
	/* Placed in part (a positive count), or nothing (negative): the rest again. */
	done = how == PLACE_COPY ? c.copy : how == PLACE_ZERO ? z.zeropage : k.mapped;
	return done > 0 ? done : 0;
}

static int place(int fd, enum place_how how, void *dst, const void *src, size_t len)
{
	int tries = 0;

	while (len) {
		int64_t n = place_once(fd, how, dst, src, len);

		if (n < 0)
			return (int)n;
		if (n > 0) {
			dst = (uint8_t *)dst + n;
			src = src ? (const uint8_t *)src + n : NULL;
			len -= (size_t)n;
		} else if (++tries > UFFD_RETRIES) {
			return -EAGAIN;
		} else {
			sched_yield();
		}
	}
	return 0;
}

int uffd_copy(int fd, void *dst, const void *src, size_t len)
{
	return place(fd, PLACE_COPY, dst, src, len);
}

int uffd_zeropage(int fd, void *dst, size_t len)
{
	return place(fd, PLACE_ZERO, dst, NULL, len);
}

int uffd_continue(int fd, void *dst, size_t len)
{
	return place(fd, PLACE_CONTINUE, dst, NULL, len);
}

int uffd_wake(int fd, void *addr, size_t len)
{
	struct uffdio_range r = { (uintptr_t)addr, len };

	return ioctl(fd, UFFDIO_WAKE, &r) ? -errno : 0;
}

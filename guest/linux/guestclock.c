// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * guestclock sync: set the guest's clock from the RTC (/dev/rtc0, vmm's
 * CMOS RTC, which shows the host's UTC) at the moment its seconds register
 * changes, so the clock starts within a few milliseconds of the host's.
 * The kernel's own hctosys sets it at boot only to within half a second
 * (the RTC counts whole seconds), and busybox's hwclock -s to within one.
 *
 * guestclock now: print the clock as "guest-clock=SECONDS.NANOSECONDS",
 * for the host to compare with its own (busybox date has no %N).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/rtc.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static int rtc_read(int fd, struct tm *tm)
{
	struct rtc_time rt;

	if (ioctl(fd, RTC_RD_TIME, &rt) < 0)
		return -errno;
	memset(tm, 0, sizeof(*tm));
	tm->tm_sec = rt.tm_sec;
	tm->tm_min = rt.tm_min;
	tm->tm_hour = rt.tm_hour;
	tm->tm_mday = rt.tm_mday;
	tm->tm_mon = rt.tm_mon;
	tm->tm_year = rt.tm_year;
	return 0;
}

static double now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int sync_from_rtc(void)
{
	struct tm first, tm;
	struct timespec ts = { 0, 0 };
	double before, deadline = now(CLOCK_MONOTONIC) + 3;
	int fd = open("/dev/rtc0", O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		fprintf(stderr, "guestclock: /dev/rtc0: %s\n", strerror(errno));
		return 1;
	}
	ret = rtc_read(fd, &first);
	/* Each read is a few port exits: the edge is seen within a millisecond or so. */
	while (!ret) {
		ret = rtc_read(fd, &tm);
		if (ret || tm.tm_sec != first.tm_sec)
			break;
		if (now(CLOCK_MONOTONIC) > deadline) {
			fprintf(stderr, "guestclock: the RTC's seconds did not change in 3 s\n");
			close(fd);
			return 1;
		}
	}
	close(fd);
	if (ret) {
		fprintf(stderr, "guestclock: RTC_RD_TIME: %s\n", strerror(-ret));
		return 1;
	}
	ts.tv_sec = timegm(&tm);
	before = now(CLOCK_REALTIME);
	if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
		fprintf(stderr, "guestclock: clock_settime: %s\n", strerror(errno));
		return 1;
	}
	printf("guestclock: clock set from the RTC (it was %+.3f s off)\n", before - (double)ts.tv_sec);
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec ts;

	if (argc == 2 && !strcmp(argv[1], "sync"))
		return sync_from_rtc();
	if (argc == 2 && !strcmp(argv[1], "now")) {
		clock_gettime(CLOCK_REALTIME, &ts);
		printf("guest-clock=%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
		return 0;
	}
	fprintf(stderr, "usage: guestclock sync | now\n");
	return 2;
}

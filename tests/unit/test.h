/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A minimal unit-test harness: CHECK() records a failure with file:line and
 * goes on; TEST_MAIN runs the listed tests, prints one line per test and
 * exits 0 (all passed) or 1.
 */
#ifndef VMM_TEST_H
#define VMM_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failed;

#define CHECK(cond) do {							\
	if (!(cond)) {								\
		fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
		test_failed = 1;						\
	}									\
} while (0)

#define CHECK_EQ(a, b) do {							\
	long long _a = (long long)(a), _b = (long long)(b);			\
	if (_a != _b) {								\
		fprintf(stderr, "  %s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
			__FILE__, __LINE__, #a, #b, _a, _b);			\
		test_failed = 1;						\
	}									\
} while (0)

#define CHECK_STR(a, b) do {							\
	const char *_a = (a), *_b = (b);					\
	if (!_a || !_b || strcmp(_a, _b)) {					\
		fprintf(stderr, "  %s:%d: CHECK_STR(%s, %s) failed: \"%s\" != \"%s\"\n", \
			__FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
		test_failed = 1;						\
	}									\
} while (0)

struct test_case {
	const char *name;
	void (*fn)(void);
};

#define TEST(name) { #name, name }

#define TEST_MAIN(...)								\
int main(void)									\
{										\
	static const struct test_case cases[] = { __VA_ARGS__ };		\
	int i, failed = 0, n = (int)(sizeof(cases) / sizeof(cases[0]));	\
										\
	for (i = 0; i < n; i++) {						\
		test_failed = 0;						\
		cases[i].fn();							\
		printf("%s %s\n", test_failed ? "FAIL" : "ok  ", cases[i].name); \
		failed += test_failed;						\
	}									\
	printf("%d of %d tests failed\n", failed, n);				\
	return failed ? 1 : 0;							\
}

#endif

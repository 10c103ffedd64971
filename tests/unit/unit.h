/* The one main() of lota's CUnit binaries: a table of tests run as one suite in
 * verbose basic mode; the exit status says whether any failed (scripts/run-tests.sh
 * reads CUnit's summary lines). */
#ifndef LOTA_TESTS_UNIT_H
#define LOTA_TESTS_UNIT_H

#include <CUnit/Basic.h>
#include <stddef.h>

struct unit_test {
	const char *name;
	CU_TestFunc fn;
};

static inline int unit_run(const char *suite, CU_InitializeFunc init, CU_CleanupFunc clean,
			   const struct unit_test *tests, size_t n)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite(suite, init, clean);
	for (size_t i = 0; i < n; i++) {
		if (!s || !CU_add_test(s, tests[i].name, tests[i].fn)) {
			CU_cleanup_registry();
			return 1;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
		 CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

#define UNIT_RUN(suite, init, clean, tests)                                                        \
	unit_run(suite, init, clean, tests, sizeof(tests) / sizeof((tests)[0]))

#endif

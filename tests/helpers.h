// helpers.h: what several test files share.
#ifndef TZ_TEST_HELPERS_H
#define TZ_TEST_HELPERS_H

#include <setjmp.h>

#include "tz.h"

// Runs stmt expecting tz_fail; afterwards tz_last_error() holds the message. Evaluates to 1
// when it failed as expected.
extern jmp_buf tz_test_jmp;
void tz_test_handler(const char *msg);
#define EXPECT_FAIL(stmt) \
    ({ \
        volatile int failed_ = 0; \
        tz_set_error_handler(tz_test_handler); \
        if (setjmp(tz_test_jmp) == 0) { \
            stmt; \
        } else failed_ = 1; \
        tz_set_error_handler(NULL); \
        failed_; \
    })

// A tensor in g holding the given values.
tz_tensor *tz_test_tensor(tz_graph *g, int ndim, const int *shape, const real *values);

#endif

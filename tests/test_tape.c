#include <criterion/criterion.h>
Test(tape, placeholder) { cr_assert(1); }

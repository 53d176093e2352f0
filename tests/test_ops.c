#include <criterion/criterion.h>
Test(ops, placeholder) { cr_assert(1); }

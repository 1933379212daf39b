// What every generated C++ translation unit starts with: kiln's function
// qualifier and its special values.
#include <math.h>
#define KILN_FN static inline
#define KILN_HUGE_VALUE HUGE_VAL
#define KILN_NAN_VALUE NAN
#define KILN_INFINITY_F __builtin_huge_valf()
#define KILN_INFINITY __builtin_huge_val()
#define KILN_NAN_F __builtin_nanf("")
#define KILN_NAN __builtin_nan("")
#define KILN_OPAQUE_INFINITY HUGE_VAL

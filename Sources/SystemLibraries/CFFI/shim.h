#include <ffi.h>

/* The addresses of libffi's type descriptors, for Swift: taking `&ffi_type_pointer` inout there
   counts as an access to the global, and two at once trip Swift's exclusivity checks. */
static inline ffi_type *gvlt_ffi_type_pointer(void) { return &ffi_type_pointer; }
static inline ffi_type *gvlt_ffi_type_void(void) { return &ffi_type_void; }

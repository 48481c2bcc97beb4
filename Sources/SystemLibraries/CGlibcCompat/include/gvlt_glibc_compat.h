#ifndef GVLT_GLIBC_COMPAT_H
#define GVLT_GLIBC_COMPAT_H
/* No declarations: this target only defines symbols the static Swift runtime takes from newer glibc
   releases (see glibc_compat.c). */
#endif

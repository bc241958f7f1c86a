/* The version of this build (CMake project VERSION). */
#ifndef GM_VERSION_H
#define GM_VERSION_H

/* "MAJOR.MINOR.PATCH", e.g. "0.1.0". */
const char *gm_version(void);

#endif

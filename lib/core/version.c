/* The one version of the build: GM_VERSION comes from the CMake project VERSION. */
#include "gm/version.h"

#ifndef GM_VERSION
#error "GM_VERSION is set by CMakeLists.txt from the project VERSION"
#endif

const char *gm_version(void)
{
    return GM_VERSION;
}

# Findhttplib: cpp-httplib as the imported target httplib::httplib.
#
# 1. cpp-httplib's own CMake package (upstream installs one), if present;
# 2. else pkg-config's cpp-httplib (Debian and Ubuntu ship only this): the
#    compiled library, with the compile definitions it was built with
#    (CPPHTTPLIB_OPENSSL_SUPPORT, ...), which every includer must share, since
#    they change the layout of its classes.
# Sets httplib_FOUND and httplib_VERSION.
if(TARGET httplib::httplib)
  set(httplib_FOUND TRUE)
  return()
endif()

find_package(httplib CONFIG QUIET)
if(httplib_FOUND AND TARGET httplib::httplib)
  return()
endif()

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_HTTPLIB QUIET cpp-httplib)
endif()
if(PC_HTTPLIB_FOUND)
  find_path(httplib_INCLUDE_DIR httplib.h HINTS ${PC_HTTPLIB_INCLUDEDIR} ${PC_HTTPLIB_INCLUDE_DIRS})
  find_library(httplib_LIBRARY NAMES cpp-httplib HINTS ${PC_HTTPLIB_LIBDIR} ${PC_HTTPLIB_LIBRARY_DIRS})
  set(httplib_VERSION ${PC_HTTPLIB_VERSION})
  set(httplib_DEFINITIONS "")
  foreach(flag IN LISTS PC_HTTPLIB_CFLAGS_OTHER)
    if(flag MATCHES "^-D(.+)$")
      list(APPEND httplib_DEFINITIONS "${CMAKE_MATCH_1}")
    endif()
  endforeach()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(httplib
  REQUIRED_VARS httplib_LIBRARY httplib_INCLUDE_DIR
  VERSION_VAR httplib_VERSION)

if(httplib_FOUND AND NOT TARGET httplib::httplib)
  find_package(Threads REQUIRED)
  add_library(httplib::httplib UNKNOWN IMPORTED)
  set_target_properties(httplib::httplib PROPERTIES
    IMPORTED_LOCATION "${httplib_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${httplib_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "${httplib_DEFINITIONS}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
mark_as_advanced(httplib_INCLUDE_DIR httplib_LIBRARY)

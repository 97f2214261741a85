# Provides the imported target wolfssl::wolfssl.
#
# TLSFRONT_WOLFSSL=bundled (default): wolfSSL built by scripts/build-wolfssl.sh
#   from Debian's source package with the x86-64 assembly enabled, cached
#   outside the build tree. WOLFSSL_PREFIX may point at such a build directly.
# TLSFRONT_WOLFSSL=system: Debian's libwolfssl-dev. It works but is a generic C
#   build, 10-100x slower at the crypto that dominates a TLS proxy.

set(TLSFRONT_WOLFSSL "bundled" CACHE STRING "wolfSSL to link: bundled (fast, default) or system (slow)")
set_property(CACHE TLSFRONT_WOLFSSL PROPERTY STRINGS bundled system)
# RDRAND as the bundled wolfSSL's random source (--enable-intelrand); see
# scripts/build-wolfssl.sh and docs/TLS.md for why it is off by default.
option(TLSFRONT_WOLFSSL_RDRAND "bundled wolfSSL: RDRAND as the random source" OFF)
# The Debian release whose wolfssl source the bundled build uses, with its own patches
# (scripts/wolfssl-patches/<suite>/). Empty: the script's default, or the environment's
# TLSFRONT_WOLFSSL_SUITE.
set(TLSFRONT_WOLFSSL_SUITE "" CACHE STRING "bundled wolfSSL: Debian suite of the source (empty: the default)")

if(TLSFRONT_WOLFSSL STREQUAL "bundled")
    # The script runs at every configure (it answers from its cache in a
    # fraction of a second) so a change of flags reaches existing build trees.
    if(NOT WOLFSSL_PREFIX)
        if(TLSFRONT_WOLFSSL_RDRAND)
            set(_rdrand 1)
        else()
            set(_rdrand 0)
        endif()
        set(_suite_env "")
        if(TLSFRONT_WOLFSSL_SUITE)
            set(_suite_env "TLSFRONT_WOLFSSL_SUITE=${TLSFRONT_WOLFSSL_SUITE}")
        endif()
        execute_process(
            COMMAND ${CMAKE_COMMAND} -E env TLSFRONT_WOLFSSL_RDRAND=${_rdrand} ${_suite_env}
                    bash ${PROJECT_SOURCE_DIR}/scripts/build-wolfssl.sh
            OUTPUT_VARIABLE _wolfssl_prefix
            OUTPUT_STRIP_TRAILING_WHITESPACE
            RESULT_VARIABLE _wolfssl_rc)
        if(NOT _wolfssl_rc EQUAL 0)
            message(FATAL_ERROR "scripts/build-wolfssl.sh failed (see above); "
                                "run scripts/install-deps.sh first, or -DTLSFRONT_WOLFSSL=system")
        endif()
        set(WOLFSSL_PREFIX "${_wolfssl_prefix}")
        message(STATUS "bundled wolfSSL: ${WOLFSSL_PREFIX}")
    endif()
    if(NOT EXISTS "${WOLFSSL_PREFIX}/lib/libwolfssl.a")
        message(FATAL_ERROR "no libwolfssl.a under WOLFSSL_PREFIX=${WOLFSSL_PREFIX}")
    endif()
    add_library(wolfssl::wolfssl STATIC IMPORTED GLOBAL)
    set_target_properties(wolfssl::wolfssl PROPERTIES
        IMPORTED_LOCATION "${WOLFSSL_PREFIX}/lib/libwolfssl.a"
        INTERFACE_INCLUDE_DIRECTORIES "${WOLFSSL_PREFIX}/include"
        INTERFACE_LINK_LIBRARIES "m;pthread")
    file(READ "${WOLFSSL_PREFIX}/share/tlsfront-configure-flags" _flags)
    string(STRIP "${_flags}" _flags)
    file(READ "${WOLFSSL_PREFIX}/share/tlsfront-wolfssl-debian-version" _debver)
    string(STRIP "${_debver}" _debver)
    set(TLSFRONT_WOLFSSL_BUILD "bundled from Debian source ${_debver}: ${_flags}")
    set(TLSFRONT_WOLFSSL_INCLUDE_DIR "${WOLFSSL_PREFIX}/include")
elseif(TLSFRONT_WOLFSSL STREQUAL "system")
    pkg_check_modules(WOLFSSL_SYS REQUIRED IMPORTED_TARGET wolfssl)
    add_library(wolfssl::wolfssl INTERFACE IMPORTED GLOBAL)
    target_link_libraries(wolfssl::wolfssl INTERFACE PkgConfig::WOLFSSL_SYS)
    set(TLSFRONT_WOLFSSL_BUILD "system libwolfssl (generic C build: slow, see docs/BUILD.md)")
    find_path(TLSFRONT_WOLFSSL_INCLUDE_DIR wolfssl/options.h HINTS ${WOLFSSL_SYS_INCLUDE_DIRS})
    message(WARNING "TLSFRONT_WOLFSSL=system: Debian's libwolfssl is a generic C build, "
                    "10-100x slower at TLS crypto than the bundled assembly build")
else()
    message(FATAL_ERROR "TLSFRONT_WOLFSSL must be bundled or system, not '${TLSFRONT_WOLFSSL}'")
endif()

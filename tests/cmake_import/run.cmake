# Packaging checks, run by ctest as `cmake -P`:
#  1. installs this build of tether into a scratch prefix, then configures,
#     builds and runs tests/cmake_import against it with find_package(tether);
#  2. a core-only project vendoring tether with add_subdirectory (and
#     TETHER_SQLITE=OFF) configures, builds and runs with SQLite unfindable;
#  3. with SQLite unfindable, TETHER_SQLITE=AUTO configures without
#     tether::sqlite and says so, and TETHER_SQLITE=ON stops with a clear error;
#  4. a tether installed with TETHER_SQLITE=OFF and TETHER_HTTP=OFF is found
#     without SQLite, and not found when the sqlite component is asked for.
# With tether::http installed, step 1 also asks for the http component and
# builds and runs a program linking it (cpp-httplib found by find_dependency).
# The importing projects build without optimisation (no build type): they
# check packaging, and -O0 keeps this test short.
# Inputs: SOURCE_DIR, BINARY_DIR, WORK_DIR, GENERATOR.
file(REMOVE_RECURSE ${WORK_DIR})
set(no_sqlite -DCMAKE_DISABLE_FIND_PACKAGE_SQLite3=ON)  # as on a machine without SQLite

# Runs a command; stops with `what` in the message if it fails. The output is
# returned in `out_var` when given.
function(step what)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "OUTPUT" "COMMAND")
  execute_process(COMMAND ${arg_COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  if(arg_OUTPUT)
    set(${arg_OUTPUT} "${out}" PARENT_SCOPE)
  endif()
endfunction()

# ---- 1. find_package(tether) from an installed copy ------------------------
set(prefix ${WORK_DIR}/prefix)
step("cmake --install" COMMAND ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${prefix})
set(components "")
if(EXISTS ${prefix}/include/tether/storage/sqlite.hpp)
  set(expect_sqlite ON)
  set(components sqlite)
else()
  set(expect_sqlite OFF)
endif()
if(EXISTS ${prefix}/include/tether/transport/http.hpp)
  set(expect_http ON)
  string(APPEND components ",http")
else()
  set(expect_http OFF)
endif()
if(EXISTS ${prefix}/include/tether/server/postgres_store.hpp)
  set(expect_postgres ON)
  string(APPEND components ",postgres")
else()
  set(expect_postgres OFF)
endif()
string(REGEX REPLACE "^," "" components "${components}")
step("configuring the importing project"
     COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/cmake_import -B ${WORK_DIR}/build -G ${GENERATOR}
             -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE= -DTETHER_EXPECT_SQLITE=${expect_sqlite}
             -DTETHER_EXPECT_HTTP=${expect_http} -DTETHER_EXPECT_POSTGRES=${expect_postgres}
             -DTETHER_COMPONENTS=${components})
step("building the importing project" COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
step("the importing program" COMMAND ${WORK_DIR}/build/import_check OUTPUT out)
message(STATUS "${out}")
if(expect_http)
  step("the importing HTTP program" COMMAND ${WORK_DIR}/build/import_http_check OUTPUT out)
  message(STATUS "${out}")
endif()
if(expect_postgres)
  step("the importing PostgreSQL program" COMMAND ${WORK_DIR}/build/import_postgres_check OUTPUT out)
  message(STATUS "${out}")
endif()

# ---- 2. add_subdirectory, core only, no SQLite ------------------------------
set(sub ${SOURCE_DIR}/tests/cmake_import/add_subdirectory)
step("configuring the core-only add_subdirectory project"
     COMMAND ${CMAKE_COMMAND} -S ${sub} -B ${WORK_DIR}/subdirectory -G ${GENERATOR}
             -DTETHER_SOURCE_DIR=${SOURCE_DIR} -DCMAKE_BUILD_TYPE= ${no_sqlite}
     OUTPUT out)
if(NOT out MATCHES "tether::sqlite not built \\(TETHER_SQLITE=OFF\\)")
  message(FATAL_ERROR "TETHER_SQLITE=OFF did not say that tether::sqlite is skipped:\n${out}")
endif()
step("building the core-only add_subdirectory project" COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/subdirectory)
step("the core-only program" COMMAND ${WORK_DIR}/subdirectory/subdirectory_check OUTPUT out)
message(STATUS "${out}")

# ---- 3. AUTO and ON without SQLite (configure only) -------------------------
step("configuring with TETHER_SQLITE=AUTO and no SQLite"
     COMMAND ${CMAKE_COMMAND} -S ${sub} -B ${WORK_DIR}/auto -G ${GENERATOR}
             -DTETHER_SOURCE_DIR=${SOURCE_DIR} -DTETHER_SQLITE=AUTO ${no_sqlite}
     OUTPUT out)
if(NOT out MATCHES "tether::sqlite not built: SQLite 3 not found")
  message(FATAL_ERROR "TETHER_SQLITE=AUTO without SQLite did not say that tether::sqlite is skipped:\n${out}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${sub} -B ${WORK_DIR}/on -G ${GENERATOR}
                  -DTETHER_SOURCE_DIR=${SOURCE_DIR} -DTETHER_SQLITE=ON ${no_sqlite}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc OR NOT out MATCHES "TETHER_SQLITE=ON[ \n]+but[ \n]+SQLite[ \n]+3[ \n]+was[ \n]+not[ \n]+found")
  message(FATAL_ERROR "TETHER_SQLITE=ON without SQLite must stop with a clear error (rc ${rc}):\n${out}")
endif()

# ---- 4. an installed core-only tether is found without SQLite ---------------
step("configuring tether with TETHER_SQLITE=OFF"
     COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/core -G ${GENERATOR}
             -DTETHER_SQLITE=OFF -DTETHER_HTTP=OFF -DTETHER_BUILD_TESTS=OFF -DTETHER_BUILD_EXAMPLES=OFF
             -DTETHER_BUILD_BENCHMARKS=OFF ${no_sqlite})
step("installing the core-only tether"
     COMMAND ${CMAKE_COMMAND} --install ${WORK_DIR}/core --prefix ${WORK_DIR}/core-prefix)
step("finding the core-only tether without SQLite"
     COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/cmake_import -B ${WORK_DIR}/core-import -G ${GENERATOR}
             -DCMAKE_PREFIX_PATH=${WORK_DIR}/core-prefix -DTETHER_EXPECT_SQLITE=OFF -DTETHER_EXPECT_HTTP=OFF
             ${no_sqlite})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/cmake_import -B ${WORK_DIR}/core-component
                  -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${WORK_DIR}/core-prefix -DTETHER_COMPONENTS=sqlite
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc)
  message(FATAL_ERROR "a tether built without SQLite was found with COMPONENTS sqlite:\n${out}")
endif()

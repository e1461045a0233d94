# The SQLite crash test (test_sqlite_crash.cpp, part of tether_integration_tests):
# it runs tether_crash_child (crash_child.cpp) again and again, SIGKILLing it at
# seeded random moments. Included from this directory's CMakeLists.txt after
# tether_integration_tests is defined. Environment: TETHER_CRASH_SEED,
# TETHER_CRASH_KILLS (default 200), TETHER_CRASH_CHILD.
add_executable(tether_crash_child ${CMAKE_CURRENT_LIST_DIR}/crash_child.cpp)
target_include_directories(tether_crash_child PRIVATE ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(tether_crash_child PRIVATE tether::sqlite tether_warnings)
target_compile_definitions(tether_integration_tests PRIVATE
    TETHER_CRASH_CHILD="$<TARGET_FILE:tether_crash_child>")
add_dependencies(tether_integration_tests tether_crash_child)

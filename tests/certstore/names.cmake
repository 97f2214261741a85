# SNI name rules and the SNI index (SPEC §4.4). Included by tests/certstore/CMakeLists.txt;
# CMAKE_CURRENT_LIST_DIR is this file's directory whoever includes it.
tf_add_test(test_cs_names SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_names.c LIBS tf_certstore)
tf_add_test(test_cs_index SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_index.c
            LIBS tf_certstore Threads::Threads)

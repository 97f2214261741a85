# The store: snapshots, selection, incremental rebuilds (test_store.c), on
# bundles made by store-fixtures.sh at test time.
tf_add_test(test_cs_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_store.c
            LIBS tf_certstore)

# The protocol client (acme/client.c, order.c, problem.c, renewal.c): against
# Debian's pebble, whose http-01 validations a responder thread of the test
# answers from the client's challenge table (responder.c), against scripted
# servers, and unit tests. Runs openssl; links certstore to load the bundles.
tf_add_test(test_acme_client SOURCES test_acme_client.c pebble.c responder.c
    LIBS tf_acme tf_certstore tf_test_harness TIMEOUT 600)

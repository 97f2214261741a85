# acme/ tests: the challenge table, the HTTPS client, and (test_acme_pebble)
# Debian's pebble ACME test server started by the suite itself.
tf_add_test(test_acme_challenges SOURCES test_challenges.c LIBS tf_acme)
# The HTTPS client without a server: URLs, loopback, deadlines, body bounds.
tf_add_test(test_acme_http SOURCES test_http.c LIBS tf_acme)
# Debian's pebble and pebble-challtestsrv, started and stopped by the suite
# (pebble.c), with acme/http.c as the client.
tf_add_test(test_acme_pebble SOURCES test_pebble.c pebble.c LIBS tf_acme tf_test_harness TIMEOUT 300)

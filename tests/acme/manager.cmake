# The per-name manager with a fake client (scripted results, a clock the test
# sets): issuance, files it did not write, renewal, backoff, resumed orders,
# two managers on one storage, GET /acme's fields. Links certstore (the
# manager validates a bundle as the store would).
tf_add_test(test_acme_manager SOURCES test_acme_manager.c LIBS tf_acme tf_certstore)

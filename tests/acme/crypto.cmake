# The crypto core: base64url, keys, JWK/JWS, EAB, CSR, tls-alpn-01 certificate,
# the account key in storage and the checks `tlsfront check` runs. Runs openssl
# and python3 to cross-check; links certstore to load the keys it writes.
tf_add_test(test_acme_crypto SOURCES test_acme_crypto.c LIBS tf_acme tf_certstore)

/* http-parser's own reading of a whole head: the reference that the
 * proxy's head scan (proxy/http.c) is checked against by test_proxy_http
 * and the two HTTP fuzz targets. The proxy gives http-parser only the start
 * line and splits header lines itself; where both accept a head they must
 * read the same fields. */
#ifndef TF_TESTS_HTTP_ORACLE_H
#define TF_TESTS_HTTP_ORACLE_H

#include "proxy/http/http.h"

#include <stdbool.h>
#include <stddef.h>

/* buf holds a head that tf_http_parse_head() accepted as req. Returns NULL
 * when http-parser, given the whole head, accepts it too and reads the same
 * method, target, version, header names and values (without the
 * whitespace around a value) and the same persistence, or a static
 * description of the first difference. */
const char *tf_http_oracle_request(const char *buf, const tf_http_request_t *req);

/* The same for a response head accepted by tf_http_parse_response_head()
 * (head_request: the request was HEAD): status, version, header fields,
 * persistence. */
const char *tf_http_oracle_response(const char *buf, bool head_request,
                                    const tf_http_response_t *resp);

#endif

/* The JSON of the admin API and `tlsfront cert --json` (proxy/ops/json.c):
 * strings of any bytes, and the one way documents are written. */
#include "proxy/ops/json.h"

#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

TestSuite(json, .timeout = 30);

static void expect_text(const char *in, const char *want)
{
    json_t *v = tf_json_text(in);
    cr_assert(json_is_string(v), "%s", in);
    cr_expect_str_eq(json_string_value(v), want);
    cr_expect_eq(json_string_length(v), strlen(want));
    json_decref(v);
}

Test(json, text_keeps_utf8_and_reads_other_bytes_as_latin1)
{
    expect_text("plain", "plain");
    expect_text("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* U+00FF, U+00C3: what the old writer's \u00ff and \u00c3 meant ("b" is \x62). */
    expect_text("a\xff\x62\xc3", "a\xc3\xbf\x62\xc3\x83");
    /* An overlong NUL and a surrogate are not UTF-8 either, byte by byte. */
    expect_text("\xc0\x80\xed\xa0\x80", "\xc3\x80\xc2\x80\xc3\xad\xc2\xa0\xc2\x80");
    json_t *v = tf_json_text(NULL);
    cr_expect(json_is_null(v));
    json_decref(v);
}

Test(json, dump_is_compact_in_order_with_a_newline)
{
    json_t *doc = json_pack("{s:i,s:[b,n],s:o}", "z", 1, "a", 1, "m",
                            tf_json_text("q\"\\/\n\x01\x7f\xc3\xa9\xff"));
    size_t len = 0;
    char *text = tf_json_dump(doc, &len);
    const char want[] =
        "{\"z\":1,\"a\":[true,null],\"m\":\"q\\\"\\\\/\\n\\u0001\x7f\xc3\xa9\xc3\xbf\"}\n";
    cr_assert_not_null(text);
    cr_expect_str_eq(text, want);
    cr_expect_eq(len, sizeof want - 1);
    free(text);
    /* NULL stands for a document that could not be built. */
    cr_expect_null(tf_json_dump(NULL, &len));
}

Test(json, diags_of_no_bundle_are_an_empty_list)
{
    size_t len = 0;
    char *text = tf_json_dump(tf_json_diags(NULL, TF_CS_FATAL), &len);
    cr_expect_str_eq(text, "[]\n");
    free(text);
}

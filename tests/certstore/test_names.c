/* SPEC §4.4 rules 1-3: SNI normalization, certificate-name classification, wildcard keys and
 * the "does this certificate cover this host" check. */
#include "certstore/names.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

/* Normalizes a NUL-terminated name; returns the result's length or the error. */
static int norm(const char *in, char *out)
{
    return tf_cs__sni_normalize(in, strlen(in), out);
}

static void expect_norm(const char *in, const char *want)
{
    char out[TF_CS_NAME_BUF];
    int n = norm(in, out);

    cr_assert_eq(n, (int)strlen(want), "'%s': length %d, want %zu", in, n, strlen(want));
    cr_assert_str_eq(out, want, "'%s'", in);
}

static void expect_invalid(const char *in)
{
    char out[TF_CS_NAME_BUF];

    cr_assert_eq(norm(in, out), TF_EINVAL, "'%s' should be invalid", in);
}

/* A name of `len` characters made of 63-character labels "aaa...", ending in a shorter one. */
static void long_name(char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (i % 64 == 63) ? '.' : 'a';
    buf[len] = '\0';
}

Test(sni_normalize, lower_case)
{
    expect_norm("WWW.Example.COM", "www.example.com");
    expect_norm("a", "a");
    expect_norm("xn--bcher-kva.example", "xn--bcher-kva.example");
    expect_norm("0123.example.com", "0123.example.com");
}

Test(sni_normalize, one_trailing_dot_removed)
{
    expect_norm("example.com.", "example.com");
    expect_norm("Example.Com.", "example.com");
}

Test(sni_normalize, two_trailing_dots_invalid)
{
    expect_invalid("example.com..");
}

Test(sni_normalize, empty_and_dots)
{
    char out[TF_CS_NAME_BUF];

    expect_invalid("");
    expect_invalid(".");
    expect_invalid("..");
    expect_invalid(".example.com");
    expect_invalid("a..example.com");
    cr_assert_eq(tf_cs__sni_normalize("example.com", 0, out), TF_EINVAL);
}

/* SNI carries host names, which are LDH: underscores are rejected, not matched. */
Test(sni_normalize, underscore_rejected)
{
    expect_invalid("_dmarc.example.com");
    expect_invalid("my_host.example.com");
}

Test(sni_normalize, bad_bytes_rejected)
{
    char out[TF_CS_NAME_BUF];
    static const char with_nul[] = "exa\0mple.com";

    expect_invalid("exa mple.com");
    expect_invalid("*.example.com");
    expect_invalid("example.com:443");
    expect_invalid("b\303\274cher.example");
    expect_invalid("[::1]");
    cr_assert_eq(tf_cs__sni_normalize(with_nul, sizeof(with_nul) - 1, out), TF_EINVAL);
}

Test(sni_normalize, hyphens)
{
    expect_norm("a-b.example.com", "a-b.example.com");
    expect_norm("xn--p1ai", "xn--p1ai");
    expect_invalid("-a.example.com");
    expect_invalid("a-.example.com");
    expect_invalid("example.com-");
    expect_invalid("-");
}

Test(sni_normalize, label_length)
{
    char in[80], want[80];

    memset(in, 'A', 63);
    strcpy(in + 63, ".com");
    memset(want, 'a', 63);
    strcpy(want + 63, ".com");
    expect_norm(in, want);
    memset(in, 'a', 64);
    strcpy(in + 64, ".com");
    expect_invalid(in);
}

Test(sni_normalize, total_length)
{
    char in[300], out[TF_CS_NAME_BUF];

    long_name(in, 253);
    cr_assert_eq(norm(in, out), 253);
    cr_assert_str_eq(out, in);
    strcat(in, ".");
    cr_assert_eq(norm(in, out), 253, "253 characters plus the trailing dot");
    long_name(in, 254);
    expect_invalid(in);
    long_name(in, 299);
    expect_invalid(in);
}

Test(sni_normalize, in_place)
{
    char buf[TF_CS_NAME_BUF] = "WWW.EXAMPLE.COM.";

    cr_assert_eq(tf_cs__sni_normalize(buf, strlen(buf), buf), 15);
    cr_assert_str_eq(buf, "www.example.com");
}

Test(sni_normalize, not_nul_terminated)
{
    char out[TF_CS_NAME_BUF];
    static const char in[] = "Example.COMgarbage";

    cr_assert_eq(tf_cs__sni_normalize(in, 11, out), 11);
    cr_assert_str_eq(out, "example.com");
}

Test(wildcard_base, one_label_up)
{
    size_t n = 0;
    const char *name = "a.example.com";
    const char *base = tf_cs__sni_wildcard_base(name, strlen(name), &n);

    cr_assert_not_null(base);
    cr_assert_eq(n, strlen("example.com"));
    cr_assert_eq(strncmp(base, "example.com", n), 0);
}

Test(wildcard_base, apex_and_deeper_names)
{
    size_t n = 0;
    const char *base = tf_cs__sni_wildcard_base("example.com", 11, &n);

    /* The apex is filed under "com": "*.example.com" (base "example.com") misses it. */
    cr_assert_eq(n, 3);
    cr_assert_eq(strncmp(base, "com", n), 0);
    /* "a.b.example.com" looks for "*.b.example.com", never "*.example.com". */
    base = tf_cs__sni_wildcard_base("a.b.example.com", 15, &n);
    cr_assert_eq(n, strlen("b.example.com"));
    cr_assert_eq(strncmp(base, "b.example.com", n), 0);
}

Test(wildcard_base, single_label)
{
    size_t n = 99;

    cr_assert_null(tf_cs__sni_wildcard_base("localhost", 9, &n));
}

static void expect_pattern(const char *name, tf_cs__pattern_kind_t want_kind, const char *want_key)
{
    char key[TF_CS_NAME_BUF];
    size_t len = 0;
    const char *reason = NULL;
    tf_cs__pattern_kind_t kind = tf_cs__pattern_classify(name, strlen(name), key, &len, &reason);

    cr_assert_eq(kind, want_kind, "'%s': kind %d, want %d", name, kind, want_kind);
    if (want_kind == TF_CS_PATTERN_INVALID) {
        cr_assert_not_null(reason, "'%s': an invalid name says why", name);
        cr_assert_gt(strlen(reason), 5);
        return;
    }
    cr_assert_eq(len, strlen(want_key), "'%s'", name);
    cr_assert_str_eq(key, want_key, "'%s'", name);
}

Test(pattern, exact)
{
    expect_pattern("www.example.com", TF_CS_PATTERN_EXACT, "www.example.com");
    expect_pattern("WWW.Example.Com", TF_CS_PATTERN_EXACT, "www.example.com");
    expect_pattern("example.com.", TF_CS_PATTERN_EXACT, "example.com");
    expect_pattern("localhost", TF_CS_PATTERN_EXACT, "localhost");
}

Test(pattern, wildcard)
{
    expect_pattern("*.example.com", TF_CS_PATTERN_WILDCARD, "example.com");
    expect_pattern("*.EXAMPLE.com.", TF_CS_PATTERN_WILDCARD, "example.com");
    /* Classified as a wildcard; refusing public suffixes is the loader's job (SPEC §4.2). */
    expect_pattern("*.com", TF_CS_PATTERN_WILDCARD, "com");
}

Test(pattern, partial_and_misplaced_wildcards)
{
    expect_pattern("f*.example.com", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("*f.example.com", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("f*o.example.com", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("**.example.com", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("*.*.example.com", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("a.*.example.com", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("example.*", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("*", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("*.", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("*..", TF_CS_PATTERN_INVALID, NULL);
}

Test(pattern, invalid_syntax)
{
    char name[300];

    expect_pattern("", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("my_host.example.com", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("*._tcp.example.com", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("a..example.com", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("example.com..", TF_CS_PATTERN_INVALID, NULL);
    expect_pattern("-a.example.com", TF_CS_PATTERN_INVALID, NULL);
    long_name(name, 254);
    expect_pattern(name, TF_CS_PATTERN_INVALID, NULL);
}

Test(pattern, wildcard_length)
{
    char name[300];

    /* "*." plus 251 characters is 253, the longest name a wildcard can stand for. */
    name[0] = '*';
    name[1] = '.';
    long_name(name + 2, 251);
    expect_pattern(name, TF_CS_PATTERN_WILDCARD, name + 2);
    long_name(name + 2, 252);
    expect_pattern(name, TF_CS_PATTERN_INVALID, NULL);
}

Test(pattern, null_outputs_allowed)
{
    cr_assert_eq(tf_cs__pattern_classify("*.example.com", 13, NULL, NULL, NULL),
                 TF_CS_PATTERN_WILDCARD);
    cr_assert_eq(tf_cs__pattern_classify("f*.example.com", 14, NULL, NULL, NULL),
                 TF_CS_PATTERN_INVALID);
}

Test(name_covered, exact_and_wildcard)
{
    const char *names[] = {"www.example.com", "*.api.example.com"};

    cr_assert(tf_cs__name_covered("www.example.com", names, 2));
    cr_assert(tf_cs__name_covered("WWW.EXAMPLE.COM.", names, 2), "case and trailing dot");
    cr_assert(tf_cs__name_covered("eu.api.example.com", names, 2));
    cr_assert_not(tf_cs__name_covered("api.example.com", names, 2), "apex of a wildcard");
    cr_assert_not(tf_cs__name_covered("a.eu.api.example.com", names, 2), "two labels");
    cr_assert_not(tf_cs__name_covered("example.com", names, 2));
    cr_assert_not(tf_cs__name_covered("mail.example.com", names, 2));
}

Test(name_covered, invalid_inputs_cover_nothing)
{
    const char *names[] = {"f*.example.com", "*", "my_host.example.com", "*.example.com"};

    cr_assert_not(tf_cs__name_covered("foo.example.com", names, 2), "partial wildcard");
    cr_assert_not(tf_cs__name_covered("my_host.example.com", names, 3));
    cr_assert_not(tf_cs__name_covered("", names, 4));
    cr_assert_not(tf_cs__name_covered("a..example.com", names, 4));
    cr_assert_not(tf_cs__name_covered("a.example.com..", names, 4));
    cr_assert(tf_cs__name_covered("a.example.com", names, 4));
    cr_assert_not(tf_cs__name_covered("a.example.com", names, 0));
}

/* The access log (SPEC §9): line formats, escaping of client-controlled
 * bytes, field budgets, and the O_APPEND writer shared by threads. */
#include "proxy/obs/access.h"
#include "proxy/ops/json.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(access, .timeout = 30);

/* 2026-11-25T06:01:02.123Z */
#define T0 1795586462123LL

static tf_access_entry_t sample(void)
{
    return (tf_access_entry_t){
        .time_ms = T0,
        .client = "192.0.2.7",
        .sni = "portal.acme.example",
        .tenant = "acme",
        .method = "GET",
        .method_len = 3,
        .path = "/x?y=1",
        .path_len = 6,
        .version_minor = 1,
        .status = 200,
        .bytes_in = 123,
        .bytes_out = 456,
        .duration_ms = 7,
        .backend = "10.0.0.5:8080",
    };
}

static char line[TF_ACCESS_MAX_LINE + 1];

static const char *fmt(const tf_access_entry_t *e, tf_conf_log_format_t f)
{
    size_t n = tf_access_format(e, f, line, TF_ACCESS_MAX_LINE);
    cr_assert_gt(n, 0);
    cr_assert_leq(n, TF_ACCESS_MAX_LINE);
    line[n] = '\0';
    cr_assert_eq(strchr(line, '\n'), line + n - 1, "one line, ending in a newline: %s", line);
    cr_assert_null(memchr(line, '\0', n), "no NUL in the line");
    return line;
}

Test(access, text_line)
{
    tf_access_entry_t e = sample();
    cr_expect_str_eq(fmt(&e, TF_CONF_LOG_TEXT),
                     "2026-11-25T06:01:02.123Z 192.0.2.7 sni=portal.acme.example tenant=acme "
                     "\"GET /x?y=1 HTTP/1.1\" 200 in=123 out=456 ms=7 backend=10.0.0.5:8080\n");
}

Test(access, json_line)
{
    tf_access_entry_t e = sample();
    cr_expect_str_eq(fmt(&e, TF_CONF_LOG_JSON),
                     "{\"time\":\"2026-11-25T06:01:02.123Z\",\"client\":\"192.0.2.7\","
                     "\"sni\":\"portal.acme.example\",\"tenant\":\"acme\",\"method\":\"GET\","
                     "\"path\":\"/x?y=1\",\"version\":\"HTTP/1.1\",\"status\":200,"
                     "\"bytes_in\":123,\"bytes_out\":456,\"duration_ms\":7,"
                     "\"backend\":\"10.0.0.5:8080\"}\n");
}

/* A request on an HTTP/2 stream says HTTP/2 in both formats, whatever
 * version_minor holds; HTTP/1.0 stays HTTP/1.0. */
Test(access, the_protocol_field_names_http2_and_http10)
{
    tf_access_entry_t e = sample();
    e.http2 = true;
    e.version_minor = 0;
    cr_expect_str_eq(fmt(&e, TF_CONF_LOG_TEXT),
                     "2026-11-25T06:01:02.123Z 192.0.2.7 sni=portal.acme.example tenant=acme "
                     "\"GET /x?y=1 HTTP/2\" 200 in=123 out=456 ms=7 backend=10.0.0.5:8080\n");
    cr_expect_str_eq(fmt(&e, TF_CONF_LOG_JSON),
                     "{\"time\":\"2026-11-25T06:01:02.123Z\",\"client\":\"192.0.2.7\","
                     "\"sni\":\"portal.acme.example\",\"tenant\":\"acme\",\"method\":\"GET\","
                     "\"path\":\"/x?y=1\",\"version\":\"HTTP/2\",\"status\":200,"
                     "\"bytes_in\":123,\"bytes_out\":456,\"duration_ms\":7,"
                     "\"backend\":\"10.0.0.5:8080\"}\n");
    e.http2 = false;
    cr_expect(strstr(fmt(&e, TF_CONF_LOG_TEXT), " HTTP/1.0\" 200 ") != NULL, "%s", line);
    cr_expect(strstr(fmt(&e, TF_CONF_LOG_JSON), ",\"version\":\"HTTP/1.0\",") != NULL, "%s", line);
}

/* A response cut short: the status sent, and one more field saying why. */
Test(access, a_cut_response_says_so_and_why)
{
    tf_access_entry_t e = sample();
    e.cut = "backend_closed";
    cr_expect_str_eq(fmt(&e, TF_CONF_LOG_TEXT),
                     "2026-11-25T06:01:02.123Z 192.0.2.7 sni=portal.acme.example tenant=acme "
                     "\"GET /x?y=1 HTTP/1.1\" 200 in=123 out=456 ms=7 backend=10.0.0.5:8080 "
                     "cut=backend_closed\n");
    cr_expect_str_eq(fmt(&e, TF_CONF_LOG_JSON),
                     "{\"time\":\"2026-11-25T06:01:02.123Z\",\"client\":\"192.0.2.7\","
                     "\"sni\":\"portal.acme.example\",\"tenant\":\"acme\",\"method\":\"GET\","
                     "\"path\":\"/x?y=1\",\"version\":\"HTTP/1.1\",\"status\":200,"
                     "\"bytes_in\":123,\"bytes_out\":456,\"duration_ms\":7,"
                     "\"backend\":\"10.0.0.5:8080\",\"cut\":\"backend_closed\"}\n");
    /* Cut before any status was sent (the client left): status none. */
    e.status = 0;
    e.cut = "client_closed";
    cr_expect(strstr(fmt(&e, TF_CONF_LOG_TEXT), "\" - in=123") != NULL, "%s", line);
    cr_expect(strstr(line, " cut=client_closed\n") != NULL, "%s", line);
    cr_expect(strstr(fmt(&e, TF_CONF_LOG_JSON), "\"status\":null,") != NULL, "%s", line);
}

/* A tenant with path routes: the route that served the request follows the
 * backend (before a cut); a tenant without routes keeps the line as it was. */
Test(access, a_routed_request_names_its_route)
{
    tf_access_entry_t e = sample();
    e.route = "/api/";
    e.cut = "backend_closed";
    cr_expect_str_eq(fmt(&e, TF_CONF_LOG_TEXT),
                     "2026-11-25T06:01:02.123Z 192.0.2.7 sni=portal.acme.example tenant=acme "
                     "\"GET /x?y=1 HTTP/1.1\" 200 in=123 out=456 ms=7 backend=10.0.0.5:8080 "
                     "route=/api/ cut=backend_closed\n");
    cr_expect(strstr(fmt(&e, TF_CONF_LOG_JSON),
                     "\"backend\":\"10.0.0.5:8080\",\"route\":\"/api/\",\"cut\":") != NULL,
              "%s", line);
}

Test(access, missing_values_and_a_tcp_connection)
{
    tf_access_entry_t e = {.time_ms = T0, .client = "2001:db8::7", .bytes_in = 5};
    cr_expect_str_eq(fmt(&e, TF_CONF_LOG_TEXT), "2026-11-25T06:01:02.123Z 2001:db8::7 sni=- "
                                                "tenant=- \"-\" - in=5 out=0 ms=0 backend=-\n");
    cr_expect_str_eq(fmt(&e, TF_CONF_LOG_JSON),
                     "{\"time\":\"2026-11-25T06:01:02.123Z\",\"client\":\"2001:db8::7\","
                     "\"sni\":null,\"tenant\":null,\"method\":null,\"path\":null,"
                     "\"version\":null,\"status\":null,\"bytes_in\":5,\"bytes_out\":0,"
                     "\"duration_ms\":0,\"backend\":null}\n");
    /* An SNI of "-" must not read as "no SNI". */
    e.sni = "-";
    cr_expect(strstr(fmt(&e, TF_CONF_LOG_TEXT), " sni=\\x2d ") != NULL, "%s", line);
}

/* Newline, quote, backslash, NUL, tab, DEL, invalid UTF-8, NEL and
 * U+2028 in the path; a space and a quote in the SNI. */
static const char nasty[] = "/a\nb\"c\\d\0e\tf\x7fg\xff\xc3(h\xc2\x85i\xe2\x80\xa8j\xc3\xa9";

Test(access, text_escapes_whatever_could_split_or_forge_a_line)
{
    tf_access_entry_t e = sample();
    e.path = nasty;
    e.path_len = sizeof nasty - 1;
    e.sni = "a b\"c";
    const char *l = fmt(&e, TF_CONF_LOG_TEXT);
    cr_expect(strstr(l, "\"GET /a\\x0ab\\x22c\\x5cd\\x00e\\x09f\\x7fg\\xff\\xc3(h\\xc2\\x85i"
                        "\\xe2\\x80\\xa8j\xc3\xa9 HTTP/1.1\"") != NULL,
              "%s", l);
    cr_expect(strstr(l, " sni=a\\x20b\\x22c ") != NULL, "%s", l);
    /* Exactly the two quotes that delimit the request. */
    size_t quotes = 0;
    for (const char *p = l; *p; p++)
        quotes += *p == '"';
    cr_expect_eq(quotes, 2);
}

/* The access log's escaper and the JSON of the admin API and the CLI
 * (jansson, through tf_json_text) say the same thing about a value: jansson
 * reads a log line's string back as exactly the string tf_json_text makes,
 * invalid UTF-8 included. */
Test(access, json_reads_back_as_tf_json_text)
{
    static const char *const values[] = {
        "plain",
        "q\"b\\s/",
        "nl\nt\tc\x01\x1f\x7f\r\b\f",
        "\xff\xfe",
        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8\xc2\x85",
        "\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80",
        "\xe2\x82",
        "\xc3",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        tf_access_entry_t e = sample();
        e.backend = values[i];
        const char *l = fmt(&e, TF_CONF_LOG_JSON);
        json_error_t err;
        json_t *doc = json_loads(l, 0, &err);
        cr_assert_not_null(doc, "%zu: %s: %s", i, err.text, l);
        json_t *got = json_object_get(doc, "backend");
        json_t *want = tf_json_text(values[i]);
        cr_expect(json_equal(got, want), "%zu: %s", i, l);
        json_decref(want);
        json_decref(doc);
    }
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

Test(access, a_long_path_is_cut_and_marked)
{
    static char path[10000];
    memset(path, 'p', sizeof path);
    path[0] = '/';
    tf_access_entry_t e = sample();
    e.path = path;
    e.path_len = sizeof path;
    const char *l = fmt(&e, TF_CONF_LOG_TEXT);
    cr_expect(strstr(l, "ppp\\... HTTP/1.1\" 200 ") != NULL, "%s", l);
    cr_expect(ends_with(l, "backend=10.0.0.5:8080\n"));
    l = fmt(&e, TF_CONF_LOG_JSON);
    cr_expect(strstr(l, "ppp...\",\"version\"") != NULL);
    cr_expect(ends_with(l, ",\"truncated\":true}\n"), "%s", l);
    /* A cut never splits an escape or a UTF-8 sequence. */
    for (size_t i = 0; i + 2 < sizeof path; i += 2)
        memcpy(path + i, "\xc3\xa9", 2);
    e.path_len = sizeof path - 1;
    l = fmt(&e, TF_CONF_LOG_JSON);
    cr_expect(strstr(l, "\xc3\xa9...\"") != NULL);
}

/* Every field at its worst (each byte escapes to six) still fits a line. */
Test(access, the_worst_line_fits_pipe_buf)
{
    static char junk[20000];
    memset(junk, 0x01, sizeof junk - 1);
    tf_access_entry_t e = {
        .time_ms = T0,
        .client = junk,
        .sni = junk,
        .tenant = junk,
        .method = junk,
        .method_len = sizeof junk - 1,
        .path = junk,
        .path_len = sizeof junk - 1,
        .status = 599,
        .bytes_in = UINT64_MAX,
        .bytes_out = UINT64_MAX,
        .duration_ms = UINT64_MAX,
        .backend = junk,
    };
    fmt(&e, TF_CONF_LOG_TEXT);
    cr_expect(ends_with(line, "\\...\n"), "%s", line);
    fmt(&e, TF_CONF_LOG_JSON);
    cr_expect(ends_with(line, ",\"truncated\":true}\n"));
    char small[100];
    cr_expect_eq(tf_access_format(&e, TF_CONF_LOG_JSON, small, sizeof small), 0);
}

/* ---- parsing back ------------------------------------------------------------ */

static char *sh(int *status, const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *out = calloc(1, 65536);
    size_t n = fread(out, 1, 65535, p);
    out[n] = '\0';
    *status = pclose(p);
    return out;
}

/* Undoes the text escapes: \xHH only. */
static size_t unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 3 < n + 0 && s[i + 1] == 'x') {
            unsigned v;
            sscanf(s + i + 2, "%2x", &v);
            out[o++] = (char)v;
            i += 3;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

Test(access, text_parses_back_to_the_original_path)
{
    tf_access_entry_t e = sample();
    e.path = nasty;
    e.path_len = sizeof nasty - 1;
    const char *l = fmt(&e, TF_CONF_LOG_TEXT);
    const char *start = strstr(l, "\"GET ") + 5;
    const char *end = strstr(start, " HTTP/1.1\"");
    cr_assert(start && end);
    char back[256];
    size_t n = unescape(start, (size_t)(end - start), back);
    cr_expect_eq(n, sizeof nasty - 1);
    cr_expect_eq(memcmp(back, nasty, n), 0);
    /* Twelve space-separated fields, the request being three. */
    size_t spaces = 0;
    for (const char *p = l; *p; p++)
        spaces += *p == ' ';
    cr_expect_eq(spaces, 11);
}

Test(access, json_lines_parse_with_python)
{
    char path[] = "/tmp/tf-access-json-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    tf_access_entry_t e = sample();
    fputs(fmt(&e, TF_CONF_LOG_JSON), f);
    e.path = nasty;
    e.path_len = sizeof nasty - 1;
    e.sni = "\xff\"\n";
    fputs(fmt(&e, TF_CONF_LOG_JSON), f);
    static char big[9000];
    memset(big, '\n', sizeof big);
    e.path = big;
    e.path_len = sizeof big;
    fputs(fmt(&e, TF_CONF_LOG_JSON), f);
    fclose(f);
    char cmd[512];
    snprintf(
        cmd, sizeof cmd,
        "python3 -c 'import json,sys\n"
        "ls=open(sys.argv[1],encoding=\"utf-8\").read().split(\"\\n\")[:-1]\n"
        "o=[json.loads(l) for l in ls]\n"
        "assert len(o)==3 and o[0][\"status\"]==200 and o[1][\"path\"].startswith(\"/a\\nb\")\n"
        "assert o[2][\"truncated\"] and o[2][\"path\"].endswith(\"...\")\n"
        "print(\"ok\")' %s 2>&1",
        path);
    int st;
    char *out = sh(&st, cmd);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_str_eq(out, "ok\n");
    free(out);
    unlink(path);
}

/* ---- the writer --------------------------------------------------------------- */

static tf_access_log_t *open_log(tf_conf_access_t kind, const char *path, tf_conf_log_format_t f)
{
    tf_conf_log_t c = {.format = f, .access = kind, .access_path = path};
    tf_access_log_t *log = NULL;
    char err[256] = "";
    cr_assert_eq(tf_access_open(&c, &log, err, sizeof err), 0, "%s", err);
    return log;
}

typedef struct {
    tf_access_log_t *log;
    int id;
} writer_t;

static char zpath[1500]; /* filled before the writers start */

static void *writer(void *arg)
{
    writer_t *w = arg;
    tf_access_entry_t e = sample();
    e.path = zpath;
    e.path_len = sizeof zpath;
    e.duration_ms = (uint64_t)w->id;
    for (int i = 0; i < 500; i++)
        tf_access_write(w->log, &e);
    return NULL;
}

Test(access, threads_append_whole_lines_and_reopen_follows_a_rotation)
{
    char dir[] = "/tmp/tf-access-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128], moved[160], cmd[512];
    snprintf(path, sizeof path, "%s/access.log", dir);
    snprintf(moved, sizeof moved, "%s/access.log.1", dir);
    tf_access_log_t *log = open_log(TF_CONF_ACCESS_FILE, path, TF_CONF_LOG_TEXT);
    cr_expect(tf_access_enabled(log));
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0640);

    memset(zpath, 'z', sizeof zpath);
    zpath[0] = '/';
    pthread_t t[4];
    writer_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (writer_t){log, i};
        pthread_create(&t[i], NULL, writer, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* Every line whole: 2,000 lines, each matching the whole format. */
    snprintf(cmd, sizeof cmd,
             "grep -cE '^2026-11-25T06:01:02.123Z 192.0.2.7 sni=portal.acme.example tenant=acme "
             "\"GET /z+ HTTP/1.1\" 200 in=123 out=456 ms=[0-3] backend=10.0.0.5:8080$' %s; "
             "wc -l < %s",
             path, path);
    int status;
    char *out = sh(&status, cmd);
    cr_expect_str_eq(out, "2000\n2000\n");
    free(out);

    cr_assert_eq(rename(path, moved), 0);
    cr_expect_eq(tf_access_reopen(log), 0);
    tf_access_entry_t e = sample();
    tf_access_write(log, &e);
    cr_expect_eq(tf_access_dropped(log), 0);
    tf_access_free(log);
    snprintf(cmd, sizeof cmd, "wc -l < %s; wc -l < %s; rm -r %s", path, moved, dir);
    out = sh(&status, cmd);
    cr_expect_str_eq(out, "1\n2000\n");
    free(out);
}

Test(access, off_writes_nothing_and_a_bad_path_says_why)
{
    tf_access_log_t *log = open_log(TF_CONF_ACCESS_OFF, NULL, TF_CONF_LOG_TEXT);
    cr_expect_not(tf_access_enabled(log));
    tf_access_entry_t e = sample();
    tf_access_write(log, &e);
    cr_expect_eq(tf_access_reopen(log), 0);
    tf_access_free(log);

    tf_conf_log_t c = {.access = TF_CONF_ACCESS_FILE, .access_path = "/nonexistent/dir/a.log"};
    char err[256] = "";
    cr_expect_lt(tf_access_open(&c, &log, err, sizeof err), 0);
    cr_expect(strstr(err, "/nonexistent/dir/a.log: cannot open: ") == err, "%s", err);
}

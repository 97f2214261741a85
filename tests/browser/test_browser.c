/* A real browser through the proxy (issue 15, SPEC §12): Debian's headless
 * chromium loads a portal page with 36 subresources (stylesheets, scripts,
 * images: tests/browser/portal_backend.py) and chats over a WebSocket
 * (tests/proxy/echo_backend.py) through tlsfront with HTTP/2 on. The page
 * reports what the browser saw (the navigation's and each resource's
 * nextHopProtocol, the chat's echo), read through the DevTools protocol by
 * tests/browser/browser_check.py; the proxy's access log must agree, and
 * show the chat as a WebSocket over HTTP/2 (RFC 8441).
 *
 * A browser that cannot start is a failure, never a skip: the suite exists to
 * prove that a browser works through the proxy. */
#include "tests/harness/harness.h"

#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITE "portal.acme.example"
/* The page and its 36 assets, each a line in the access log. */
#define MIN_RESOURCES 30
#define PAGE_REQUESTS 37

typedef struct {
    tf_px_t px;
    size_t portal, chat;
    char config[1200];
    char access[1200];
} site_t;

/* One site per test (each runs in its own process); the suite's fini stops
 * whatever a failed assertion left running. */
static site_t site;

static void site_stop(void)
{
    tf_px_stop(&site.px);
}

TestSuite(browser, .timeout = 600, .fini = site_stop);

/* The portal tenant: / on the page backend, /chat on the WebSocket echo. */
static void site_start(site_t *s, const char *http2)
{
    tf_px_t *px = &s->px;
    tf_px_init(px, "tf-browser-test");
    tf_px_demo_pki(px);
    s->portal = tf_px_add_script(px, "browser/portal_backend.py", "portal");
    s->chat = tf_px_add_echo(px, "chat");
    snprintf(s->access, sizeof s->access, "%s/access.log", px->tmp);
    snprintf(s->config, sizeof s->config, "%s/tlsfront.yaml", px->tmp);
    FILE *f = fopen(s->config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "log:\n  level: info\n  access: %s\n"
            "listen:\n  https: [\"127.0.0.1:0\"]\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "http2: %s\n"
            "tenants:\n"
            "  acme:\n"
            "    hosts: [\"" SITE "\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "    routes:\n"
            "      - path: /chat\n"
            "        backends: [\"127.0.0.1:%u\"]\n"
            "        mode: websocket\n",
            s->access, px->demo, px->demo, http2, px->echos_port[s->portal],
            px->echos_port[s->chat]);
    fclose(f);
    tf_px_launch(px, s->config, 0);
}

/* browser_check.py against the site; fails the test with its report unless
 * the page and at least MIN_RESOURCES resources came over PROTOCOL and the
 * chat echoed. `timeout` bounds it even if the script itself hangs. */
static void browse(const site_t *s, const char *protocol)
{
    int st;
    char *out = tf_px_sh(&st,
                         "timeout -k 10 300 python3 '%s/tests/browser/browser_check.py' "
                         "'https://" SITE ":%u/' --map " SITE
                         " --min-resources %d --protocol %s --timeout 240",
                         tf_px_env("TF_SOURCE_DIR"), s->px.port, MIN_RESOURCES, protocol);
    cr_assert_eq(st, 0, "chromium through the proxy (status %d):\n%s", st, out);
    free(out);
}

Test(browser, a_portal_and_its_chat_load_over_http2)
{
    site_t *s = &site;
    site_start(s, "{enabled: true, max_concurrent_streams: 100}");
    browse(s, "h2");
    /* The proxy's own view: the page and every asset were HTTP/2 streams. */
    bool logged = tf_px_wait_count(s->access, "HTTP/2\"", PAGE_REQUESTS, TF_PX_WAIT_MS);
    /* The chat went over HTTP/2 too: chromium opens a WebSocket over
     * HTTP/2 (extended CONNECT, RFC 8441) where the server allows it. */
    bool chat = tf_px_wait_count(s->access, "\"GET /chat HTTP/2\" 101", 1, TF_PX_WAIT_MS);
    char *log = tf_px_read(s->access);
    cr_expect(logged, "fewer than %d HTTP/2 requests in the access log:\n%s", PAGE_REQUESTS, log);
    cr_expect(chat, "the chat was not a WebSocket over HTTP/2:\n%s", log);
    free(log);
}

Test(browser, with_http2_off_the_same_page_loads_over_http1)
{
    site_t *s = &site;
    site_start(s, "{enabled: false}");
    browse(s, "http/1.1");
}

/* See harness.h. */
#include "harness.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

/* Mode http tenants on the HTTP test backend, one mode tcp tenant, no
 * catch-all (so that an unknown Host is 404). */
static void write_http_tenants(FILE *f, const tf_px_t *px)
{
    fprintf(f,
            "tenants:\n"
            "  acme:\n    hosts: [\"portal.acme.example\", \"chat.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "  raw:\n    hosts: [\"portal.globex.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  others:\n    hosts: [\"*.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "  down:\n    hosts: [\"down.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "  slow:\n    hosts: [\"slow.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "  checked:\n    hosts: [\"checked.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n"
            "    health: { path: /status/204, interval: 200ms }\n"
            "  refused:\n    hosts: [\"refused.tenants.example\"]\n"
            "    backends: [\"255.255.255.255:80\", \"127.0.0.1:%u\"]\n"
            "  pooled:\n    hosts: [\"pooled.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\", \"255.255.255.255:80\"]\n"
            "  sick:\n    hosts: [\"sick.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "    health: { path: /status/500, interval: 200ms }\n",
            px->echo_port, px->backend_port, px->echo_port, px->dead_port, px->hole_port,
            px->dead_port, px->echo_port, px->echo_port, px->echo_port, px->echo_port);
}

static void write_config(tf_px_t *px, const tf_px_opts_t *o, char *path, size_t len)
{
    const char *listen = o && o->dual_stack ? "\"0.0.0.0:0\", \"[::]:0\"" : "\"127.0.0.1:0\"";
    snprintf(path, len, "%s/tlsfront.yaml", px->tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "%s%s%s"
            "workers: %u\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "  unknown_sni: %s\n"
            "timeouts:\n  handshake: %s\n  connect: 2s\n  drain: %s\n  idle: %s\n"
            "  request_header: %s\n  response: %s\n  tunnel: %s\n"
            "limits:\n  max_connections: %u\n  max_header_bytes: 8192\n",
            o && o->user ? "user: " : "", o && o->user ? o->user : "", o && o->user ? "\n" : "",
            o && o->workers ? o->workers : 1, px->demo, px->demo,
            o && o->unknown_sni ? o->unknown_sni : "default",
            o && o->handshake ? o->handshake : "20s", o && o->drain ? o->drain : "10s",
            o && o->idle ? o->idle : "60s", o && o->request_header ? o->request_header : "20s",
            o && o->response ? o->response : "60s", o && o->tunnel ? o->tunnel : "1h",
            o && o->max_connections ? o->max_connections : 1000);
    if (o && o->http) {
        /* Port 80, an ACME webroot and a JSON access log beside. */
        fprintf(f,
                "listen:\n  https: [%s]\n  http: [\"127.0.0.1:0\"]\n"
                "acme:\n  webroot: %s/acme\n"
                "admin:\n  listen: \"127.0.0.1:0\"\n"
                "log:\n  level: debug\n  access: %s/access.log\n  format: json\n",
                listen, px->tmp, px->tmp);
        write_http_tenants(f, px);
        fclose(f);
        return;
    }
    fprintf(f, "log:\n  level: debug\nlisten:\n  https: [%s]\n", listen);
    fprintf(f,
            "tenants:\n"
            "  acme:\n    hosts: [\"portal.acme.example\", \"chat.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  down:\n    hosts: [\"portal.globex.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  others:\n    hosts: [\"*.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  slow:\n    hosts: [\"slow.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  fallback:\n    hosts: [\"*\"]\n    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n",
            px->backend_port, px->dead_port, px->dead_port, px->backend_port, px->hole_port,
            px->backend_port, px->backend_port);
    fclose(f);
}

void tf_px_start(tf_px_t *px, const tf_px_opts_t *opts)
{
    tf_px_init(px, "tf-proxy-test");
    tf_px_demo_pki(px);
    tf_px_start_backend(px);
    if (opts != NULL && opts->http)
        tf_px_start_echo(px, "echo1");
    char config[1200];
    write_config(px, opts, config, sizeof config);
    tf_px_launch(px, config, opts ? opts->nofile : 0);
}

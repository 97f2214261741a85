/* sd_notify for `tlsfront run` (see notify.h). libsystemd's sd_notify()
 * returns 0 without NOTIFY_SOCKET, so the calls need no guard of their own;
 * the environment variable is kept (unset_environment 0) for the messages
 * that follow READY=1. */
#include "proxy/cli/notify.h"

#include "common/err.h"
#include "proxy/obs/obs.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static void notify_send(const char *msg)
{
    int rc = sd_notify(0, msg);
    if (rc < 0)
        TF_LOG(TF_LOG_DEBUG, "sd_notify: cannot tell the service manager: %s", tf_strerror(rc));
}

void tf_notify_ready(size_t nhttps, size_t nhttp, unsigned nworkers)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "READY=1\nSTATUS=serving: %zu https and %zu http listeners, %u workers", nhttps, nhttp,
             nworkers);
    notify_send(msg);
}

/* systemd 253 and later tie RELOADING=1 to the moment it was sent, by
 * CLOCK_MONOTONIC in microseconds, to tell it from a stale one; 252 ignores
 * the field. */
static void notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long usec =
        (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u;
    char msg[160];
    snprintf(msg, sizeof msg,
             "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration", usec);
    notify_send(msg);
}

/* A reload that was refused leaves the running configuration serving: ready
 * either way, and the status says which. */
static void notify_on_cycle(void *arg, const tf_reload_result_t *res)
{
    (void)arg;
    if (res == NULL) {
        notify_reloading();
        return;
    }
    bool applied = res->rc == 0 && (!res->conf_requested || res->conf_applied);
    notify_send(applied ? "READY=1\nSTATUS=serving: configuration reloaded"
                        : "READY=1\nSTATUS=serving: the last reload failed, the previous "
                          "configuration stays (see the log)");
}

void tf_notify_watch_reloads(tf_reload_t *r)
{
    tf_reload_on_cycle(r, notify_on_cycle, NULL);
}

void tf_notify_stopping(void)
{
    notify_send("STOPPING=1\nSTATUS=draining: no new connections");
}

/* Who listens on an address (see tf_listener_owner in listener.h): only on
 * the way to refusing a start, so plain reads of /proc are cheap enough. */
#include "proxy/net/listener.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The LISTEN state in /proc/net/tcp's "st" column. */
#define TCP_LISTEN_STATE 0x0A

/* An address as /proc/net/tcp{,6} prints it: the address words in host byte
 * order, so the bytes compare equal to a sockaddr's once read back. */
typedef struct {
    int family;
    uint8_t addr[16];
    unsigned port;
} proc_addr_t;

static bool parse_proc_addr(const char *hex, int family, proc_addr_t *out)
{
    size_t words = family == AF_INET6 ? 4 : 1;
    uint32_t w[4];
    out->family = family;
    for (size_t i = 0; i < words; i++) {
        char part[9];
        memcpy(part, hex + 8 * i, 8);
        part[8] = '\0';
        w[i] = (uint32_t)strtoul(part, NULL, 16);
    }
    memcpy(out->addr, w, words * 4);
    return sscanf(hex + 8 * words, ":%x", &out->port) == 1;
}

static bool is_any(const proc_addr_t *a)
{
    static const uint8_t zero[16];
    return memcmp(a->addr, zero, a->family == AF_INET6 ? 16 : 4) == 0;
}

/* Whether a listener on `theirs` takes connections meant for `ours`: the
 * same port and address, or a wildcard on either side (an IPv6 wildcard may
 * be dual-stack). */
static bool covers(const proc_addr_t *ours, const proc_addr_t *theirs)
{
    if (ours->port != theirs->port)
        return false;
    if (ours->family != theirs->family)
        return theirs->family == AF_INET6 && is_any(theirs);
    size_t n = ours->family == AF_INET6 ? 16 : 4;
    return is_any(ours) || is_any(theirs) || memcmp(ours->addr, theirs->addr, n) == 0;
}

/* The inode of a listening socket on an address that covers `ours`, or 0. */
static unsigned long find_inode(const char *table, int family, const proc_addr_t *ours)
{
    FILE *f = fopen(table, "r");
    if (f == NULL)
        return 0;
    char line[512], local[64];
    unsigned st;
    unsigned long inode, found = 0;
    proc_addr_t theirs;
    while (found == 0 && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, " %*u: %63s %*s %x %*s %*s %*s %*u %*u %lu", local, &st, &inode) == 3 &&
            st == TCP_LISTEN_STATE && parse_proc_addr(local, family, &theirs) &&
            covers(ours, &theirs))
            found = inode;
    }
    fclose(f);
    return found;
}

/* Whether process `pid` holds the socket: one of its descriptors links to
 * "socket:[INODE]" (readable for one's own processes, or as root). */
static bool holds(long pid, const char *want)
{
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            found = strcmp(link, want) == 0;
        }
    }
    closedir(d);
    return found;
}

static void describe(long pid, char *out, size_t outlen)
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fgets(comm, sizeof comm, f) != NULL)
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    snprintf(out, outlen, " (pid %ld%s%s)", pid, *comm ? ", " : "", comm);
}

static void find_process(unsigned long inode, char *out, size_t outlen)
{
    char want[64];
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    long self = (long)getpid();
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == self || !holds(pid, want))
            continue;
        describe(pid, out, outlen);
        break;
    }
    closedir(d);
}

void tf_listener_owner(const struct sockaddr *sa, char *out, size_t outlen)
{
    out[0] = '\0';
    proc_addr_t ours = {.family = sa->sa_family};
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(ours.addr, &a6->sin6_addr, 16);
        ours.port = ntohs(a6->sin6_port);
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)sa;
        memcpy(ours.addr, &a4->sin_addr, 4);
        ours.port = ntohs(a4->sin_port);
    }
    unsigned long inode = find_inode("/proc/net/tcp", AF_INET, &ours);
    if (inode == 0)
        inode = find_inode("/proc/net/tcp6", AF_INET6, &ours);
    if (inode != 0)
        find_process(inode, out, outlen);
}

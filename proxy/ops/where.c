/* See where.h. */
#include "proxy/ops/where.h"

#include <stdio.h>

const char *tf_where(const tf_conf_t *conf, const char *key, size_t index, char *buf)
{
    char at[TF_CONF_WHERE_MAX];
    buf[0] = '\0';
    if (tf_conf_where(conf, key, index, at, sizeof at) == 0)
        snprintf(buf, TF_WHERE_MAX, "%s: ", at);
    return buf;
}

const char *tf_where_note(const tf_conf_t *conf, const tf_cs_snapshot_t *snap, size_t i, char *buf)
{
    size_t source = tf_cs_snapshot_note_source(snap, i);
    buf[0] = '\0';
    if (source == TF_CS_NOTE_DEFAULT_CERT)
        return tf_where(conf, "tls.default_cert", 0, buf);
    if (source != TF_CS_NOTE_OTHER)
        return tf_where(conf, "tls.certs", source, buf);
    return buf;
}

bool tf_where_is_errno(int rc)
{
    return rc < 0 && rc > -10000;
}

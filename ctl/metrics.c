/* ctl metrics: the broker's snapshot in the Prometheus text format, as the broker's
 * --metrics-listen endpoint serves it (both written by common/prom.c). */
#include "ctl.h"

#include "err.h"
#include "prom.h"

#include <stdio.h>
#include <stdlib.h>

int
cmd_metrics(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    int rv;

    (void)argc;
    (void)argv;
    (void)ov;
    wire_msg_init(&req);
    if ((rv = ctl_call(ctl, "stats", &req)) != 0) {
        return rv;
    }
    /* Into memory first: a reply that cannot be used prints nothing. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        fprintf(stderr, "ctl: out of memory\n");
        return CTL_EXIT_FAILED;
    }
    rv = prom_format(&ctl->rep.up.data, f);
    if (fclose(f) != 0 && rv == 0) {
        rv = SL_EIO;
    }
    if (rv == SL_EBADREQ) {
        free(text);
        return ctl_bad_reply(ctl, "no 'broker' map in the stats reply");
    }
    if (rv != 0) {
        free(text);
        fprintf(stderr, "ctl: out of memory\n");
        return CTL_EXIT_FAILED;
    }
    rv = CTL_EXIT_OK;
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
        fprintf(stderr, "ctl: cannot write to stdout\n");
        rv = CTL_EXIT_FAILED;
    }
    free(text);
    return rv;
}

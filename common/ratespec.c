#include "ratespec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *suffix;
    double seconds;
} units[] = {
    { "", 1 }, { "/s", 1 }, { "/m", 60 }, { "/h", 3600 },
};

int
ratespec_parse(const char *s, uint64_t *milli)
{
    size_t i = strspn(s, "0123456789");
    if (i == 0) {
        return -1;
    }
    if (s[i] == '.') {
        size_t f = strspn(s + i + 1, "0123456789");
        if (f == 0) {
            return -1;
        }
        i += 1 + f;
    }
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (strcmp(s + i, units[u].suffix) != 0) {
            continue;
        }
        double m = strtod(s, NULL) * 1000.0 / units[u].seconds;
        if (!(m < (double)RATESPEC_MILLI_MAX + 0.5) || (m > 0 && m < 0.5)) {
            return -1;
        }
        *milli = (uint64_t)(m + 0.5);
        return 0;
    }
    return -1;
}

void
ratespec_format(uint64_t milli, char *out, size_t cap)
{
    uint64_t whole = milli / 1000u, frac = milli % 1000u;
    if (frac == 0) {
        snprintf(out, cap, "%llu/s", (unsigned long long)whole);
        return;
    }
    char f[8];
    snprintf(f, sizeof(f), "%03u", (unsigned)frac);
    for (size_t n = strlen(f); n > 0 && f[n - 1] == '0'; n--) {
        f[n - 1] = '\0';
    }
    snprintf(out, cap, "%llu.%s/s", (unsigned long long)whole, f);
}

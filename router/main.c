/* router: the balancing policy. Placeholder so the build links while the router is written. */
#include <stdio.h>

int
main(void)
{
    fprintf(stderr, "router: not implemented yet\n");
    return 1;
}

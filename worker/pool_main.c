/* worker-pool: supervises N worker processes (placeholder until the pool lands). */
#include <stdio.h>

int
main(void)
{
    fprintf(stderr, "worker-pool: not implemented yet\n");
    return 1;
}

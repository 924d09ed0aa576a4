/* worker: takes jobs from the broker and runs one handler on them.
 * Placeholder so the build links while the worker is written. */
#include <stdio.h>

int
main(void)
{
    fprintf(stderr, "worker: not implemented yet\n");
    return 1;
}

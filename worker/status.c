#include "status.h"

#include "clock.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t
status_now_ms(void)
{
    return clock_mono_ms();
}

struct worker_status *
status_map(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct worker_status)) {
        return NULL;
    }
    void *p = mmap(NULL, sizeof(struct worker_status), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    struct worker_status *s = p;
    if (s->magic != WORKER_STATUS_MAGIC || s->version > WORKER_STATUS_VERSION) {
        munmap(p, sizeof(struct worker_status));
        return NULL;
    }
    return s;
}

int
status_create(struct worker_status **page)
{
    int fd = memfd_create("sluice-worker-status", 0);
    if (fd < 0) {
        return -1;
    }
    if (ftruncate(fd, (off_t)sizeof(struct worker_status)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    void *p = mmap(NULL, sizeof(struct worker_status), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    memset(p, 0, sizeof(struct worker_status));
    struct worker_status *s = p;
    s->magic = WORKER_STATUS_MAGIC;
    s->version = WORKER_STATUS_VERSION;
    *page = s;
    return fd;
}

void
status_unmap(struct worker_status *page)
{
    if (page != NULL) {
        munmap(page, sizeof(struct worker_status));
    }
}

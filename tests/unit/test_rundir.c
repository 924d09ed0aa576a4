/* common/rundir: where the sockets live ($SLUICE_DIR > $XDG_RUNTIME_DIR/sluice >
 * /tmp/sluice-$UID), that the directory ends up ours and 0700, that a directory or socket
 * another user could control is refused, and the socket path limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "log.h"
#include "rundir.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A private scratch directory per test, removed afterwards. */
static char base[100]; /* short, so base + a suffix always fits RUNDIR_MAX */

static int
setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    log_level = LOG_OFF; /* rundir_ensure logs its refusals; the tests check the codes */
    snprintf(base, sizeof(base), "%s/rundir.XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    return mkdtemp(base) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'; rm -rf '%s'", base, base);
    return system(cmd) == 0 ? 0 : -1;
}

static mode_t
mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

/* --- rundir_path --------------------------------------------------------------------------- */

static void
test_path_prefers_sluice_dir(void **state)
{
    (void)state;
    char out[RUNDIR_MAX];
    assert_int_equal(rundir_path(out, sizeof(out), "/a/b", "/run/user/7"), 0);
    assert_string_equal(out, "/a/b");
}

static void
test_path_falls_back_to_xdg_runtime_dir(void **state)
{
    (void)state;
    char out[RUNDIR_MAX];
    assert_int_equal(rundir_path(out, sizeof(out), NULL, "/run/user/7"), 0);
    assert_string_equal(out, "/run/user/7/sluice");
    /* An empty SLUICE_DIR counts as unset. */
    assert_int_equal(rundir_path(out, sizeof(out), "", "/run/user/7"), 0);
    assert_string_equal(out, "/run/user/7/sluice");
}

static void
test_path_falls_back_to_tmp_with_uid(void **state)
{
    (void)state;
    char out[RUNDIR_MAX], want[64];
    snprintf(want, sizeof(want), "/tmp/sluice-%u", (unsigned)getuid());
    assert_int_equal(rundir_path(out, sizeof(out), NULL, NULL), 0);
    assert_string_equal(out, want);
    assert_int_equal(rundir_path(out, sizeof(out), "", ""), 0);
    assert_string_equal(out, want);
}

static void
test_path_drops_trailing_slashes(void **state)
{
    (void)state;
    char out[RUNDIR_MAX];
    assert_int_equal(rundir_path(out, sizeof(out), "/a/b/", NULL), 0);
    assert_string_equal(out, "/a/b");
    assert_int_equal(rundir_path(out, sizeof(out), "/a/b///", NULL), 0);
    assert_string_equal(out, "/a/b");
    /* The root stays the root. */
    assert_int_equal(rundir_path(out, sizeof(out), "/", NULL), 0);
    assert_string_equal(out, "/");
}

static void
test_path_too_long_for_the_buffer_is_refused(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(rundir_path(out, sizeof(out), "/aaaaaaaaaaaaaa", NULL), 0); /* 15 + NUL */
    assert_string_equal(out, "/aaaaaaaaaaaaaa");
    assert_int_equal(rundir_path(out, sizeof(out), "/aaaaaaaaaaaaaaa", NULL), SL_EBADREQ);
    /* The XDG form adds "/sluice". */
    assert_int_equal(rundir_path(out, sizeof(out), NULL, "/run/user/1000"), SL_EBADREQ);
}

static void
test_default_reads_the_environment(void **state)
{
    (void)state;
    char out[RUNDIR_MAX], want[64];
    setenv("SLUICE_DIR", "/x/y", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/9", 1);
    assert_int_equal(rundir_default(out, sizeof(out)), 0);
    assert_string_equal(out, "/x/y");
    unsetenv("SLUICE_DIR");
    assert_int_equal(rundir_default(out, sizeof(out)), 0);
    assert_string_equal(out, "/run/user/9/sluice");
    unsetenv("XDG_RUNTIME_DIR");
    snprintf(want, sizeof(want), "/tmp/sluice-%u", (unsigned)getuid());
    assert_int_equal(rundir_default(out, sizeof(out)), 0);
    assert_string_equal(out, want);
}

/* --- rundir_ensure ------------------------------------------------------------------------- */

static void
test_ensure_creates_missing_dirs_0700(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], mid[RUNDIR_MAX];
    mode_t old = umask(0); /* the mode must not depend on the caller's umask */
    snprintf(dir, sizeof(dir), "%s/a/b/c", base);
    snprintf(mid, sizeof(mid), "%s/a/b", base);
    assert_int_equal(rundir_ensure(dir), 0);
    umask(old);
    struct stat st;
    assert_int_equal(lstat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(mode_of(mid), 0700); /* parents it made are private too */
    /* Again: nothing to do, still fine. */
    assert_int_equal(rundir_ensure(dir), 0);
    assert_int_equal(mode_of(dir), 0700);
}

static void
test_ensure_tightens_a_0755_dir(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX];
    snprintf(dir, sizeof(dir), "%s/open", base);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(rundir_ensure(dir), 0);
    assert_int_equal(mode_of(dir), 0700);
    /* Also a world-writable one. */
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(rundir_ensure(dir), 0);
    assert_int_equal(mode_of(dir), 0700);
}

static void
test_ensure_accepts_a_trailing_slash(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], plain[RUNDIR_MAX];
    snprintf(dir, sizeof(dir), "%s/slash/", base);
    snprintf(plain, sizeof(plain), "%s/slash", base);
    assert_int_equal(rundir_ensure(dir), 0);
    assert_int_equal(mode_of(plain), 0700);
}

static void
test_ensure_refuses_a_file(void **state)
{
    (void)state;
    char path[RUNDIR_MAX];
    snprintf(path, sizeof(path), "%s/file", base);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(rundir_ensure(path), SL_EIO);
    assert_int_equal(mode_of(path), 0644); /* left alone */
}

static void
test_ensure_refuses_a_path_under_a_file(void **state)
{
    (void)state;
    char file[RUNDIR_MAX], path[RUNDIR_MAX];
    snprintf(file, sizeof(file), "%s/file", base);
    snprintf(path, sizeof(path), "%s/file/sub", base);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(rundir_ensure(path), SL_EIO);
}

static void
test_ensure_refuses_a_symlink_to_a_dir(void **state)
{
    (void)state;
    /* Someone else's link to a directory must not become our socket directory. */
    char target[RUNDIR_MAX], link[RUNDIR_MAX];
    snprintf(target, sizeof(target), "%s/target", base);
    snprintf(link, sizeof(link), "%s/link", base);
    assert_int_equal(mkdir(target, 0755), 0);
    assert_int_equal(chmod(target, 0755), 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(rundir_ensure(link), SL_EIO);
    assert_int_equal(mode_of(target), 0755); /* not tightened through the link */
}

static void
test_ensure_refuses_a_dir_owned_by_someone_else(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX];
    snprintf(dir, sizeof(dir), "%s/theirs", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    if (chown(dir, geteuid() + 1, (gid_t)-1) != 0) {
        skip(); /* only root can give a directory away */
    }
    assert_int_equal(rundir_ensure(dir), SL_EIO);
}

static void
test_ensure_refuses_empty_and_too_long_paths(void **state)
{
    (void)state;
    char big[RUNDIR_MAX + 10];
    assert_int_equal(rundir_ensure(""), SL_EIO);
    memset(big, 'a', sizeof(big) - 1);
    big[0] = '/';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(rundir_ensure(big), SL_EIO);
}

/* --- rundir_check, rundir_check_socket, rundir_client_url ---------------------------------- */

/* The uid of nobody: a real other user when the tests run as root. */
#define OTHER_UID 65534

/* Gives path to OTHER_UID; false when this process cannot (not root). */
static bool
give_away(const char *path)
{
    return lchown(path, OTHER_UID, (gid_t)-1) == 0;
}

/* A listening Unix socket at path (closed again: the file stays), with mode. */
static void
make_socket(const char *path, mode_t mode)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_true(strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static void
test_check_accepts_a_private_dir_of_ours(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], why[512] = "";
    snprintf(dir, sizeof(dir), "%s/mine", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(rundir_check(dir, why, sizeof(why)), 0);
    /* A trailing slash names the same directory. */
    strcat(dir, "/");
    assert_int_equal(rundir_check(dir, why, sizeof(why)), 0);
}

static void
test_check_reports_a_missing_dir(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], why[512] = "";
    snprintf(dir, sizeof(dir), "%s/none", base);
    assert_int_equal(rundir_check(dir, why, sizeof(why)), SL_ENOTFOUND);
    assert_non_null(strstr(why, dir));
}

static void
test_check_refuses_a_dir_open_to_others(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], why[512] = "";
    snprintf(dir, sizeof(dir), "%s/open", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(rundir_check(dir, why, sizeof(why)), SL_EFORBIDDEN);
    assert_non_null(strstr(why, dir));
    assert_non_null(strstr(why, "mode 0755"));
    assert_int_equal(mode_of(dir), 0755); /* a check changes nothing */
    /* Read access alone for the group is already too much. */
    assert_int_equal(chmod(dir, 0740), 0);
    assert_int_equal(rundir_check(dir, why, sizeof(why)), SL_EFORBIDDEN);
}

/* A broker given --socket-group makes its directory 0710: its group may search it (reach a
 * socket whose mode lets it in) and do nothing else, which the clients accept; a group that
 * may list or write it, or others that may search it, are refused; ensure keeps 0710. */
static void
test_check_accepts_a_dir_its_group_may_only_search(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], why[512] = "";
    snprintf(dir, sizeof(dir), "%s/shared", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0710), 0);
    assert_int_equal(rundir_check(dir, why, sizeof(why)), 0);
    assert_int_equal(rundir_ensure(dir), 0);
    assert_int_equal(mode_of(dir), 0710);
    static const mode_t refused[] = { 0730, 0750, 0770, 0711, 0701 };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(chmod(dir, refused[i]), 0);
        assert_int_equal(rundir_check(dir, why, sizeof(why)), SL_EFORBIDDEN);
    }
    assert_int_equal(rundir_share(dir, (gid_t)-1), 0);
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(rundir_share(dir, getegid()), 0);
    assert_int_equal(mode_of(dir), 0710);
}

static void
test_check_refuses_a_dir_owned_by_another_user(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], why[512] = "";
    snprintf(dir, sizeof(dir), "%s/theirs", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    if (!give_away(dir)) {
        skip(); /* only root can give a directory away */
    }
    /* Even private: its owner could put a broker of theirs there. */
    assert_int_equal(rundir_check(dir, why, sizeof(why)), SL_EFORBIDDEN);
    assert_non_null(strstr(why, dir));
    assert_non_null(strstr(why, "owned by uid 65534, mode 0700"));
    /* The squat: another user's directory open for reading. */
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(rundir_check(dir, why, sizeof(why)), SL_EFORBIDDEN);
    assert_non_null(strstr(why, "owned by uid 65534, mode 0755"));
}

static void
test_check_refuses_a_symlink_and_a_file(void **state)
{
    (void)state;
    char target[RUNDIR_MAX], link[RUNDIR_MAX], file[RUNDIR_MAX], why[512] = "";
    snprintf(target, sizeof(target), "%s/target", base);
    snprintf(link, sizeof(link), "%s/link", base);
    snprintf(file, sizeof(file), "%s/file", base);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(target, link), 0);
    /* A link to a perfectly private directory of ours is still refused: lstat, not stat. */
    assert_int_equal(rundir_check(link, why, sizeof(why)), SL_EFORBIDDEN);
    assert_non_null(strstr(why, "symbolic link"));
    strcat(link, "/");
    assert_int_equal(rundir_check(link, why, sizeof(why)), SL_EFORBIDDEN);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(rundir_check(file, why, sizeof(why)), SL_EFORBIDDEN);
    assert_non_null(strstr(why, "not a directory"));
}

static void
test_check_socket(void **state)
{
    (void)state;
    char sock[RUNDIR_MAX], link[RUNDIR_MAX], why[512] = "";
    snprintf(sock, sizeof(sock), "%s/s.ipc", base);
    snprintf(link, sizeof(link), "%s/l.ipc", base);
    /* None yet: the server is not up, nothing to refuse. */
    assert_int_equal(rundir_check_socket(sock, why, sizeof(why)), 0);
    make_socket(sock, 0600);
    assert_int_equal(rundir_check_socket(sock, why, sizeof(why)), 0);
    /* Writable by others: anyone could have replaced it. */
    assert_int_equal(chmod(sock, 0666), 0);
    assert_int_equal(rundir_check_socket(sock, why, sizeof(why)), SL_EFORBIDDEN);
    assert_non_null(strstr(why, sock));
    assert_non_null(strstr(why, "mode 0666"));
    assert_int_equal(chmod(sock, 0602), 0);
    assert_int_equal(rundir_check_socket(sock, why, sizeof(why)), SL_EFORBIDDEN);
    /* The group's write bit is what a broker starting under umask 002 shows for a moment. */
    assert_int_equal(chmod(sock, 0775), 0);
    assert_int_equal(rundir_check_socket(sock, why, sizeof(why)), 0);
    assert_int_equal(chmod(sock, 0600), 0);
    assert_int_equal(symlink(sock, link), 0);
    assert_int_equal(rundir_check_socket(link, why, sizeof(why)), SL_EFORBIDDEN);
    assert_non_null(strstr(why, "symbolic link"));
    if (!give_away(sock)) {
        skip();
    }
    assert_int_equal(rundir_check_socket(sock, why, sizeof(why)), SL_EFORBIDDEN);
    assert_non_null(strstr(why, "owned by uid 65534, mode 0600"));
}

static void
test_client_url_checks_dir_and_socket(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], sock[RUNDIR_MAX + 16], url[RUNDIR_MAX + 32], want[RUNDIR_MAX + 32];
    char why[512] = "";
    snprintf(dir, sizeof(dir), "%s/rt", base);
    snprintf(sock, sizeof(sock), "%s/broker.ipc", dir);
    snprintf(want, sizeof(want), "ipc://%s", sock);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(rundir_client_url(url, sizeof(url), dir, "broker.ipc", why, sizeof(why)), 0);
    assert_string_equal(url, want);
    make_socket(sock, 0666);
    assert_int_equal(rundir_client_url(url, sizeof(url), dir, "broker.ipc", why, sizeof(why)),
                     SL_EFORBIDDEN);
    assert_non_null(strstr(why, sock));
    assert_int_equal(chmod(sock, 0600), 0);
    assert_int_equal(rundir_client_url(url, sizeof(url), dir, "broker.ipc", why, sizeof(why)), 0);
    assert_int_equal(chmod(dir, 0711), 0);
    assert_int_equal(rundir_client_url(url, sizeof(url), dir, "broker.ipc", why, sizeof(why)),
                     SL_EFORBIDDEN);
    assert_non_null(strstr(why, "mode 0711"));
    assert_int_equal(mode_of(dir), 0711); /* a client does not tighten what it refuses */
}

static void
test_client_url_refuses_a_squatted_dir(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], sock[RUNDIR_MAX + 16], url[RUNDIR_MAX + 32], why[512] = "";
    snprintf(dir, sizeof(dir), "%s/squat", base);
    snprintf(sock, sizeof(sock), "%s/broker.ipc", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    make_socket(sock, 0666);
    if (!give_away(sock) || !give_away(dir)) {
        skip();
    }
    assert_int_equal(rundir_client_url(url, sizeof(url), dir, "broker.ipc", why, sizeof(why)),
                     SL_EFORBIDDEN);
    assert_non_null(strstr(why, dir));
    assert_non_null(strstr(why, "owned by uid 65534, mode 0755"));
}

static void
test_client_url_makes_a_missing_dir_ours(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], deep[RUNDIR_MAX], url[RUNDIR_MAX + 32], why[512] = "";
    snprintf(dir, sizeof(dir), "%s/later", base);
    mode_t old = umask(0);
    int rv = rundir_client_url(url, sizeof(url), dir, "broker.ipc", why, sizeof(why));
    umask(old);
    assert_int_equal(rv, 0);
    /* Created now, so that nobody else can create it before the server does. */
    assert_int_equal(mode_of(dir), 0700);
    /* Without a parent there is nothing to connect to: passes, creates nothing. */
    snprintf(deep, sizeof(deep), "%s/no/such", base);
    assert_int_equal(rundir_client_url(url, sizeof(url), deep, "broker.ipc", why, sizeof(why)),
                     0);
    struct stat st;
    assert_int_not_equal(lstat(deep, &st), 0);
}

static void
test_default_url_reads_sluice_dir(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX], url[RUNDIR_MAX + 32], want[RUNDIR_MAX + 32], why[512] = "";
    snprintf(dir, sizeof(dir), "%s/env", base);
    snprintf(want, sizeof(want), "ipc://%s/pool.ipc", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    setenv("SLUICE_DIR", dir, 1);
    assert_int_equal(rundir_default_url(url, sizeof(url), "pool.ipc", why, sizeof(why)), 0);
    assert_string_equal(url, want);
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(rundir_default_url(url, sizeof(url), "pool.ipc", why, sizeof(why)),
                     SL_EFORBIDDEN);
    unsetenv("SLUICE_DIR");
}

static void
test_ensure_refuses_a_dir_of_nobody_open_to_all(void **state)
{
    (void)state;
    char dir[RUNDIR_MAX];
    snprintf(dir, sizeof(dir), "%s/squat", base);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    if (!give_away(dir)) {
        skip();
    }
    assert_int_equal(rundir_ensure(dir), SL_EIO);
    assert_int_equal(mode_of(dir), 0755); /* not ours to tighten */
}

/* --- rundir_ipc_url ------------------------------------------------------------------------ */

static void
test_ipc_url_joins_dir_and_name(void **state)
{
    (void)state;
    char out[RUNDIR_MAX + 32];
    assert_int_equal(rundir_ipc_url(out, sizeof(out), "/tmp/sluice-0", "broker.ipc"), 0);
    assert_string_equal(out, "ipc:///tmp/sluice-0/broker.ipc");
}

static void
test_ipc_url_allows_a_107_byte_socket_path_and_no_more(void **state)
{
    (void)state;
    char dir[128], out[RUNDIR_MAX + 32];
    /* dir + "/" + "broker.ipc" (10 bytes) = 107 bytes: the most sun_path holds. */
    memset(dir, 'd', sizeof(dir));
    dir[0] = '/';
    dir[96] = '\0';
    assert_int_equal(rundir_ipc_url(out, sizeof(out), dir, "broker.ipc"), 0);
    assert_int_equal(strlen(out), strlen("ipc://") + 107);
    dir[96] = 'd';
    dir[97] = '\0';
    assert_int_equal(rundir_ipc_url(out, sizeof(out), dir, "broker.ipc"), SL_EBADREQ);
}

static void
test_ipc_url_refuses_a_small_buffer(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(rundir_ipc_url(out, sizeof(out), "/tmp/sluice-0", "broker.ipc"), SL_EBADREQ);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_path_prefers_sluice_dir),
        T(test_path_falls_back_to_xdg_runtime_dir),
        T(test_path_falls_back_to_tmp_with_uid),
        T(test_path_drops_trailing_slashes),
        T(test_path_too_long_for_the_buffer_is_refused),
        T(test_default_reads_the_environment),
        T(test_ensure_creates_missing_dirs_0700),
        T(test_ensure_tightens_a_0755_dir),
        T(test_ensure_accepts_a_trailing_slash),
        T(test_ensure_refuses_a_file),
        T(test_ensure_refuses_a_path_under_a_file),
        T(test_ensure_refuses_a_symlink_to_a_dir),
        T(test_ensure_refuses_a_dir_owned_by_someone_else),
        T(test_ensure_refuses_empty_and_too_long_paths),
        T(test_check_accepts_a_private_dir_of_ours),
        T(test_check_reports_a_missing_dir),
        T(test_check_refuses_a_dir_open_to_others),
        T(test_check_accepts_a_dir_its_group_may_only_search),
        T(test_check_refuses_a_dir_owned_by_another_user),
        T(test_check_refuses_a_symlink_and_a_file),
        T(test_check_socket),
        T(test_client_url_checks_dir_and_socket),
        T(test_client_url_refuses_a_squatted_dir),
        T(test_client_url_makes_a_missing_dir_ours),
        T(test_default_url_reads_sluice_dir),
        T(test_ensure_refuses_a_dir_of_nobody_open_to_all),
        T(test_ipc_url_joins_dir_and_name),
        T(test_ipc_url_allows_a_107_byte_socket_path_and_no_more),
        T(test_ipc_url_refuses_a_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

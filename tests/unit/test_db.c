/* common/db: where the database is. db_cfg_parse (the mysql:// URL: port, password, %XX escapes,
 * ?socket=, every malformed form) and db_cfg_resolve (--db over SLUICE_DB over DB_*; DB_HOST as
 * host, host:port or a socket path; DB_PORT). The display string and every message are checked
 * never to hold the password. No server is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const env_vars[] = { "SLUICE_DB", "DB_HOST",     "DB_NAME",
                                        "DB_USER",   "DB_PASSWORD", "DB_PORT" };

/* Every test starts from an environment without a database. */
static int
clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
        unsetenv(env_vars[i]);
    }
    return 0;
}

/* Neither the display string nor the message of a failure holds the password pw, whole or
 * %-escaped as the URL had it. */
static void
assert_no_secret(const struct db_cfg *cfg, const char *why, const char *pw)
{
    if (cfg != NULL) {
        assert_null(strstr(cfg->display, pw));
    }
    if (why != NULL) {
        assert_null(strstr(why, pw));
    }
}

static bool
cfg_is_zero(const struct db_cfg *cfg)
{
    static const struct db_cfg zero;
    return memcmp(cfg, &zero, sizeof(zero)) == 0;
}

/* --- db_cfg_parse: good URLs ---------------------------------------------------------------- */

static void
test_parse_full_url_with_port(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256] = "";
    assert_int_equal(db_cfg_parse(&cfg, "mysql://app:Hq9-sEcr3t@db.example.org:3307/sluice", why,
                                  sizeof(why)),
                     0);
    assert_string_equal(cfg.user, "app");
    assert_string_equal(cfg.pass, "Hq9-sEcr3t");
    assert_string_equal(cfg.host, "db.example.org");
    assert_int_equal(cfg.port, 3307);
    assert_string_equal(cfg.name, "sluice");
    assert_string_equal(cfg.socket, "");
    assert_string_equal(cfg.display, "mysql://app:***@db.example.org:3307/sluice");
    assert_no_secret(&cfg, NULL, "Hq9-sEcr3t");
}

static void
test_parse_without_password_or_port(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    assert_int_equal(db_cfg_parse(&cfg, "mysql://app@10.0.0.5/jobs", why, sizeof(why)), 0);
    assert_string_equal(cfg.user, "app");
    assert_string_equal(cfg.pass, "");
    assert_string_equal(cfg.host, "10.0.0.5");
    assert_int_equal(cfg.port, 0);
    assert_string_equal(cfg.name, "jobs");
    assert_string_equal(cfg.display, "mysql://app@10.0.0.5/jobs");
}

static void
test_parse_empty_password_shows_none(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    assert_int_equal(db_cfg_parse(&cfg, "mysql://app:@h/d", why, sizeof(why)), 0);
    assert_string_equal(cfg.pass, "");
    assert_string_equal(cfg.display, "mysql://app@h/d");
}

static void
test_parse_escapes(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    /* user "ops team", password "p@ss:w/rd%" and database "my-db" escaped */
    assert_int_equal(db_cfg_parse(&cfg, "mysql://ops%20team:p%40ss%3Aw%2Frd%25@h:1/my%2ddb", why,
                                  sizeof(why)),
                     0);
    assert_string_equal(cfg.user, "ops team");
    assert_string_equal(cfg.pass, "p@ss:w/rd%");
    assert_string_equal(cfg.name, "my-db");
    assert_int_equal(cfg.port, 1);
    assert_string_equal(cfg.display, "mysql://ops team:***@h:1/my-db");
    assert_no_secret(&cfg, NULL, "p@ss:w/rd%");
    assert_no_secret(&cfg, NULL, "p%40ss%3Aw%2Frd%25");
    assert_no_secret(&cfg, NULL, "ss");
}

static void
test_parse_lowercase_and_uppercase_hex(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    assert_int_equal(db_cfg_parse(&cfg, "mysql://u:%3a%3A@h/d", why, sizeof(why)), 0);
    assert_string_equal(cfg.pass, "::");
}

static void
test_parse_raw_at_in_password_is_accepted(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    /* The credentials end at the last '@' before the path. */
    assert_int_equal(db_cfg_parse(&cfg, "mysql://u:Zk@7@host/d", why, sizeof(why)), 0);
    assert_string_equal(cfg.user, "u");
    assert_string_equal(cfg.pass, "Zk@7");
    assert_string_equal(cfg.host, "host");
    assert_no_secret(&cfg, NULL, "Zk@7");
}

static void
test_parse_raw_colon_in_password_is_accepted(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    /* The user ends at the first ':'. */
    assert_int_equal(db_cfg_parse(&cfg, "mysql://u:Qa:9x@host/d", why, sizeof(why)), 0);
    assert_string_equal(cfg.user, "u");
    assert_string_equal(cfg.pass, "Qa:9x");
    assert_no_secret(&cfg, NULL, "Qa:9x");
}

static void
test_parse_socket(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    const char *url = "mysql://app:Vv8-w0rd@localhost/sluice?socket=/run/my%20sql/mysqld.sock";
    assert_int_equal(db_cfg_parse(&cfg, url, why, sizeof(why)), 0);
    assert_string_equal(cfg.socket, "/run/my sql/mysqld.sock");
    assert_string_equal(cfg.name, "sluice");
    assert_string_equal(cfg.display,
                        "mysql://app:***@localhost/sluice?socket=/run/my sql/mysqld.sock");
    assert_no_secret(&cfg, NULL, "Vv8-w0rd");
}

static void
test_parse_socket_without_host(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    assert_int_equal(db_cfg_parse(&cfg, "mysql://app@/sluice?socket=/s.sock", why, sizeof(why)), 0);
    assert_string_equal(cfg.host, "");
    assert_string_equal(cfg.socket, "/s.sock");
    assert_string_equal(cfg.display, "mysql://app@localhost/sluice?socket=/s.sock");
}

static void
test_parse_port_bounds(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    assert_int_equal(db_cfg_parse(&cfg, "mysql://u@h:65535/d", why, sizeof(why)), 0);
    assert_int_equal(cfg.port, 65535);
    assert_int_equal(db_cfg_parse(&cfg, "mysql://u@h:00001/d", why, sizeof(why)), 0);
    assert_int_equal(cfg.port, 1);
}

/* --- db_cfg_parse: bad URLs ----------------------------------------------------------------- */

/* url is refused with a message containing want, holding no password (pw), and leaves cfg
 * zeroed: no half-parsed password behind. */
static void
refused(const char *url, const char *want, const char *pw)
{
    struct db_cfg cfg;
    char why[256] = "";
    memset(&cfg, 0x55, sizeof(cfg));
    int rv = db_cfg_parse(&cfg, url, why, sizeof(why));
    if (rv != -1) {
        fail_msg("'%s' was accepted", url);
    }
    if (strstr(why, want) == NULL) {
        fail_msg("'%s': the message '%s' does not say '%s'", url, why, want);
    }
    assert_no_secret(NULL, why, pw);
    assert_true(cfg_is_zero(&cfg));
}

static void
test_parse_refuses_a_missing_or_other_scheme(void **state)
{
    (void)state;
    refused("app:Yt4-pass@h/d", "starts with mysql://", "Yt4-pass");
    refused("postgres://app:Yt4-pass@h/d", "starts with mysql://", "Yt4-pass");
    refused("mysql:/app:Yt4-pass@h/d", "starts with mysql://", "Yt4-pass");
    refused("MYSQL://app:Yt4-pass@h/d", "starts with mysql://", "Yt4-pass");
    refused("", "starts with mysql://", "Yt4-pass");
}

static void
test_parse_refuses_no_user(void **state)
{
    (void)state;
    refused("mysql://h/d", "names no user", "Yt4-pass");
    refused("mysql://@h/d", "user is empty", "Yt4-pass");
    refused("mysql://:Yt4-pass@h/d", "user is empty", "Yt4-pass");
}

static void
test_parse_refuses_no_database(void **state)
{
    (void)state;
    refused("mysql://app:Yt4-pass@h", "names no database", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h/", "database name is empty", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h/?socket=/s", "database name is empty", "Yt4-pass");
}

static void
test_parse_refuses_no_host(void **state)
{
    (void)state;
    refused("mysql://app:Yt4-pass@/d", "names no host", "Yt4-pass");
    refused("mysql://app:Yt4-pass@:3306/d", "names no host", "Yt4-pass");
}

static void
test_parse_refuses_bad_ports(void **state)
{
    (void)state;
    refused("mysql://app:Yt4-pass@h:0/d", "port must be 1 to 65535", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h:65536/d", "port must be 1 to 65535", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h:abc/d", "port must be 1 to 65535", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h:/d", "port must be 1 to 65535", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h:-1/d", "port must be 1 to 65535", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h:330 6/d", "port must be 1 to 65535", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h:123456/d", "port must be 1 to 65535", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h:99999999999999999999/d", "port must be 1 to 65535",
            "Yt4-pass");
}

static void
test_parse_refuses_bad_escapes(void **state)
{
    (void)state;
    refused("mysql://app:Yt4-pass%4@h/d", "password is too long or badly escaped", "Yt4-pass");
    refused("mysql://app:Yt4-pass%@h/d", "password is too long or badly escaped", "Yt4-pass");
    refused("mysql://app:Yt4-pass%zz@h/d", "password is too long or badly escaped", "Yt4-pass");
    refused("mysql://app:Yt4-pass%00@h/d", "password is too long or badly escaped", "Yt4-pass");
    refused("mysql://a%4:Yt4-pass@h/d", "user is empty, too long or badly escaped", "Yt4-pass");
    refused("mysql://a%00b:Yt4-pass@h/d", "user is empty, too long or badly escaped", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h/d%4", "database name is empty, too long or badly escaped",
            "Yt4-pass");
    refused("mysql://app:Yt4-pass@h/d%00", "database name is empty, too long or badly escaped",
            "Yt4-pass");
    refused("mysql://app:Yt4-pass@h/d?socket=/s%4", "only option is ?socket=", "Yt4-pass");
}

static void
test_parse_refuses_unknown_options(void **state)
{
    (void)state;
    refused("mysql://app:Yt4-pass@h/d?ssl=1", "only option is ?socket=", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h/d?socket=", "only option is ?socket=", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h/d?", "only option is ?socket=", "Yt4-pass");
    refused("mysql://app:Yt4-pass@h/d?Socket=/s", "only option is ?socket=", "Yt4-pass");
}

static void
test_parse_refuses_fields_too_long(void **state)
{
    (void)state;
    char url[1200];
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(url, sizeof(url), "mysql://%s:Yt4-pass@h/d", big);
    refused(url, "user is empty, too long", "Yt4-pass");
    snprintf(url, sizeof(url), "mysql://u:Yt4-pass%s@h/d", big);
    refused(url, "password is too long", "Yt4-pass");
    snprintf(url, sizeof(url), "mysql://u:Yt4-pass@%s/d", big);
    refused(url, "host is too long", "Yt4-pass");
    snprintf(url, sizeof(url), "mysql://u:Yt4-pass@h/%s", big);
    refused(url, "database name is empty, too long", "Yt4-pass");
    snprintf(url, sizeof(url), "mysql://u:Yt4-pass@h/d?socket=/%s", big);
    refused(url, "only option is ?socket=", "Yt4-pass");
}

/* --- db_cfg_resolve ------------------------------------------------------------------------- */

static void
test_resolve_nothing_configured(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    memset(&cfg, 0x55, sizeof(cfg));
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 0);
    assert_true(cfg_is_zero(&cfg));
    assert_int_equal(db_cfg_resolve(&cfg, "", why, sizeof(why)), 0);
    setenv("SLUICE_DB", "", 1);
    setenv("DB_HOST", "", 1);
    setenv("DB_PASSWORD", "Rr5-unused", 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 0);
    assert_true(cfg_is_zero(&cfg));
}

static void
test_resolve_url_wins_over_sluice_db_and_db_vars(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    setenv("SLUICE_DB", "mysql://envuser:Ee1-env@envhost/envdb", 1);
    setenv("DB_HOST", "varhost", 1);
    setenv("DB_NAME", "vardb", 1);
    setenv("DB_USER", "varuser", 1);
    setenv("DB_PASSWORD", "Vv2-var", 1);
    assert_int_equal(db_cfg_resolve(&cfg, "mysql://flag:Ff3-flag@flaghost/flagdb", why,
                                    sizeof(why)),
                     1);
    assert_string_equal(cfg.user, "flag");
    assert_string_equal(cfg.pass, "Ff3-flag");
    assert_string_equal(cfg.display, "mysql://flag:***@flaghost/flagdb");
    assert_no_secret(&cfg, NULL, "Ff3-flag");
}

static void
test_resolve_sluice_db_wins_over_db_vars(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    setenv("SLUICE_DB", "mysql://envuser:Ee1-env@envhost:3310/envdb", 1);
    setenv("DB_HOST", "varhost", 1);
    setenv("DB_NAME", "vardb", 1);
    setenv("DB_USER", "varuser", 1);
    setenv("DB_PASSWORD", "Vv2-var", 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 1);
    assert_string_equal(cfg.user, "envuser");
    assert_string_equal(cfg.host, "envhost");
    assert_int_equal(cfg.port, 3310);
    assert_string_equal(cfg.display, "mysql://envuser:***@envhost:3310/envdb");
    assert_no_secret(&cfg, NULL, "Ee1-env");
    /* An empty --db is no --db. */
    assert_int_equal(db_cfg_resolve(&cfg, "", why, sizeof(why)), 1);
    assert_string_equal(cfg.user, "envuser");
}

static void
test_resolve_bad_sluice_db_is_refused_not_skipped(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256] = "";
    setenv("SLUICE_DB", "mysql://envuser:Ee1-env@envhost:0/envdb", 1);
    setenv("DB_HOST", "varhost", 1);
    setenv("DB_NAME", "vardb", 1);
    setenv("DB_USER", "varuser", 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "port"));
    assert_no_secret(NULL, why, "Ee1-env");
    assert_true(cfg_is_zero(&cfg));
}

static void
test_resolve_db_vars(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    setenv("DB_HOST", "db.internal", 1);
    setenv("DB_NAME", "sluice", 1);
    setenv("DB_USER", "broker", 1);
    /* Raw: the variables take no escapes. */
    setenv("DB_PASSWORD", "Dd4@x:%41", 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 1);
    assert_string_equal(cfg.host, "db.internal");
    assert_int_equal(cfg.port, 0);
    assert_string_equal(cfg.name, "sluice");
    assert_string_equal(cfg.user, "broker");
    assert_string_equal(cfg.pass, "Dd4@x:%41");
    assert_string_equal(cfg.socket, "");
    assert_string_equal(cfg.display, "mysql://broker:***@db.internal/sluice");
    assert_no_secret(&cfg, NULL, "Dd4@x:%41");
    assert_no_secret(&cfg, NULL, "Dd4");
}

static void
test_resolve_db_vars_without_password(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    setenv("DB_HOST", "h", 1);
    setenv("DB_NAME", "d", 1);
    setenv("DB_USER", "u", 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 1);
    assert_string_equal(cfg.pass, "");
    assert_string_equal(cfg.display, "mysql://u@h/d");
}

static void
test_resolve_db_host_with_port(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    setenv("DB_HOST", "db.internal:3308", 1);
    setenv("DB_NAME", "sluice", 1);
    setenv("DB_USER", "broker", 1);
    setenv("DB_PASSWORD", "Pp6-port", 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 1);
    assert_string_equal(cfg.host, "db.internal");
    assert_int_equal(cfg.port, 3308);
    assert_string_equal(cfg.display, "mysql://broker:***@db.internal:3308/sluice");
    assert_no_secret(&cfg, NULL, "Pp6-port");
}

static void
test_resolve_db_port(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    setenv("DB_HOST", "db.internal", 1);
    setenv("DB_NAME", "sluice", 1);
    setenv("DB_USER", "broker", 1);
    setenv("DB_PORT", "3309", 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 1);
    assert_string_equal(cfg.host, "db.internal");
    assert_int_equal(cfg.port, 3309);
    /* DB_PORT wins over a port in DB_HOST. */
    setenv("DB_HOST", "db.internal:3308", 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 1);
    assert_int_equal(cfg.port, 3309);
}

static void
test_resolve_db_host_socket_path(void **state)
{
    (void)state;
    struct db_cfg cfg;
    char why[256];
    /* A ':' in a socket path is part of the path, not a port. */
    setenv("DB_HOST", "/run/mysqld:a/mysqld.sock", 1);
    setenv("DB_NAME", "sluice", 1);
    setenv("DB_USER", "broker", 1);
    setenv("DB_PASSWORD", "Ss7-sock", 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 1);
    assert_string_equal(cfg.socket, "/run/mysqld:a/mysqld.sock");
    assert_string_equal(cfg.host, "");
    assert_string_equal(cfg.display,
                        "mysql://broker:***@localhost/sluice?socket=/run/mysqld:a/mysqld.sock");
    assert_no_secret(&cfg, NULL, "Ss7-sock");
}

/* DB_* set as given, refused with a message containing want, cfg zeroed, no password shown. */
static void
vars_refused(const char *host, const char *name, const char *user, const char *port,
             const char *want)
{
    struct db_cfg cfg;
    char why[256] = "";
    const char *vals[] = { host, name, user, port };
    const char *vars[] = { "DB_HOST", "DB_NAME", "DB_USER", "DB_PORT" };
    for (size_t i = 0; i < 4; i++) {
        if (vals[i] != NULL) {
            setenv(vars[i], vals[i], 1);
        } else {
            unsetenv(vars[i]);
        }
    }
    setenv("DB_PASSWORD", "Xx8-bad", 1);
    memset(&cfg, 0x55, sizeof(cfg));
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), -1);
    if (strstr(why, want) == NULL) {
        fail_msg("the message '%s' does not say '%s'", why, want);
    }
    assert_no_secret(NULL, why, "Xx8-bad");
    assert_true(cfg_is_zero(&cfg));
}

static void
test_resolve_refuses_bad_db_vars(void **state)
{
    (void)state;
    vars_refused("h", NULL, "u", NULL, "DB_NAME or DB_USER");
    vars_refused("h", "d", NULL, NULL, "DB_NAME or DB_USER");
    vars_refused("h", "", "u", NULL, "DB_NAME or DB_USER");
    vars_refused("h:0", "d", "u", NULL, "DB_HOST's port");
    vars_refused("h:65536", "d", "u", NULL, "DB_HOST's port");
    vars_refused("h:abc", "d", "u", NULL, "DB_HOST's port");
    vars_refused("h:", "d", "u", NULL, "DB_HOST's port");
    vars_refused("h", "d", "u", "0", "DB_PORT");
    vars_refused("h", "d", "u", "65536", "DB_PORT");
    vars_refused("h", "d", "u", "abc", "DB_PORT");
}

static void
test_resolve_refuses_db_vars_too_long(void **state)
{
    (void)state;
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    vars_refused(big, "d", "u", NULL, "DB_HOST is too long");
    vars_refused("h", big, "u", NULL, "DB_NAME is too long");
    vars_refused("h", "d", big, NULL, "DB_USER is too long");
    struct db_cfg cfg;
    char why[256] = "";
    setenv("DB_HOST", "h", 1);
    setenv("DB_NAME", "d", 1);
    setenv("DB_USER", "u", 1);
    setenv("DB_PASSWORD", big, 1);
    assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "DB_PASSWORD is too long"));
    assert_no_secret(NULL, why, "xxxxxxxx");
}

/* --- the password is never shown ------------------------------------------------------------ */

static void
test_display_never_holds_the_password(void **state)
{
    (void)state;
    /* Passwords that could be confused with the rest of a URL. */
    static const char *const pws[] = {
        "Gg9", "mysql", "***", "3306", "%2F%2F", "@@", "::", "?socket=", "Tt0/\\\"'",
    };
    /* Each URL is before + password + after. */
    static const char *const forms[][2] = {
        { "mysql://app:", "@h/d" },
        { "mysql://app:", "@h:3306/d" },
        { "mysql://app:", "@localhost/d?socket=/run/m.sock" },
    };
    for (size_t i = 0; i < sizeof(pws) / sizeof(pws[0]); i++) {
        char esc[64] = "";
        /* Every byte escaped: whatever the password, the URL carries it. */
        for (const char *p = pws[i]; *p != '\0'; p++) {
            char hex[4];
            snprintf(hex, sizeof(hex), "%%%02X", (unsigned char)*p);
            strcat(esc, hex);
        }
        for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
            struct db_cfg cfg;
            char url[256], why[256];
            snprintf(url, sizeof(url), "%s%s%s", forms[f][0], esc, forms[f][1]);
            assert_int_equal(db_cfg_parse(&cfg, url, why, sizeof(why)), 0);
            assert_string_equal(cfg.pass, pws[i]);
            /* The display is the URL with the password replaced by "***". */
            char want[256];
            snprintf(want, sizeof(want), "%s***%s", forms[f][0], forms[f][1]);
            assert_string_equal(cfg.display, want);
            /* ...unless the password is itself a part of every such URL ("mysql", "***"). */
            if (strstr(want, pws[i]) == NULL) {
                assert_no_secret(&cfg, NULL, pws[i]);
            }
            assert_no_secret(&cfg, NULL, esc);
        }
        /* The same password through DB_PASSWORD. */
        struct db_cfg cfg;
        char why[256];
        setenv("DB_HOST", "dbhost", 1);
        setenv("DB_NAME", "d", 1);
        setenv("DB_USER", "app", 1);
        setenv("DB_PASSWORD", pws[i], 1);
        assert_int_equal(db_cfg_resolve(&cfg, NULL, why, sizeof(why)), 1);
        assert_string_equal(cfg.display, "mysql://app:***@dbhost/d");
    }
}

#define T(f) cmocka_unit_test_setup(f, clear_env)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_parse_full_url_with_port),
        T(test_parse_without_password_or_port),
        T(test_parse_empty_password_shows_none),
        T(test_parse_escapes),
        T(test_parse_lowercase_and_uppercase_hex),
        T(test_parse_raw_at_in_password_is_accepted),
        T(test_parse_raw_colon_in_password_is_accepted),
        T(test_parse_socket),
        T(test_parse_socket_without_host),
        T(test_parse_port_bounds),
        T(test_parse_refuses_a_missing_or_other_scheme),
        T(test_parse_refuses_no_user),
        T(test_parse_refuses_no_database),
        T(test_parse_refuses_no_host),
        T(test_parse_refuses_bad_ports),
        T(test_parse_refuses_bad_escapes),
        T(test_parse_refuses_unknown_options),
        T(test_parse_refuses_fields_too_long),
        T(test_resolve_nothing_configured),
        T(test_resolve_url_wins_over_sluice_db_and_db_vars),
        T(test_resolve_sluice_db_wins_over_db_vars),
        T(test_resolve_bad_sluice_db_is_refused_not_skipped),
        T(test_resolve_db_vars),
        T(test_resolve_db_vars_without_password),
        T(test_resolve_db_host_with_port),
        T(test_resolve_db_port),
        T(test_resolve_db_host_socket_path),
        T(test_resolve_refuses_bad_db_vars),
        T(test_resolve_refuses_db_vars_too_long),
        T(test_display_never_holds_the_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* ctl stats --watch: the live view's loop. Every interval it asks the broker for stats, feeds
 * the reply to the model (watch.c) and shows the lines the model lays out: full screen with
 * ncurses on a terminal, or as plain text snapshots (--plain, or stdout not a terminal).
 *
 * The broker going away is not an error: the view keeps the last data, marks it stale, says so
 * on screen, and keeps asking; the client reconnects by itself when the broker is back.
 * Nothing is written to stderr while the screen is ncurses'.
 *
 * Signals: SIGINT and SIGTERM only set a flag (installed before ncurses starts, so it leaves
 * them alone); the loop then restores the terminal and exits 0. SIGWINCH is ncurses' own: it
 * turns into KEY_RESIZE. */
#include "ctl.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "watch_render.h"

#include <curses.h>
#include <errno.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define WAIT_SLICE_MS 250 /* how long the loop waits at most before looking at the stop flag */
#define STALE_TIMEOUT_MS 1000 /* a request's limit while the broker is away (see fetch) */

static volatile sig_atomic_t stop_flag;

static void
on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* No SA_RESTART: a wait in poll or getch ends at once, and the loop sees the flag. */
static void
install_stop(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Connects ctl's client (NULL before) within timeout_ms, carrying --token-file's token.
 * Returns client_open's result. */
static int
open_client(struct ctl *ctl, uint64_t timeout_ms)
{
    int rv = client_open(&ctl->cl, ctl->url, timeout_ms);
    if (rv == 0) {
        client_set_token(ctl->cl, &ctl->token);
    } else {
        ctl->cl = NULL;
    }
    return rv;
}

/* Asks for stats and feeds the reply to w, or marks w stale saying why. */
static void
fetch(struct ctl *ctl, struct watch *w)
{
    struct wire_msg req;
    struct sl_str msg;
    char why[WATCH_TEXT_CAP];
    int rv;
    /* The screen answers no key while a request waits: once the broker is known to be away,
     * wait less for it (a broker that is back answers in milliseconds). */
    uint64_t timeout_ms = w->stale && ctl->timeout_ms > STALE_TIMEOUT_MS ? STALE_TIMEOUT_MS
                                                                          : ctl->timeout_ms;

    if (ctl->cl == NULL) {
        /* Not connected yet (the broker was not there): one more try, within the timeout. */
        rv = open_client(ctl, timeout_ms);
        if (rv != 0) {
            watch_unreachable(w, "no connection", clock_mono_ns());
            return;
        }
    }
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "stats");
    rv = client_call(ctl->cl, &req, &ctl->rep, timeout_ms);
    switch (rv) {
    case 0:
        break;
    case SL_ETIMEDOUT:
        snprintf(why, sizeof(why), "no reply within %" PRIu64 " ms", timeout_ms);
        watch_unreachable(w, why, clock_mono_ns());
        return;
    case SL_EBADREQ:
        watch_unusable(w, "not a sluice message", clock_mono_ns());
        return;
    default:
        watch_unreachable(w, "the connection is lost", clock_mono_ns());
        return;
    }
    if ((rv = client_reply_err(&ctl->rep, &msg)) != 0) {
        snprintf(why, sizeof(why), "stats refused: %s", sl_err_code(rv));
        watch_unusable(w, why, clock_mono_ns());
        return;
    }
    if ((rv = watch_update(w, &ctl->rep.up.data, clock_mono_ns())) != 0) {
        watch_unusable(w, rv == SL_ENOMEM ? "out of memory" : "not a map", clock_mono_ns());
    }
}

/* --- plain text ------------------------------------------------------------------------ */

static unsigned
tty_width(int fd)
{
    struct winsize ws;
    return ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 0;
}

static int
run_plain(struct ctl *ctl, struct watch *w)
{
    struct watch_lines lines;
    int rv = 0;

    watch_lines_init(&lines);
    while (!stop_flag) {
        int64_t start = clock_mono_ns();
        fetch(ctl, w);
        if (stop_flag) {
            break;
        }
        if (watch_render(w, tty_width(STDOUT_FILENO), 0, false, clock_mono_ns(), &lines) != 0) {
            fprintf(stderr, "ctl: out of memory laying out the view\n");
            rv = CTL_EXIT_FAILED;
            break;
        }
        time_t now = time(NULL);
        struct tm tm;
        char when[32] = "";
        if (localtime_r(&now, &tm) != NULL) {
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        }
        printf("=== %s ===\n", when);
        for (size_t i = 0; i < lines.n; i++) {
            fputs(lines.v[i].text, stdout);
            fputc('\n', stdout);
        }
        fputc('\n', stdout);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "ctl: cannot write to stdout\n");
            rv = CTL_EXIT_FAILED;
            break;
        }
        int64_t next = start + (int64_t)w->interval_ms * 1000000;
        for (int64_t left; !stop_flag && (left = next - clock_mono_ns()) > 0;) {
            int ms = (int)(left / 1000000) + 1;
            poll(NULL, 0, ms < WAIT_SLICE_MS ? ms : WAIT_SLICE_MS);
        }
    }
    watch_lines_fini(&lines);
    return rv;
}

/* --- the full screen ------------------------------------------------------------------- */

static void
draw(const struct watch *w, struct watch_lines *lines)
{
    unsigned width = COLS > 0 ? (unsigned)COLS : 1, height = LINES > 0 ? (unsigned)LINES : 1;

    erase();
    if (watch_render(w, width, height, true, clock_mono_ns(), lines) != 0) {
        mvaddstr(0, 0, "out of memory");
        refresh();
        return;
    }
    for (size_t i = 0; i < lines->n; i++) {
        const struct watch_line *l = &lines->v[i];
        int row = l->kind == WATCH_LINE_FOOTER ? (int)height - 1 : (int)i;
        int attr = A_NORMAL;
        switch (l->kind) {
        case WATCH_LINE_TITLE: attr = A_BOLD; break;
        case WATCH_LINE_HEADER: attr = A_REVERSE; break;
        case WATCH_LINE_NOTICE: attr = A_BOLD | A_STANDOUT; break;
        case WATCH_LINE_FOOTER: attr = A_DIM; break;
        case WATCH_LINE_TEXT: break;
        }
        attrset(attr);
        /* A line is at most COLS wide; one that fills the last row's last cell makes curses
         * report an error after drawing it, which changes nothing. */
        mvaddstr(row, 0, l->text);
    }
    attrset(A_NORMAL);
    refresh();
}

static int
run_screen(struct ctl *ctl, struct watch *w)
{
    struct watch_lines lines;
    SCREEN *scr = newterm(NULL, stdout, stdin);
    enum watch_sort sort;

    if (scr == NULL) {
        const char *term = getenv("TERM");
        fprintf(stderr, "ctl: cannot drive the terminal (TERM=%s): use --plain\n",
                term != NULL ? term : "");
        return CTL_EXIT_FAILED;
    }
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    watch_lines_init(&lines);

    int64_t next = clock_mono_ns();
    bool dirty = true;
    while (!stop_flag) {
        int64_t now = clock_mono_ns();
        if (now >= next) {
            fetch(ctl, w);
            next = now + (int64_t)w->interval_ms * 1000000;
            dirty = true;
        }
        if (stop_flag) {
            break;
        }
        if (dirty) {
            draw(w, &lines);
            dirty = false;
        }
        int64_t left_ms = (next - clock_mono_ns()) / 1000000;
        timeout(left_ms <= 0 ? 0 : left_ms > WAIT_SLICE_MS ? WAIT_SLICE_MS : (int)left_ms);
        int ch = getch();
        if (ch == ERR) {
            continue;
        }
        if (ch == 'q' || ch == 'Q') {
            break;
        }
        if (ch == KEY_RESIZE || ch == 12 /* Ctrl-L */) {
            clearok(curscr, TRUE);
            dirty = true;
        } else if (watch_sort_key(ch, &sort)) {
            watch_set_sort(w, sort);
            dirty = true;
        }
    }
    watch_lines_fini(&lines);
    endwin();
    delscreen(scr);
    return 0;
}

int
watch_tui_run(struct ctl *ctl, uint64_t interval_ms, bool plain)
{
    struct watch w;
    int rv;

    /* A first connection, so that an address that can never work is a usage error before the
     * screen changes; a broker that is not there yet is waited for on screen. */
    if ((rv = ctl_trust(ctl)) != 0) {
        return rv;
    }
    rv = open_client(ctl, ctl->timeout_ms);
    if (rv == SL_EBADREQ) {
        fprintf(stderr, "ctl: '%s' is not a valid address for the broker (e.g. "
                        "ipc:///path/broker.ipc, tcp://host:port)\n", ctl->url);
        return CTL_EXIT_USAGE;
    }
    install_stop();
    setlocale(LC_ALL, "");
    const char *cs = nl_langinfo(CODESET);
    watch_init(&w, ctl->url, interval_ms, cs != NULL && strcmp(cs, "UTF-8") == 0);
    if (rv != 0) {
        watch_unreachable(&w, "no connection", clock_mono_ns());
    }
    /* What the client would log (a bad reply, ...) the view says itself; on the full screen a
     * line on stderr would scribble over it. */
    log_level = LOG_OFF;
    if (plain || !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
        rv = run_plain(ctl, &w);
    } else {
        rv = run_screen(ctl, &w);
    }
    watch_fini(&w);
    return rv;
}

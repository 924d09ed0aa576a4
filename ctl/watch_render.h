/* ctl stats --watch, the screen: the model (watch.h) laid out as lines of text for a given
 * width and height (watch_layout.h), and the groups' sparklines. No terminal I/O here (that
 * is watch_tui.c), so the screen can be unit tested.
 *
 * Single-threaded. */
#ifndef SLUICE_CTL_WATCH_RENDER_H
#define SLUICE_CTL_WATCH_RENDER_H

#include "watch.h"
#include "watch_layout.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Draws the last width samples of v[0..n) (oldest first, jobs/s) as a sparkline into out
 * (NUL-terminated, cut to cap), scaled to the largest of them: 0 is a blank, the largest the
 * full block. utf8: eight block glyphs (3 bytes each), else the ASCII ramp "._-~=+*#". Fewer
 * samples than width leave blanks on the left. */
void watch_spark(const double *v, size_t n, unsigned width, bool utf8, char *out, size_t cap);

/* Lays the view out into out (emptied first): the broker's lines, the notice when stale, the
 * workers, queues and groups tables, the router and its decisions, and (footer) the keys as
 * the last line. width 0: lines are not cut; height 0: every row is shown. Otherwise no line
 * is wider than width columns and there are at most height lines: tables that do not fit lose
 * rows (their last visible row says how many are hidden), then the columns that do not fit
 * are dropped, right to left. now_ns (monotonic) ages the stale mark. Returns 0 or
 * SL_ENOMEM. */
int watch_render(const struct watch *w, unsigned width, unsigned height, bool footer,
                 int64_t now_ns, struct watch_lines *out);

#endif

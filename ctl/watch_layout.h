/* ctl stats --watch, laying text out: lines tagged with what they are (so the terminal code
 * can style them), and tables whose columns are sized to their cells and fitted to a width.
 * Text is UTF-8 and counted in terminal columns (one per character: the view shows only
 * printable ASCII and the sparkline's block glyphs). No terminal I/O here.
 *
 * Single-threaded. */
#ifndef SLUICE_CTL_WATCH_LAYOUT_H
#define SLUICE_CTL_WATCH_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

#define WATCH_GRID_COLS 12 /* columns of a table at most */

enum watch_line_kind {
    WATCH_LINE_TEXT,   /* a table row, a broker line */
    WATCH_LINE_TITLE,  /* a section's title */
    WATCH_LINE_HEADER, /* a table's column titles */
    WATCH_LINE_NOTICE, /* the broker is unreachable */
    WATCH_LINE_FOOTER, /* the keys */
};

struct watch_line {
    enum watch_line_kind kind;
    char *text;        /* NUL-terminated; at most the render's width in terminal columns */
};

struct watch_lines {
    struct watch_line *v;
    size_t n, cap;
};

void watch_lines_init(struct watch_lines *l);
/* Frees every line (keeps nothing). */
void watch_lines_fini(struct watch_lines *l);
/* Frees every line, keeping the array for the next ones. */
void watch_lines_clear(struct watch_lines *l);

/* Appends a copy of s, cut to width columns (0: not cut) and without trailing blanks.
 * Returns 0 or SL_ENOMEM (l unchanged). */
int watch_lines_add(struct watch_lines *l, enum watch_line_kind kind, const char *s,
                    unsigned width);
/* As watch_lines_add, the text formatted (cut at 1 KiB). */
int watch_lines_addf(struct watch_lines *l, enum watch_line_kind kind, unsigned width,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Moves line i of from (its text is NULL afterwards) to the end of to. Returns 0 or
 * SL_ENOMEM (both unchanged). */
int watch_lines_take(struct watch_lines *to, struct watch_lines *from, size_t i);

/* The number of terminal columns of UTF-8 text s (every byte but continuation bytes is one). */
size_t watch_text_cols(const char *s);

/* A table being laid out: cells are copies, row-major. */
struct watch_grid {
    unsigned ncols;
    const char *title[WATCH_GRID_COLS]; /* borrowed: static text */
    bool right[WATCH_GRID_COLS];   /* numbers: aligned right */
    bool elastic[WATCH_GRID_COLS]; /* takes what width is left, keeps its right end when cut */
    char **cells;
    size_t ncells, cap;
    bool nomem;                    /* a cell could not be kept: rendering fails */
};

void watch_grid_init(struct watch_grid *g);
void watch_grid_fini(struct watch_grid *g);
/* Adds a column (at most WATCH_GRID_COLS) before the first cell. A text column wider than 32
 * columns is cut (its last column '~'); an elastic one (the last, in practice) takes what
 * width is left and keeps the right end of its cells. */
void watch_grid_col(struct watch_grid *g, const char *title, bool right, bool elastic);
/* Appends a copy of s as the next cell, row by row. Without memory marks g (see nomem). */
void watch_grid_cell(struct watch_grid *g, const char *s);
/* Lays g out at width (0: unlimited) into out: a header line, then one line per row. Columns
 * that do not fit are dropped, right to left (the first one is cut instead). Returns 0 or
 * SL_ENOMEM. */
int watch_grid_render(const struct watch_grid *g, unsigned width, struct watch_lines *out);

#endif

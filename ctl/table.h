/* Text tables with aligned columns, for people (scripts use --json). Cells are collected row by
 * row and printed once every width is known. Cell text is kept as given and written
 * terminal-safe (json_write_text), so cells may hold any bytes the broker sent. */
#ifndef SLUICE_CTL_TABLE_H
#define SLUICE_CTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TABLE_COLS_MAX 16

struct table_cell {
    size_t off; /* into text */
    size_t len;
};

struct table {
    unsigned ncols;
    const char *title[TABLE_COLS_MAX]; /* borrowed; static strings */
    bool right[TABLE_COLS_MAX];        /* right-aligned (numbers) */
    char *text;                        /* every cell's bytes, back to back */
    size_t len, cap;
    struct table_cell *cells;          /* row-major: cell i is row i / ncols, column i % ncols */
    size_t ncells, capcells;
    bool nomem;                        /* an append failed; table_print reports it */
};

void table_init(struct table *t);
void table_fini(struct table *t);

/* Adds a column; all columns come before the first cell. Extra columns are ignored. */
void table_col(struct table *t, const char *title, bool right);

/* Appends one cell (copied) to the current row; rows wrap after the last column. On allocation
 * failure the table remembers it and table_print fails. */
void table_cell(struct table *t, const char *p, size_t n);
void table_cellf(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Rows with at least one cell. */
size_t table_rows(const struct table *t);

/* Writes the title line and every row, columns separated by two spaces. Returns 0, or
 * SL_ENOMEM when a cell could not be stored (nothing is written then). */
int table_print(const struct table *t, FILE *f);

#endif

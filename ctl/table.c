#include "table.h"

#include "err.h"
#include "json.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_GAP 2 /* spaces between columns */

void
table_init(struct table *t)
{
    memset(t, 0, sizeof(*t));
}

void
table_fini(struct table *t)
{
    free(t->text);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

void
table_col(struct table *t, const char *title, bool right)
{
    if (t->ncols < TABLE_COLS_MAX) {
        t->title[t->ncols] = title;
        t->right[t->ncols] = right;
        t->ncols++;
    }
}

/* p grown to hold need elements of elem bytes (doubling), or NULL with p and *cap unchanged. */
static void *
grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return p;
    }
    size_t c = *cap > 0 ? *cap : 64;
    while (c < need) {
        c *= 2;
    }
    void *q = realloc(p, c * elem);
    if (q != NULL) {
        *cap = c;
    }
    return q;
}

void
table_cell(struct table *t, const char *p, size_t n)
{
    if (t->nomem || t->ncols == 0) {
        return;
    }
    char *text = grow(t->text, &t->cap, t->len + n, 1);
    if (text == NULL) {
        t->nomem = true;
        return;
    }
    t->text = text;
    struct table_cell *cells = grow(t->cells, &t->capcells, t->ncells + 1, sizeof(*cells));
    if (cells == NULL) {
        t->nomem = true;
        return;
    }
    t->cells = cells;
    if (n > 0) {
        memcpy(t->text + t->len, p, n);
    }
    t->cells[t->ncells++] = (struct table_cell){ t->len, n };
    t->len += n;
}

void
table_cellf(struct table *t, const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    table_cell(t, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

size_t
table_rows(const struct table *t)
{
    return t->ncols == 0 ? 0 : (t->ncells + t->ncols - 1) / t->ncols;
}

static void
pad(FILE *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputc(' ', f);
    }
}

/* Writes one line: the n cells (text, width) of a row, aligned to widths. */
static void
print_row(const struct table *t, FILE *f, const char *const *p, const size_t *len,
          const size_t *width)
{
    for (unsigned c = 0; c < t->ncols; c++) {
        size_t w = json_text_width(p[c], len[c]);
        size_t fill = width[c] > w ? width[c] - w : 0;
        bool last = c + 1 == t->ncols;
        if (t->right[c]) {
            pad(f, fill);
        }
        json_write_text(f, p[c], len[c]);
        if (!t->right[c] && !last) {
            pad(f, fill);
        }
        if (!last) {
            pad(f, TABLE_GAP);
        }
    }
    fputc('\n', f);
}

int
table_print(const struct table *t, FILE *f)
{
    size_t width[TABLE_COLS_MAX] = { 0 };
    const char *p[TABLE_COLS_MAX];
    size_t len[TABLE_COLS_MAX];

    if (t->nomem) {
        return SL_ENOMEM;
    }
    for (unsigned c = 0; c < t->ncols; c++) {
        width[c] = strlen(t->title[c]);
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t w = json_text_width(t->text + t->cells[i].off, t->cells[i].len);
        unsigned c = (unsigned)(i % t->ncols);
        if (w > width[c]) {
            width[c] = w;
        }
    }
    for (unsigned c = 0; c < t->ncols; c++) {
        p[c] = t->title[c];
        len[c] = strlen(t->title[c]);
    }
    print_row(t, f, p, len, width);
    size_t rows = table_rows(t);
    for (size_t r = 0; r < rows; r++) {
        for (unsigned c = 0; c < t->ncols; c++) {
            size_t i = r * t->ncols + c;
            p[c] = i < t->ncells ? t->text + t->cells[i].off : "";
            len[c] = i < t->ncells ? t->cells[i].len : 0;
        }
        print_row(t, f, p, len, width);
    }
    return 0;
}

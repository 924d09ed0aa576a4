/* Writing untrusted bytes from the broker out safely: msgpack objects as JSON text, and strings
 * as terminal-safe text for tables and messages.
 *
 * JSON mapping (RFC 8259):
 *   nil -> null; bool -> true/false; integers -> decimal; floats -> %.17g (NaN and infinities,
 *   which JSON cannot express, -> null); str -> a JSON string; array -> array; map -> object.
 *   bin -> a JSON string of its bytes, escaped exactly as a str: sluice payloads are usually text,
 *   and a string keeps them readable. This is lossy for bytes that are not UTF-8 (see below).
 *   ext -> null (the protocol uses no ext types).
 *   A map key that is not a str is written as a string holding its JSON text (5 -> "5").
 * String escaping: '"' and '\' as \" and \\; control characters as \b \f \n \r \t or \u00XX;
 *   DEL as \u007f; valid UTF-8 sequences are copied unchanged; every byte that is not part of a
 *   valid UTF-8 sequence (stray continuation bytes, overlong forms, surrogates, > U+10FFFF,
 *   truncated sequences) is written as \u00XX, i.e. read as the Latin-1 character of that byte.
 *   So the output is always valid UTF-8 JSON, but the byte 0xE9 and the character U+00E9 come
 *   out the same. */
#ifndef SLUICE_CTL_JSON_H
#define SLUICE_CTL_JSON_H

#include <msgpack.h>
#include <stddef.h>
#include <stdio.h>

/* Writes o as JSON text to f (no newline). Nesting is bounded by the wire's depth limit, which
 * every decoded reply obeys; deeper input is written as null. Returns 0, or SL_EIO when f
 * reports a write error. */
int json_write(FILE *f, const msgpack_object *o);

/* Writes the n bytes at p as a quoted JSON string, escaped as described above. */
void json_write_str(FILE *f, const char *p, size_t n);

/* Writes the n bytes at p for a terminal, without quotes: valid printable UTF-8 unchanged;
 * control characters, DEL, C1 controls (U+0080-U+009F) and invalid bytes as \xHH, so text from
 * the broker can never move the cursor or inject escape sequences. */
void json_write_text(FILE *f, const char *p, size_t n);

/* The number of terminal columns json_write_text takes for the same bytes (one per character;
 * wide characters are counted as one). */
size_t json_text_width(const char *p, size_t n);

#endif

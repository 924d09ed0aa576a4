/* The on-disk format of the broker's journal: append-only segment files of framed records.
 * This module knows nothing of what a record means; the journal above it packs and unpacks
 * them, and translates the errno values returned here into SL_E* codes.
 *
 * A segment is "<dir>/<seq as 16 lowercase hex digits>.seg":
 *     header  16 bytes   "SLUICEJ1" (magic and format version), seq uint64 little-endian
 *     frames  repeated   length uint32 LE, CRC-32C uint32 LE of (the 4 length bytes, payload),
 *                        then the payload (1..JF_RECORD_MAX bytes)
 * To change the layout, give it a new magic ("SLUICEJ2") and keep a reader for every older
 * one: segments written by an older broker must still replay.
 *
 * Functions that touch the disk block on it (jf_create and jf_truncate wait for fsync); call
 * them from any thread, never while holding the broker's mutex. A jf_reader belongs to one
 * thread at a time. */
#ifndef SLUICE_JFILE_H
#define SLUICE_JFILE_H

#include <stddef.h>
#include <stdint.h>

#define JF_HEADER_SIZE 16u
#define JF_FRAME_SIZE 8u           /* bytes before each record's payload */
#define JF_RECORD_MAX (256u << 20) /* largest payload accepted when reading */

/* CRC-32C (Castagnoli, reflected, poly 0x82F63B78), as used by iSCSI/ext4: crc is the running
 * value (0 to start); jf_crc32c(0, "123456789", 9) == 0xE3069283, and
 * jf_crc32c(jf_crc32c(0, a, na), b, nb) is the CRC of a followed by b. Software slice-by-8;
 * its tables are built once under pthread_once, so any thread may call it. */
uint32_t jf_crc32c(uint32_t crc, const void *p, size_t n);

/* Writes the 8-byte frame header for payload[0..n): bytes 0-3 n as uint32 little-endian,
 * bytes 4-7 the CRC-32C of those 4 length bytes followed by the payload, little-endian.
 * The caller writes hdr then the payload; a reader accepts only 1 <= n <= JF_RECORD_MAX. */
void jf_frame(uint8_t hdr[JF_FRAME_SIZE], const void *payload, uint32_t n);

/* Segment file name for seq in dir: "<dir>/<seq as 16 lowercase hex digits>.seg". Returns 0,
 * or -1 if it does not fit in cap. */
int jf_path(char *out, size_t cap, const char *dir, uint64_t seq);

/* The segment numbers present in dir (files named exactly 16 lowercase hex digits + ".seg";
 * anything else is ignored), ascending, in a malloc'd array (*seqs, free() it; NULL when
 * *n == 0). Returns 0 or an errno value (*seqs and *n are written only on success). */
int jf_list(const char *dir, uint64_t **seqs, size_t *n);

/* Creates segment seq in dir: writes its 16-byte header (bytes 0-7 the magic "SLUICEJ1", bytes
 * 8-15 seq uint64 little-endian) to "<dir>/<seq as 16 hex digits>.seg.tmp" (mode 0600, a
 * leftover of that name replaced), fdatasync()s it, links it to the segment's name and
 * removes the temporary name, then fsync()s the directory. A crash at any point leaves no
 * segment shorter than its header: at most a temporary file, which jf_remove_temps deletes.
 * *fd is left open for appending (O_WRONLY|O_CLOEXEC, its offset after the header); the
 * caller closes it. Returns 0 or an errno value: EEXIST when the segment already exists (it
 * is left as it was). On failure *fd is not written and no file is left behind. */
int jf_create(const char *dir, uint64_t seq, int *fd);

/* Deletes the temporary files jf_create leaves when it is interrupted (names of 16 lowercase
 * hex digits + ".seg.tmp"; nothing else is touched). Call before anything creates a segment
 * in dir. *removed gets how many went. Returns 0 or an errno value (*removed then unwritten;
 * some may have gone). */
int jf_remove_temps(const char *dir, size_t *removed);

/* Reading a segment. The whole file is read into memory, so records stay valid until
 * jf_close. */
struct jf_reader {
    const uint8_t *data;   /* the file's bytes */
    size_t size;
    size_t off;            /* offset of the next record's frame */
    uint64_t seq;          /* from the header */
    size_t bad_off;        /* JF_TORN / JF_CORRUPT: where the bad bytes start */
    size_t bad_len;        /* JF_TORN: bytes from bad_off to the end of the file;
                              JF_CORRUPT: bytes from bad_off to the next valid frame */
    /* private to jfile.c */
    uint8_t *buf;          /* owns data */
    int verdict;           /* 0, or the JF_TORN / JF_CORRUPT every later jf_next returns */
};

/* Opens path. Checks the header: magic and, if expect_seq != UINT64_MAX, that the header's
 * seq equals expect_seq. Returns 0; or an errno value with why (a sentence naming the file
 * and what is wrong: "bad magic", "seq 5 in a file named 0000000000000004.seg", "shorter than
 * its header") filled in; a short or bad header is EINVAL. why may be NULL or cap 0. On
 * success r->off is JF_HEADER_SIZE and r must be given to jf_close; on failure *r is not
 * written and nothing is held. */
int jf_open(struct jf_reader *r, const char *path, uint64_t expect_seq, char *why, size_t cap);

enum jf_next {
    JF_RECORD,   /* *payload and *n are the next record (pointing into r->data) */
    JF_END,      /* clean end of file */
    JF_TORN,     /* from r->bad_off on the file holds no valid record: a torn last write or
                    garbage appended. bad_len bytes would be cut. */
    JF_CORRUPT,  /* the record at r->bad_off is bad (length past the end, or CRC mismatch) but a
                    valid record exists later in the file: damage in the middle */
};

/* The next record. A frame is valid when 1 <= length <= JF_RECORD_MAX, the payload fits in
 * the file, and the CRC matches. When a frame at offset X is not valid, decide between TORN
 * and CORRUPT like this: if its length field is plausible and a valid frame starts exactly
 * at X + 8 + length, it is CORRUPT (a damaged record in the middle); else scan forward byte
 * by byte from X + 1 for any valid frame (check the length bounds first, the CRC only when
 * they pass); if one is found, CORRUPT, else TORN. After TORN or CORRUPT, further calls
 * return the same verdict. *payload and *n are written only for JF_RECORD. Damage to the
 * last record reads as JF_TORN: nothing after it tells it from a torn write. */
enum jf_next jf_next(struct jf_reader *r, const uint8_t **payload, uint32_t *n);

/* Frees what jf_open read; every payload pointer into r->data dies. */
void jf_close(struct jf_reader *r);

/* Cuts the file at path to off bytes and fdatasync()s it. Returns 0 or an errno value:
 * EINVAL when off is past the file's end (the file is never grown). */
int jf_truncate(const char *path, uint64_t off);

#endif

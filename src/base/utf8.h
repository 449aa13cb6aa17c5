/*
 * utf8.h - UTF-8 decoding and validation (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF).
 */
#ifndef BASE_UTF8_H
#define BASE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point from s (n bytes available). On success stores it in
 * *cp and returns its length (1-4); on an invalid or truncated sequence
 * returns 0 and stores U+FFFD. */
size_t utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Encodes cp (<= 0x10FFFF) into out (4 bytes room); returns the length, or 0
 * for an invalid code point. */
size_t utf8_encode(uint32_t cp, char *out);
/* Length of the one valid character at s, or 0 if s does not start with one. */
size_t utf8_valid_prefix_len(const char *s, size_t n);
/* 1 if all n bytes are valid UTF-8. */
int utf8_valid(const char *s, size_t n);
/* Expected length of a sequence from its lead byte (1-4), 0 for a
 * continuation or invalid lead byte. */
size_t utf8_seq_len(unsigned char lead);
/* Number of bytes at the end of s[0..n) that form an incomplete (but so far
 * valid) sequence: 0 when s ends on a character boundary. Used by streaming
 * detokenizers to hold back half characters. */
size_t utf8_incomplete_tail(const char *s, size_t n);

#endif

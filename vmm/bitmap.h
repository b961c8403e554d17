/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Page bitmaps: one bit per guest RAM page, indexed by the page's position
 * in the RAM mapping (see ram.h).  The dirty bitmap, the "to send" bitmap
 * and, on the destination, the received bitmap are all of this kind.
 * Not thread-safe except bitmap_set_atomic().
 */
#ifndef VMM_BITMAP_H
#define VMM_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

#define BITS_PER_WORD 64

struct bitmap {
	uint64_t *words;
	uint64_t nbits;
};

/* Allocate @nbits zeroed bits; 0 or -ENOMEM. */
int bitmap_init(struct bitmap *b, uint64_t nbits);
void bitmap_destroy(struct bitmap *b);

static inline bool bitmap_test(const struct bitmap *b, uint64_t i)
{
	return b->words[i / BITS_PER_WORD] >> (i % BITS_PER_WORD) & 1;
}

static inline void bitmap_set(struct bitmap *b, uint64_t i)
{
	b->words[i / BITS_PER_WORD] |= 1ULL << (i % BITS_PER_WORD);
}

static inline void bitmap_clear(struct bitmap *b, uint64_t i)
{
	b->words[i / BITS_PER_WORD] &= ~(1ULL << (i % BITS_PER_WORD));
}

/* Set bit @i from any thread. */
void bitmap_set_atomic(struct bitmap *b, uint64_t i);

/* Set or clear every bit. */
void bitmap_fill(struct bitmap *b);
void bitmap_zero(struct bitmap *b);

/* dst |= src (same size); returns how many bits were newly set. */
uint64_t bitmap_or(struct bitmap *dst, const struct bitmap *src);

/* OR @nwords words of a KVM dirty log into @b starting at bit @first (a multiple of 64). */
void bitmap_or_words(struct bitmap *b, uint64_t first, const uint64_t *words, uint64_t nbits);

/* Take the bits of @src into @dst and clear @src, from any thread's view: atomic per word. */
void bitmap_move_atomic(struct bitmap *dst, struct bitmap *src);

/* The first set bit at or after @from, or nbits if none. */
uint64_t bitmap_next_set(const struct bitmap *b, uint64_t from);

/* The first clear bit at or after @from, or nbits if none. */
uint64_t bitmap_next_clear(const struct bitmap *b, uint64_t from);

/* Number of set bits. */
uint64_t bitmap_count(const struct bitmap *b);

#endif

// SPDX-License-Identifier: GPL-2.0-or-later
/* Page bitmaps, 64 bits a word; the bits past nbits are always zero. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bitmap.h"

static uint64_t nwords(uint64_t nbits)
{
	return (nbits + BITS_PER_WORD - 1) / BITS_PER_WORD;
}

int bitmap_init(struct bitmap *b, uint64_t nbits)
{
	b->nbits = nbits;
	b->words = calloc(nwords(nbits) ? nwords(nbits) : 1, sizeof(uint64_t));
	return b->words ? 0 : -ENOMEM;
}

void bitmap_destroy(struct bitmap *b)
{
	free(b->words);
	b->words = NULL;
	b->nbits = 0;
}

void bitmap_set_atomic(struct bitmap *b, uint64_t i)
{
	__atomic_fetch_or(&b->words[i / BITS_PER_WORD], 1ULL << (i % BITS_PER_WORD), __ATOMIC_RELAXED);
}

void bitmap_zero(struct bitmap *b)
{
	memset(b->words, 0, nwords(b->nbits) * sizeof(uint64_t));
}

void bitmap_fill(struct bitmap *b)
{
	uint64_t n = nwords(b->nbits);

	memset(b->words, 0xff, n * sizeof(uint64_t));
	if (b->nbits % BITS_PER_WORD)
		b->words[n - 1] = (1ULL << (b->nbits % BITS_PER_WORD)) - 1;
}

uint64_t bitmap_or(struct bitmap *dst, const struct bitmap *src)
{
	uint64_t i, added = 0;

	for (i = 0; i < nwords(dst->nbits); i++) {
		added += (uint64_t)__builtin_popcountll(src->words[i] & ~dst->words[i]);
		dst->words[i] |= src->words[i];
	}
	return added;
}

void bitmap_or_words(struct bitmap *b, uint64_t first, const uint64_t *words, uint64_t nbits)
{
	uint64_t i, base = first / BITS_PER_WORD;

	for (i = 0; i < nwords(nbits); i++)
		b->words[base + i] |= words[i];
}

void bitmap_move_atomic(struct bitmap *dst, struct bitmap *src)
{
	uint64_t i;

	for (i = 0; i < nwords(dst->nbits); i++)
		if (__atomic_load_n(&src->words[i], __ATOMIC_RELAXED))
			dst->words[i] |= __atomic_exchange_n(&src->words[i], 0, __ATOMIC_ACQ_REL);
}

/* The first bit at or after @from that is set in (word ^ @flip), or nbits. */
static uint64_t bitmap_next(const struct bitmap *b, uint64_t from, uint64_t flip)
{
	uint64_t w, i;

	if (from >= b->nbits)
		return b->nbits;
	i = from / BITS_PER_WORD;
	w = (b->words[i] ^ flip) & (~0ULL << (from % BITS_PER_WORD));
	for (;;) {
		if (w) {
			uint64_t bit = i * BITS_PER_WORD + (uint64_t)__builtin_ctzll(w);

			return bit < b->nbits ? bit : b->nbits;
		}
		if (++i >= nwords(b->nbits))
			return b->nbits;
		w = b->words[i] ^ flip;
	}
}

uint64_t bitmap_next_set(const struct bitmap *b, uint64_t from)
{
	return bitmap_next(b, from, 0);
}

uint64_t bitmap_next_clear(const struct bitmap *b, uint64_t from)
{
	return bitmap_next(b, from, ~0ULL);
}

uint64_t bitmap_count(const struct bitmap *b)
{
	uint64_t i, n = 0;

	for (i = 0; i < nwords(b->nbits); i++)
		n += (uint64_t)__builtin_popcountll(b->words[i]);
	return n;
}

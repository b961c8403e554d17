/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Verification of a migration that does not rest on the guest's own oracle
 * (`migrate_set_capability verify on`).  When the source stops its vCPUs
 * for the last time (precopy completion, or the postcopy switch) it digests
 * every page of guest RAM (XXH3-64) and sends the digests (VERIFY records,
 * docs/design.md).  Before it starts a single vCPU the destination compares
 * every page it holds; in postcopy the fault server checks each page that
 * arrives later against the digest before placing it.  A mismatch fails the
 * migration with the pages named (index, guest address, the round that last
 * brought it), before anything runs where that is still possible.
 *
 * The same struct serves both sides; the destination also keeps, per page,
 * the round that last delivered it (VERIFY_ROUND_*).
 */
#ifndef MIGRATE_VERIFY_H
#define MIGRATE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ram;
struct bitmap;

#define VERIFY_REC_DIGESTS	65536	/* digests in one VERIFY record, at most */
/*
 * Digests the source puts in one record: it digests them just before, so
 * the destination never waits long for the next record (its peer-timeout),
 * even where digesting is slow.
 */
#define VERIFY_SEND_DIGESTS	4096
#define VERIFY_BAD_MAX		8	/* bad pages named in the message */
#define VERIFY_ROUND_NEVER	0	/* never received: must be a zero page */

struct verify {
	const struct ram *ram;
	uint64_t npages;
	uint64_t *digest;	/* the source's, one per page */
	uint64_t ndigests;	/* destination: received so far, in order */
	uint16_t *round;	/* destination: the round that last delivered each page, or NULL */
	uint64_t compared, bad;
	uint64_t ns;		/* time spent digesting or comparing */
	uint64_t zero_digest;	/* a zero page's, once needed (an untouched page is not read) */
	uint64_t bad_page[VERIFY_BAD_MAX];
};

/* The digest of one page (PAGE_SIZE bytes). */
uint64_t verify_page_digest(const void *page);

/* Allocate for @ram; @rounds: keep the round of each page (destination).  0 or -ENOMEM. */
int verify_init(struct verify *v, const struct ram *ram, bool rounds);

/* Free; safe on a zeroed struct. */
void verify_destroy(struct verify *v);

/* Source, vCPUs stopped: digest every page of RAM. */
void verify_digest_ram(struct verify *v);

/* Source, vCPUs stopped: digest pages [@first, @first + @n). */
void verify_digest_range(struct verify *v, uint64_t first, uint64_t n);

/*
 * Source: the payload of the VERIFY record that carries digests from page
 * @first (at most VERIFY_SEND_DIGESTS): fills @head (16 bytes) and returns
 * the number of digests, which follow at &v->digest[first]; 0 once @first
 * is past the end.
 */
uint32_t verify_record(const struct verify *v, uint64_t first, uint64_t head[2]);

/*
 * Destination: take one VERIFY record's payload (digests must come in page
 * order, each once).  0, or -EPROTO with a message in @err.
 */
int verify_take_record(struct verify *v, const void *payload, uint32_t len, char *err, size_t errlen);

/* Destination: 0 once every page's digest has come, else -EPROTO with a message in @err. */
int verify_check_complete(const struct verify *v, char *err, size_t errlen);

/* Destination: compare page @i, at @data, with its digest; false (and noted) if it differs. */
bool verify_page(struct verify *v, uint64_t i, const void *data);

/*
 * Destination: compare every page of RAM set in @which (NULL: every page)
 * with its digest, adding to the figures.  0, or -EBADMSG with the bad pages
 * named in @err.
 */
int verify_ram(struct verify *v, const struct bitmap *which, char *err, size_t errlen);

/* The message for the bad pages noted so far ("verify: 2 of 65536 pages differ ..."). */
void verify_explain(const struct verify *v, char *err, size_t errlen);

#endif

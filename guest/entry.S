/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * entry.S - from the multiboot loader's 32-bit handoff to C in long mode.
 *
 * The loader leaves us in flat 32-bit protected mode with EBX pointing at
 * the multiboot information, which may sit anywhere: below the image, right
 * after it, or inside memory the workload will later overwrite.  So the very
 * first thing done, before a stack or page table exists, is to copy the
 * parts we use (the fixed header, the command line, the memory map) into
 * this image's .data.  Only then is .bss cleared (a loader need not zero it)
 * and the boot stack used.
 *
 * The page tables identity-map the first 4 GiB with 2 MiB pages, so a guest
 * pointer is its guest-physical address everywhere, which is what lets the
 * workload print addresses a host test can poke.  The top 32 MiB (LAPIC,
 * IOAPIC, firmware) is mapped uncached.  APs arrive at ap_entry64 through
 * the trampoline, already in long mode on these same tables.
 */
#include "layout.h"

#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00000003	/* page-align modules, want memory info */
#define MB_BOOT_MAGIC	0x2badb002
#define MBI_CMDLINE	16
#define MBI_MMAP_LEN	44
#define MBI_MMAP_ADDR	48

#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100
#define PDE_LARGE	0x83		/* present, writable, 2 MiB */
#define PDE_UNCACHED	0x18		/* PWT | PCD */
#define UNCACHED_FIRST	(0xfe000000 >> 21)

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.section .text.boot, "ax"
	.code32
	.globl boot_entry32
boot_entry32:
	cli
	cld
	cmpl $MB_BOOT_MAGIC, %eax
	jne 4f				/* no info: boot_mbi stays zero, mode hello */

	movl %ebx, %esi
	movl $boot_mbi, %edi
	movl $(BOOT_MBI_SIZE / 4), %ecx
	rep movsl

	testl $(1 << 2), boot_mbi
	jz 2f
	movl boot_mbi + MBI_CMDLINE, %esi
	movl $boot_cmdline_buf, %edi
	movl $(BOOT_CMDLINE_MAX - 1), %ecx	/* last byte stays NUL */
1:	lodsb
	stosb
	testb %al, %al
	loopnz 1b

2:	testl $(1 << 6), boot_mbi
	jz 4f
	movl boot_mbi + MBI_MMAP_LEN, %ecx
	cmpl $BOOT_MMAP_MAX, %ecx
	jbe 3f
	movl $BOOT_MMAP_MAX, %ecx
3:	movl %ecx, boot_mbi + MBI_MMAP_LEN	/* the copy's length, truncated */
	movl boot_mbi + MBI_MMAP_ADDR, %esi
	movl $boot_mmap_buf, %edi
	rep movsb

4:	movl $bss_start, %edi
	movl $bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	movl $(boot_stack + STACK_SIZE), %esp

	movl $(boot_pdpt + 3), boot_pml4
	movl $boot_pdpt, %edi
	movl $(boot_pd + 3), %eax
	movl $4, %ecx
5:	movl %eax, (%edi)
	addl $8, %edi
	addl $PAGE_SIZE, %eax
	loop 5b

	xorl %ecx, %ecx
6:	movl %ecx, %eax
	shll $21, %eax
	orl $PDE_LARGE, %eax
	cmpl $UNCACHED_FIRST, %ecx
	jb 7f
	orl $PDE_UNCACHED, %eax
7:	movl %eax, boot_pd(, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jb 6b

	lgdt boot_gdtr
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $GDT_CODE64, $boot_entry64

	.code64
boot_entry64:
	movl $GDT_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $(boot_stack + STACK_SIZE), %rsp
	xorl %ebp, %ebp
	call guest_main
8:	cli
	hlt
	jmp 8b

/* The trampoline jumps here with RSP and EDI (the CPU number) set. */
	.globl ap_entry64
ap_entry64:
	lgdt boot_gdtr			/* the trampoline page may be reused */
	movl $GDT_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	xorl %ebp, %ebp
	call ap_main
9:	cli
	hlt
	jmp 9b

	.section .rodata
	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* GDT_CODE64: 64-bit code */
	.quad 0x00cf92000000ffff	/* GDT_DATA: flat data */
boot_gdtr:
	.word boot_gdtr - boot_gdt - 1
	.quad boot_gdt

	/* In .data, not .bss: written before .bss is cleared. */
	.section .data
	.balign 8
	.globl boot_mbi, boot_cmdline_buf, boot_mmap_buf
boot_mbi:
	.skip BOOT_MBI_SIZE
boot_mmap_buf:
	.skip BOOT_MMAP_MAX
boot_cmdline_buf:
	.skip BOOT_CMDLINE_MAX

	.section .bss, "aw", @nobits
	.balign PAGE_SIZE
boot_pml4:
	.skip PAGE_SIZE
boot_pdpt:
	.skip PAGE_SIZE
boot_pd:
	.skip 4 * PAGE_SIZE
boot_stack:
	.skip STACK_SIZE

	.section .note.GNU-stack, "", @progbits

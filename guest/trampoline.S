/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * trampoline.S - where an application processor starts after its SIPI.
 *
 * This code is only data inside the image: smp.c copies it to
 * TRAMPOLINE_GPA (below 1 MiB, as SIPI requires) and fills in the argument
 * block at its end before each AP is started, one AP at a time.  It is
 * written for that address, so every memory reference goes through T(),
 * which turns an image label into its address in the copy.
 *
 * The AP goes straight from real mode to long mode: with CR4.PAE, CR3 and
 * EFER.LME set, turning on CR0.PE and CR0.PG together is allowed (KVM's
 * CR0 checks only insist that PG comes with PE and that CS.L is clear), and
 * it saves a 32-bit stop.  The page tables are the BSP's, so they must live
 * below 4 GiB, which they do inside the image.
 */
#include "layout.h"

#define T(x)		(TRAMPOLINE_GPA + (x) - trampoline_start)

	.section .rodata
	.balign 16
	.globl trampoline_start, trampoline_end, trampoline_args
	.code16
trampoline_start:
	cli
	cld
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl T(tramp_gdtr)
	movl %cr4, %eax
	orl $0x20, %eax			/* PAE */
	movl %eax, %cr4
	movl T(trampoline_args), %eax	/* args.cr3 */
	movl %eax, %cr3
	movl $0xc0000080, %ecx		/* EFER */
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax		/* PG | PE */
	movl %eax, %cr0
	ljmpl $GDT_CODE64, $T(tramp_long)

	.code64
tramp_long:
	movl $GDT_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movq T(trampoline_args) + 8, %rsp	/* args.stack */
	movl T(trampoline_args) + 24, %edi	/* args.cpu */
	movq T(trampoline_args) + 16, %rax	/* args.entry */
	jmp *%rax

	.balign 8
tramp_gdt:
	.quad 0
	.quad 0x00af9a000000ffff
	.quad 0x00cf92000000ffff
tramp_gdtr:
	.word tramp_gdtr - tramp_gdt - 1
	.long T(tramp_gdt)

	/* struct trampoline_args in smp.c */
	.balign 8
trampoline_args:
	.quad 0				/* cr3 */
	.quad 0				/* stack */
	.quad 0				/* entry */
	.long 0				/* cpu */
	.long 0
trampoline_end:

	.section .note.GNU-stack, "", @progbits

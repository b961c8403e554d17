/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vectors.S - the 32 exception entry stubs.
 *
 * Each stub makes the stack look the same whether or not the CPU pushed an
 * error code, adds the vector number, and hands a pointer to that frame to
 * trap_handle() in trap.c, which reports and exits.  Nothing ever returns,
 * so no registers are saved.  trap_stubs[] is the table trap.c builds the
 * IDT from.
 */
	.text
	.code64

	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
trap_stub_\v:
	.if !(\v == 8 || \v == 10 || \v == 11 || \v == 12 || \v == 13 || \v == 14 || \v == 17 || \v == 21 || \v == 29 || \v == 30)
	pushq $0
	.endif
	pushq $\v
	jmp trap_common
	.endr

trap_common:
	movq %rsp, %rdi
	andq $-16, %rsp
	call trap_handle
1:	cli
	hlt
	jmp 1b

	.section .rodata
	.balign 8
	.globl trap_stubs
trap_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad trap_stub_\v
	.endr

	.section .note.GNU-stack, "", @progbits

// The EL1 shim of the Hypervisor.framework backend (our own; protocol in layout.ts and README.md).
//
// The guest runs at EL0. Every synchronous exception it takes lands here, in the lower-EL AArch64
// vector; the shim saves the guest's complete state into the vCPU's frame (SP_EL1 points at it),
// tells the host what happened with an HVC whose immediate says why, and on the way back performs
// the TLB/I-cache maintenance the host queued, then reloads the frame and ERETs. The frame is the
// guest's register state while the vCPU is parked here: the host reads and edits it as memory.
// No guest register is changed except through the frame; the shim touches no FP/SIMD register.
//
// Assembled position-independent by scripts/build-shim.ts into src/shim/shim-bytes.ts.

	.equ FRAME_SIZE,     0x140
	.equ FRAME_SP_EL0,   0x0f8
	.equ FRAME_ELR,      0x100
	.equ FRAME_SPSR,     0x108
	.equ FRAME_ESR,      0x110
	.equ FRAME_FAR,      0x118
	.equ FRAME_ACTION,   0x120
	.equ FRAME_TLBI_PAGE, 0x128
	.equ FRAME_TLBI_COUNT, 0x130
	.equ FRAME_STOP,     0x138

	.equ ACTION_TLBI_ALL_BIT,   0
	.equ ACTION_TLBI_PAGES_BIT, 1
	.equ ACTION_IC_IALLU_BIT,   2

	.equ HVC_STOP,          3
	.equ HVC_SYSCALL,       5
	.equ HVC_EL0_EXCEPTION, 8
	.equ HVC_BRK,           10
	.equ HVC_ABORT,         11
	.equ HVC_BAD_VECTOR,    0x40

	.equ EC_SVC64,      0x15
	.equ EC_IABT_LOWER, 0x20
	.equ EC_DABT_LOWER, 0x24
	.equ EC_BRK64,      0x3c

	.text
	.balign 2048
	.global shim_start
shim_start:

// ---------------------------------------------------------------------------------------------
// Offset 0x000: the resume path. Entered by falling through from an HVC the host answered, or
// directly by the host (PC = here, PSTATE = EL1h with DAIF masked, SP_EL1 = the frame) when it
// needs to change guest state it cannot reach otherwise (first entry, queued TLB maintenance).
	.global shim_resume
shim_resume:
resume:					// local alias: branches to a global symbol would need relocation
	ldr	x9, [sp, #FRAME_ACTION]
	cbz	x9, check_stop
	dsb	ishst				// page-table stores visible to the walkers first
	tbz	x9, #ACTION_TLBI_ALL_BIT, 1f
	tlbi	vmalle1is
1:	tbz	x9, #ACTION_TLBI_PAGES_BIT, 3f
	ldp	x10, x11, [sp, #FRAME_TLBI_PAGE]
	cbz	x11, 3f
2:	tlbi	vaae1is, x10			// every ASID: the runtime's tables may use global or ASID-0 entries
	add	x10, x10, #1
	subs	x11, x11, #1
	b.ne	2b
3:	dsb	ish
	tbz	x9, #ACTION_IC_IALLU_BIT, 4f
	ic	ialluis
	dsb	ish
4:	str	xzr, [sp, #FRAME_ACTION]
	isb
check_stop:
	ldr	x9, [sp, #FRAME_STOP]
	cbz	x9, restore
	hvc	#HVC_STOP			// the host clears FRAME_STOP before it resumes us
	b	resume
restore:
	ldp	x9, x10, [sp, #FRAME_SP_EL0]	// sp_el0, elr
	msr	sp_el0, x9
	msr	elr_el1, x10
	ldr	x9, [sp, #FRAME_SPSR]
	msr	spsr_el1, x9
	ldp	x0, x1, [sp, #0]
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldp	x8, x9, [sp, #64]
	ldp	x10, x11, [sp, #80]
	ldp	x12, x13, [sp, #96]
	ldp	x14, x15, [sp, #112]
	ldp	x16, x17, [sp, #128]
	ldp	x18, x19, [sp, #144]
	ldp	x20, x21, [sp, #160]
	ldp	x22, x23, [sp, #176]
	ldp	x24, x25, [sp, #192]
	ldp	x26, x27, [sp, #208]
	ldp	x28, x29, [sp, #224]
	ldr	x30, [sp, #240]
	add	sp, sp, #FRAME_SIZE
	eret

// ---------------------------------------------------------------------------------------------
// Synchronous exception from EL0 (x0, x1 already saved by the vector entry).
el0_sync:
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x19, [sp, #144]
	stp	x20, x21, [sp, #160]
	stp	x22, x23, [sp, #176]
	stp	x24, x25, [sp, #192]
	stp	x26, x27, [sp, #208]
	stp	x28, x29, [sp, #224]
	str	x30, [sp, #240]
	mrs	x0, sp_el0
	mrs	x1, elr_el1
	stp	x0, x1, [sp, #FRAME_SP_EL0]
	mrs	x0, spsr_el1
	mrs	x1, esr_el1
	stp	x0, x1, [sp, #FRAME_SPSR]
	mrs	x0, far_el1
	str	x0, [sp, #FRAME_FAR]
	ubfx	x0, x1, #26, #6			// EC
	cmp	x0, #EC_SVC64
	b.eq	el0_svc
	cmp	x0, #EC_DABT_LOWER
	b.eq	el0_abort
	cmp	x0, #EC_IABT_LOWER
	b.eq	el0_abort
	cmp	x0, #EC_BRK64
	b.eq	el0_brk
	hvc	#HVC_EL0_EXCEPTION
	b	resume
el0_svc:
	hvc	#HVC_SYSCALL
	b	resume
el0_abort:
	hvc	#HVC_ABORT
	b	resume
el0_brk:
	hvc	#HVC_BRK
	b	resume

// ---------------------------------------------------------------------------------------------
// Offset 0x800: the vector table (VBAR_EL1). Only the lower-EL AArch64 synchronous entry does
// work; anything else is a shim or configuration bug and is reported without touching a register.
	.macro	bad_vector index
	.balign	0x80
1:	hvc	#(HVC_BAD_VECTOR + \index)
	b	1b
	.endm

	.balign	2048
	.global shim_vectors
shim_vectors:
	bad_vector 0	// current EL, SP_EL0: synchronous
	bad_vector 1	// IRQ
	bad_vector 2	// FIQ
	bad_vector 3	// SError
	bad_vector 4	// current EL, SP_ELx: synchronous (the shim itself faulted)
	bad_vector 5
	bad_vector 6
	bad_vector 7
	.balign	0x80
	.global shim_lower_a64_sync
shim_lower_a64_sync:			// lower EL, AArch64: synchronous
	sub	sp, sp, #FRAME_SIZE
	stp	x0, x1, [sp, #0]
	b	el0_sync
	bad_vector 9	// lower EL IRQ (no interrupt controller: never expected)
	bad_vector 10
	bad_vector 11
	bad_vector 12	// lower EL, AArch32: no AArch32 guests
	bad_vector 13
	bad_vector 14
	bad_vector 15
	.balign	0x80
	.global shim_end
shim_end:

// The built-in demo guest: what `bun run guest` runs with no program.
// A static aarch64 Linux program that talks to the kernel only through syscalls: it greets, asks
// uname(2) which machine it is on, reports its pid relation and exits with status 0.
// Rebuilt by apps/guest/scripts/build-demo.ts (aarch64-linux-gnu-as + ld); demo-bytes.ts is the output.

        .equ SYS_write, 64
        .equ SYS_uname, 160
        .equ SYS_getpid, 172
        .equ SYS_exit_group, 94
        .equ UTS_FIELD, 65              // struct utsname: six 65-byte fields

        .text
        .global _start
_start:
        adr     x1, greeting
        mov     x2, #greeting_len
        bl      print

        sub     sp, sp, #400            // struct utsname (390 bytes), 16-byte aligned
        mov     x0, sp
        mov     x8, #SYS_uname
        svc     #0
        cbnz    x0, fail

        adr     x1, machine_label
        mov     x2, #machine_label_len
        bl      print
        add     x1, sp, #UTS_FIELD * 4  // utsname.machine
        bl      print_cstring
        adr     x1, release_label
        mov     x2, #release_label_len
        bl      print
        add     x1, sp, #UTS_FIELD * 2  // utsname.release
        bl      print_cstring
        adr     x1, newline
        mov     x2, #1
        bl      print

        mov     x8, #SYS_getpid
        svc     #0
        cmp     x0, #0
        b.le    fail
        adr     x1, bye
        mov     x2, #bye_len
        bl      print
        mov     x0, #0
        mov     x8, #SYS_exit_group
        svc     #0

fail:   mov     x0, #1
        mov     x8, #SYS_exit_group
        svc     #0

// print(x1 = buffer, x2 = length) to stdout
print:  mov     x0, #1
        mov     x8, #SYS_write
        svc     #0
        ret

// print_cstring(x1 = NUL-terminated string)
print_cstring:
        mov     x2, #0
1:      ldrb    w3, [x1, x2]
        cbz     w3, 2f
        add     x2, x2, #1
        b       1b
2:      mov     x0, #1
        mov     x8, #SYS_write
        svc     #0
        ret

        .section .rodata
greeting:       .ascii "Hello from an aarch64 Linux guest, running under `guest`.\n"
        .equ greeting_len, . - greeting
machine_label:  .ascii "uname says: machine "
        .equ machine_label_len, . - machine_label
release_label:  .ascii ", kernel "
        .equ release_label_len, . - release_label
newline:        .ascii "\n"
bye:            .ascii "Every line above came from guest code through Linux syscalls. Try: bun run guest --trace\n"
        .equ bye_len, . - bye

/**
 * Syscall layer costs without an emulator: the JS dispatch of getpid (table lookup + handler, the part
 * the runtime adds to every svc), a traced getpid (formatting cost), and write(2) of 64 bytes to
 * /dev/null (dispatch + bounds check + one FFI call into the host shim + the host syscall).
 */
import { bench, do_not_optimize, group, run } from "mitata";
import { AT_FDCWD, O_WRONLY } from "../src/abi/fcntl.ts";
import { NR } from "../src/abi/syscalls.ts";
import { createFakeGuest } from "../src/test-support.ts";

const guest = createFakeGuest();
const dispatch = guest.dispatcher.dispatch;
const frame = new Uint32Array(18);

const getpidFrame = new Uint32Array(18);
getpidFrame[16] = NR.getpid;

const devNull = guest.call("openat", AT_FDCWD, guest.cstr("/dev/null"), O_WRONLY) as number;
const buffer = guest.alloc(64);
const writeFrame = new Uint32Array(18);
writeFrame[0] = devNull;
writeFrame[2] = buffer;
writeFrame[4] = 64;
writeFrame[16] = NR.write;

const clockFrame = new Uint32Array(18);
const timespec = guest.alloc(16);
clockFrame[0] = 1; // CLOCK_MONOTONIC
clockFrame[2] = timespec;
clockFrame[16] = NR.clock_gettime;

const traced = createFakeGuest({ trace: () => {} });

group("dispatch", () => {
  bench("getpid (JS dispatch only)", () => {
    frame.set(getpidFrame);
    do_not_optimize(dispatch(frame));
  });
  bench("getpid, traced (line formatted, then dropped)", () => {
    do_not_optimize(traced.dispatcher.dispatch(getpidFrame));
  });
  bench("write(/dev/null, 64 bytes)", () => {
    do_not_optimize(dispatch(writeFrame));
  });
  bench("clock_gettime(CLOCK_MONOTONIC)", () => {
    do_not_optimize(dispatch(clockFrame));
  });
});

await run(process.env.BENCH_JSON ? { format: "json" } : {});
guest.close();
traced.close();

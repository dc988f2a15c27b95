import { expect, test } from "bun:test";
import { HV_EXIT_REASON_EXCEPTION, HV_VCPU_EXIT } from "./constants.ts";
import {
  decodeFaultStatus,
  decodeSyndrome,
  el0ExceptionToVcpuExit,
  exitReasonName,
  readExitInfo,
} from "./decode.ts";
import { EC } from "./syndrome-constants.ts";

const esr = (ec: number, iss = 0) => (BigInt(ec) << 26n) | (1n << 25n) | BigInt(iss);

test("hv_vcpu_exit_t fields at offsets 0/8/16/24", () => {
  const view = new DataView(new ArrayBuffer(HV_VCPU_EXIT.size));
  view.setUint32(0, HV_EXIT_REASON_EXCEPTION, true);
  view.setUint32(4, 0xffffffff, true); // padding is ignored
  view.setBigUint64(8, 0x5a00_0005n, true);
  view.setBigUint64(16, 0xffff_0000_1234_5678n, true);
  view.setBigUint64(24, 0x8000_1000n, true);
  expect(readExitInfo(view)).toEqual({
    reason: 1,
    syndrome: 0x5a00_0005n,
    virtualAddress: 0xffff_0000_1234_5678n,
    physicalAddress: 0x8000_1000n,
  });
  expect(exitReasonName(2)).toBe("HV_EXIT_REASON_VTIMER_ACTIVATED");
  expect(exitReasonName(9)).toBe("unknown exit reason 9");
});

test("SVC/HVC/BRK immediates and exception-class names", () => {
  const hvc = decodeSyndrome(0x5a00_0005n);
  expect(hvc).toMatchObject({ ec: EC.HVC64, ecName: "HVC64", il: true, immediate: 5 });
  expect(decodeSyndrome(esr(EC.SVC64, 0x1234)).immediate).toBe(0x1234);
  expect(decodeSyndrome(esr(EC.BRK64, 0xf000)).immediate).toBe(0xf000);
  expect(decodeSyndrome(esr(EC.SYS64, 0x1234)).immediate).toBeUndefined();
  expect(decodeSyndrome(esr(EC.SOFTSTEP_LOWER)).ecName).toBe("software step (lower EL)");
  expect(decodeSyndrome(esr(0x3f)).ecName).toBe("EC 0x3f");
});

test("data abort fields: WnR, CM, S1PTW, FnV, EA", () => {
  const write = decodeSyndrome(esr(EC.DABT_LOWER, (1 << 6) | 0x07));
  expect(write.abort).toMatchObject({ wnr: true, write: true, cm: false, s1ptw: false, fnv: false });
  expect(write.abort!.status).toEqual({ code: 7, kind: "translation", level: 3 });
  const cacheMaintenance = decodeSyndrome(esr(EC.DABT_LOWER, (1 << 8) | (1 << 6) | 0x0d));
  expect(cacheMaintenance.abort).toMatchObject({ wnr: true, cm: true, write: false });
  const walk = decodeSyndrome(esr(EC.DABT_SAME, (1 << 10) | (1 << 9) | (1 << 7) | 0x10));
  expect(walk.abort).toMatchObject({ s1ptw: true, fnv: true, ea: true, status: { kind: "external" } });
  // Instruction aborts have no WnR even if bit 6 happens to be set.
  expect(decodeSyndrome(esr(EC.IABT_LOWER, (1 << 6) | 0x0f)).abort).toMatchObject({
    wnr: false,
    write: false,
  });
});

test("fault status codes", () => {
  expect(decodeFaultStatus(0x04)).toEqual({ code: 4, kind: "translation", level: 0 });
  expect(decodeFaultStatus(0x0a)).toEqual({ code: 0x0a, kind: "access-flag", level: 2 });
  expect(decodeFaultStatus(0x0f)).toEqual({ code: 0x0f, kind: "permission", level: 3 });
  expect(decodeFaultStatus(0x01)).toEqual({ code: 1, kind: "address-size", level: 1 });
  expect(decodeFaultStatus(0x21)).toEqual({ code: 0x21, kind: "alignment" });
  expect(decodeFaultStatus(0x30)).toEqual({ code: 0x30, kind: "tlb-conflict" });
  expect(decodeFaultStatus(0x3e).kind).toBe("other");
});

test("EL0 exceptions map to VcpuExit with Linux's access rules", () => {
  const far = 0x1234_5000n;
  expect(el0ExceptionToVcpuExit(esr(EC.DABT_LOWER, 0x40 | 0x06), far, 0x40_0000n)).toEqual({
    kind: "fault",
    address: 0x1234_5000,
    access: "write",
    mapped: false,
  });
  expect(el0ExceptionToVcpuExit(esr(EC.DABT_LOWER, 0x100 | 0x40 | 0x0f), far, 0n)).toMatchObject({
    access: "read",
    mapped: true,
  });
  expect(el0ExceptionToVcpuExit(esr(EC.IABT_LOWER, 0x07), far, far)).toMatchObject({
    access: "exec",
    mapped: false,
  });
  // Top-byte-ignore: the tag byte is not part of the address.
  expect(el0ExceptionToVcpuExit(esr(EC.DABT_LOWER, 0x07), 0x5a00_0000_0000_1000n, 0n)).toMatchObject({
    address: 0x1000,
  });
  expect(el0ExceptionToVcpuExit(esr(EC.BRK64), 0n, 0x40_1000n)).toEqual({
    kind: "breakpoint",
    pc: 0x40_1000,
  });
  expect(el0ExceptionToVcpuExit(esr(EC.UNKNOWN), 0n, 0x40_2000n)).toEqual({
    kind: "undefined-instruction",
    pc: 0x40_2000,
  });
  expect(el0ExceptionToVcpuExit(esr(EC.SYS64, 0x30_0000), 0n, 8n)).toEqual({
    kind: "undefined-instruction",
    pc: 8,
  });
  expect(el0ExceptionToVcpuExit(esr(EC.SVC64), 0n, 8n)).toEqual({ kind: "syscall" });
  const alignment = el0ExceptionToVcpuExit(esr(EC.DABT_LOWER, 0x21), 0x1001n, 0x40_0000n);
  expect(alignment).toMatchObject({
    kind: "backend-error",
    message: expect.stringMatching(/alignment fault.*0x1001/),
  });
  expect(el0ExceptionToVcpuExit(esr(EC.SP_ALIGN), 0n, 0n)).toMatchObject({
    kind: "backend-error",
    message: expect.stringMatching(/SP alignment fault/),
  });
});

/**
 * What a fork carries from a parent's vCPU to the child's rebuilt one (HvfVm.prepareFork /
 * afterForkInChild): every register the guest can see, and every EL1 register the EL1 setup programs
 * or the shim relies on. Guest memory, the private region (shim code, TTBR1 tables, the per-vCPU
 * frames) and the shared VM state are process memory and reach the child through fork() itself.
 */
import { HV_REG_CPSR, HV_REG_FPCR, HV_REG_FPSR, HV_REG_PC, hvRegX, type SysRegName } from "./constants.ts";

/** hv_reg_t registers (hv_vcpu_get_reg / hv_vcpu_set_reg). */
export const FORK_REGISTERS: readonly { readonly name: string; readonly reg: number }[] = [
  ...Array.from({ length: 31 }, (_, n) => ({ name: `X${n}`, reg: hvRegX(n) })),
  { name: "PC", reg: HV_REG_PC },
  { name: "CPSR", reg: HV_REG_CPSR },
  { name: "FPCR", reg: HV_REG_FPCR },
  { name: "FPSR", reg: HV_REG_FPSR },
];

/** hv_sys_reg_t registers (hv_vcpu_get_sys_reg / hv_vcpu_set_sys_reg). */
export const FORK_SYSTEM_REGISTERS: readonly SysRegName[] = [
  // EL0-visible state.
  "SP_EL0",
  "TPIDR_EL0",
  "TPIDRRO_EL0",
  "CNTV_CTL_EL0",
  "CNTV_CVAL_EL0",
  // What the EL1 setup programs (HvfVcpu.programEl1 and the initial state).
  "SCTLR_EL1",
  "TCR_EL1",
  "MAIR_EL1",
  "TTBR0_EL1",
  "TTBR1_EL1",
  "VBAR_EL1",
  "CPACR_EL1",
  "CNTKCTL_EL1",
  "MDSCR_EL1",
  "TPIDR_EL1",
  // The shim's stack and exception state (the vCPU forks while parked in the shim, after its HVC).
  "SP_EL1",
  "SPSR_EL1",
  "ELR_EL1",
  "ESR_EL1",
  "FAR_EL1",
];

/** Q0..Q31, 16 bytes each (hv_vcpu_get_simd_fp_reg / the by-pointer setter helper). */
export const FORK_VECTOR_COUNT = 32;
export const FORK_VECTOR_BYTES = 16;

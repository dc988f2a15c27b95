/** Clock ids (include/uapi/linux/time.h) and clock_nanosleep flags. */

export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_PROCESS_CPUTIME_ID = 2;
export const CLOCK_THREAD_CPUTIME_ID = 3;
export const CLOCK_MONOTONIC_RAW = 4;
export const CLOCK_REALTIME_COARSE = 5;
export const CLOCK_MONOTONIC_COARSE = 6;
export const CLOCK_BOOTTIME = 7;
export const CLOCK_REALTIME_ALARM = 8;
export const CLOCK_BOOTTIME_ALARM = 9;
export const CLOCK_TAI = 11;

export const CLOCK_NAMES: Readonly<Record<number, string>> = {
  0: "CLOCK_REALTIME",
  1: "CLOCK_MONOTONIC",
  2: "CLOCK_PROCESS_CPUTIME_ID",
  3: "CLOCK_THREAD_CPUTIME_ID",
  4: "CLOCK_MONOTONIC_RAW",
  5: "CLOCK_REALTIME_COARSE",
  6: "CLOCK_MONOTONIC_COARSE",
  7: "CLOCK_BOOTTIME",
  8: "CLOCK_REALTIME_ALARM",
  9: "CLOCK_BOOTTIME_ALARM",
  11: "CLOCK_TAI",
};

/** clock_nanosleep: the request is an absolute time on that clock. */
export const TIMER_ABSTIME = 1;

export const NSEC_PER_SEC = 1_000_000_000;

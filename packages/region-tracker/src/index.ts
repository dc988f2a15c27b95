export * from "./abi.ts";
export { devMajor, devMinor, formatProcMaps, formatProcMapsLine } from "./procmaps.ts";
export {
  applyChange,
  canMerge,
  type FileIdentity,
  mergeRegions,
  type Region,
  type RegionChange,
  type RegionFlags,
  sameFlags,
  sliceRegion,
} from "./region.ts";
export { type FreeGapRequest, RegionTracker, type RegionTrackerOptions } from "./tracker.ts";

/**
 * An expiry found this long after its deadline was not observed live (no hub was watching: the hub
 * or Redis was down), so it is reported with reason `reconcile` rather than `timeout`. Normal
 * expiries are found within the sweep interval plus the coalescing slack (< 1 s).
 */
export const LATE_EXPIRY_MS = 5000;

//! A hint to the CPU to start loading memory the hot path will read a few steps later.
//!
//! Scoring a comment reads a few hundred rows scattered over tables of several megabytes (bucket → row, the weight
//! matrix, the per-row head means): each read is a cache miss, and waiting for them one at a time was half of the
//! classifier's time under load. Asking for a row some steps ahead lets those misses overlap.

/// Asks the CPU to bring `slice[index]` into the cache; does nothing when `index` is out of bounds or the CPU has
/// no prefetch instruction we use. Never changes a result: it is only a hint.
#[inline(always)]
pub fn prefetch<T>(slice: &[T], index: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = slice.get(index) {
        let address: *const T = item;
        // SAFETY: PREFETCHT0 never faults and never writes: it is a hint, and the address is in bounds anyway. SSE
        // (which has it) is part of the x86-64 baseline, so the instruction always exists.
        #[allow(unsafe_code)]
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(address.cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, index);
}

/// Prefetches every cache line of `slice[start..start + len]` (a weight row spans several lines).
#[inline(always)]
pub fn prefetch_range<T>(slice: &[T], start: usize, len: usize) {
    if len == 0 {
        return;
    }
    const LINE: usize = 64;
    let step = (LINE / size_of::<T>().max(1)).max(1);
    let mut at = start;
    while at < start + len {
        prefetch(slice, at);
        at += step;
    }
    // The row may straddle one more line than `len / step` when it does not start on a line boundary.
    prefetch(slice, start + len - 1);
}

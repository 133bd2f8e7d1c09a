//! Process memory: how the C allocator is set up.
//!
//! glibc's malloc raises its mmap threshold each time a large mmapped block is freed (up to
//! 32 MiB), so the vector and graph arrays of segments that merges replace end up on the heap,
//! where freed space is rarely handed back; and it keeps up to 8 arenas per core for threads
//! that contend. Under sustained overwrites that held the overload benchmark's RSS at 428 MB
//! after its storm, against 146 MB with a fixed 256 KiB threshold and one arena per core
//! (same run, same data: 50,000 points of 128 floats).

/// Blocks from this size up get their own mapping, returned to the OS when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Fixes the mmap threshold and caps arenas at one per core, unless `GLIBC_TUNABLES` is set
/// (an operator's own tuning wins). Call before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes allocator parameters; it is called before other threads
        // exist, and a failure (return 0) leaves the defaults, which is harmless.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

//! How big a guest's memory-backed filesystems may grow: /dev/shm, /tmp
//! and /run are tmpfs, whose pages are charged to the guest's memory, so
//! an unbounded one lets any guest user fill memory until the guest's
//! init is OOM-killed (the kernel's default is half the host's RAM).
//!
//! With a memory limit M: /dev/shm and /tmp get M/4 each, /run M/10 (at
//! least 8 MiB), so even all three full leave 40% of M to the guest's
//! processes. Without a limit: 64 MiB /dev/shm, 256 MiB /tmp, 64 MiB /run.
//! Each also gets one inode per 4 KiB of its size (at least 1024), so
//! empty files cannot exhaust the kernel's memory either. A write beyond
//! a size fails with ENOSPC inside the guest and harms nothing else.

use serde::{Deserialize, Serialize};
use vbuild_kernel::rootfs::TmpfsLimits;

const MIB: u64 = 1 << 20;

/// The sizes, in bytes, of a guest's tmpfs mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsSizes {
    /// /dev/shm (POSIX shared memory).
    pub dev_shm: u64,
    /// /tmp.
    pub tmp: u64,
    /// /run.
    pub run: u64,
}

impl Default for TmpfsSizes {
    /// The sizes for a guest without a memory limit.
    fn default() -> TmpfsSizes {
        TmpfsSizes {
            dev_shm: 64 * MIB,
            tmp: 256 * MIB,
            run: 64 * MIB,
        }
    }
}

impl TmpfsSizes {
    /// The sizes for a guest whose memory limit is `memory` bytes (`None`:
    /// no limit, the fixed defaults).
    pub fn for_memory(memory: Option<u64>) -> TmpfsSizes {
        match memory {
            None => TmpfsSizes::default(),
            Some(m) => TmpfsSizes {
                dev_shm: page_round(m / 4),
                tmp: page_round(m / 4),
                run: page_round((m / 10).max(8 * MIB)),
            },
        }
    }

    /// The mount limits (sizes and inode counts) for the rootfs plan.
    pub fn limits(&self) -> TmpfsLimits {
        let inodes = |size: u64| (size / 4096).max(1024);
        TmpfsLimits {
            dev_shm: (self.dev_shm, inodes(self.dev_shm)),
            tmp: (self.tmp, inodes(self.tmp)),
            run: (self.run, inodes(self.run)),
        }
    }
}

/// `n` rounded up to whole 4 KiB pages, and at least one page.
fn page_round(n: u64) -> u64 {
    n.div_ceil(4096).max(1) * 4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_memory_limit_or_fixed_defaults() {
        let d = TmpfsSizes::for_memory(None);
        assert_eq!((d.dev_shm, d.tmp, d.run), (64 * MIB, 256 * MIB, 64 * MIB));
        let s = TmpfsSizes::for_memory(Some(1024 * MIB));
        assert_eq!((s.dev_shm, s.tmp), (256 * MIB, 256 * MIB));
        assert_eq!(s.run, page_round(1024 * MIB / 10));
        // Everything full still leaves room for the guest's processes.
        assert!(s.dev_shm + s.tmp + s.run < 1024 * MIB * 7 / 10);
        let small = TmpfsSizes::for_memory(Some(64 * MIB));
        assert_eq!(small.run, 8 * MIB);
        assert_eq!(small.dev_shm % 4096, 0);
        let l = small.limits();
        assert_eq!(l.dev_shm, (16 * MIB, 4096));
        assert_eq!(TmpfsSizes::for_memory(Some(1)).limits().tmp, (4096, 1024));
    }
}

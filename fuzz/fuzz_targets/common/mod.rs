//! Shared by every target: an allocator that aborts on any single
//! allocation over [`ALLOC_LIMIT`], so "no unbounded allocation" holds
//! whichever sanitizer (or none) the target is built with. libFuzzer's
//! own `-malloc_limit_mb` only works under a sanitizer's malloc hooks.

use std::alloc::{GlobalAlloc, Layout, System};

/// Largest single allocation a target may make.
pub const ALLOC_LIMIT: usize = 64 << 20;

/// [`System`], with the size check.
pub struct Capped;

impl Capped {
    fn check(size: usize) {
        if size > ALLOC_LIMIT {
            // No panic here: a global allocator must not unwind. abort()
            // is a deadly signal to libFuzzer, which saves the input.
            let msg = b"fuzz: allocation over the 64 MiB limit\n";
            // SAFETY: writing a static buffer to stderr.
            unsafe { libc_write(2, msg.as_ptr(), msg.len()) };
            std::process::abort();
        }
    }
}

extern "C" {
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, count: usize) -> isize;
}

// SAFETY: every call forwards to System after a size check that only aborts.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

//! Counts heap allocations made by the current thread inside [`count`], so
//! the server target can check that `Server::poll` never allocates.
//!
//! Written here rather than taken from `assert_no_alloc`: that crate aborts
//! on the first allocation, and the panic message of a real finding (which
//! allocates) would then be lost behind its abort.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Allocations counted on this thread while `Some`.
    static COUNTED: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The system allocator, counting.
struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn note_allocation() {
    // `try_with`: the thread-local may be gone while a thread exits.
    let _ = COUNTED.try_with(|counted| {
        if let Some(n) = counted.get() {
            counted.set(Some(n + 1));
        }
    });
}

// SAFETY: every call is passed on unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the counting touches only a const-initialised
// thread-local `Cell` without a destructor, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's layout goes to System as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: `ptr` came from this allocator, that is from System, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from System, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns its result with the allocations it made.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let outer = COUNTED.replace(Some(0));
    let result = f();
    let made = COUNTED.replace(outer).unwrap_or(0);
    (result, made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_the_closure_allocates() {
        assert_eq!(count(|| ()).1, 0);
        let (v, made) = count(|| vec![1u8; 100]);
        assert_eq!((v.len(), made), (100, 1));
    }
}

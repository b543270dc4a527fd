//! A value filled in at run time whose empty state is all zero bytes.

/// Filled in by [`Server::new`](super::Server::new), empty before.
///
/// smoltcp's empty socket slot has non-zero bytes (an enum niche), and a
/// session slot holds references, which cannot be zero: either would put a
/// whole `static` of resources into `.data`, copied from flash. With an
/// explicit tag and no niche, `Empty` is zero and the static stays in `.bss`.
#[derive(Debug)]
#[repr(C, u8)]
pub(super) enum Deferred<T> {
    Empty,
    Ready(T),
}

impl<T> Deferred<T> {
    /// Fills it with `value`, which it hands back.
    pub(super) fn insert(&mut self, value: T) -> &mut T {
        *self = Deferred::Ready(value);
        match self {
            Deferred::Ready(value) => value,
            Deferred::Empty => unreachable!("just filled"),
        }
    }

    pub(super) const fn get(&self) -> Option<&T> {
        match self {
            Deferred::Ready(value) => Some(value),
            Deferred::Empty => None,
        }
    }

    pub(super) const fn get_mut(&mut self) -> Option<&mut T> {
        match self {
            Deferred::Ready(value) => Some(value),
            Deferred::Empty => None,
        }
    }
}

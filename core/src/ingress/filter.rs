//! What a filter is: it sees each incoming TCP segment before smoltcp does.

use super::segment::Segment;

/// What becomes of an incoming TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// smoltcp takes it in.
    Pass,
    /// smoltcp never sees it.
    Drop,
}

/// Looks at each incoming TCP segment before smoltcp does.
pub(crate) trait Filter {
    /// Decides the fate of `segment`, and notes what it needs to.
    fn inspect(&mut self, segment: &Segment) -> Verdict;
}

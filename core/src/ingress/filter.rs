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

/// Two filters in turn: the second sees only what the first passes.
impl<A: Filter, B: Filter> Filter for (A, B) {
    fn inspect(&mut self, segment: &Segment) -> Verdict {
        match self.0.inspect(segment) {
            Verdict::Pass => self.1.inspect(segment),
            Verdict::Drop => Verdict::Drop,
        }
    }
}

impl<F: Filter + ?Sized> Filter for &mut F {
    fn inspect(&mut self, segment: &Segment) -> Verdict {
        (**self).inspect(segment)
    }
}

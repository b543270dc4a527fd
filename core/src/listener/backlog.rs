//! The backlog: connection attempts that found no socket to take them, in
//! a table the caller lends.
//!
//! The table is small (a few dozen entries on a host, a dozen on a board)
//! and every question asked of it ("is this SYN already here?", "which
//! attempt goes first?", "which one gives way?") is one pass over it: no
//! order to keep, no entry moved but the one removed.

use smoltcp::time::{Duration, Instant};

use smoltcp::wire::IpAddress;

use super::stamp::Stamp;
use super::syn::Syn;
use crate::ingress::Connection;

/// One connection attempt waiting in a [`Listener`](super::Listener)'s
/// backlog: its SYN (headers and options), when it came, and whether its
/// peer has proved itself.
///
/// The caller lends a table of them ([`ListenerMemory`](super::ListenerMemory));
/// [`Attempt::EMPTY`] fills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub(super) syn: Syn,
    /// When its first SYN came (later copies keep it).
    pub(super) arrived: Stamp,
    pub(super) proven: bool,
    /// Its client's ARP reply went to smoltcp; its SYN goes next.
    pub(super) announced: bool,
}

impl Attempt {
    /// An unused entry. All zero bytes, so a table of them in a `static`
    /// stays in `.bss`.
    ///
    /// ```
    /// let backlog = [reversal_core::listener::Attempt::EMPTY; 16];
    /// ```
    pub const EMPTY: Attempt = Attempt {
        syn: Syn::NONE,
        arrived: Stamp::ZERO,
        proven: false,
        announced: false,
    };
}

impl Default for Attempt {
    fn default() -> Self {
        Attempt::EMPTY
    }
}

/// The attempts waiting, in no particular order.
#[derive(Debug)]
pub(super) struct Backlog<'a> {
    entries: &'a mut [Attempt],
    len: usize,
}

impl<'a> Backlog<'a> {
    pub(super) fn new(entries: &'a mut [Attempt]) -> Self {
        Backlog { entries, len: 0 }
    }

    fn waiting(&self) -> &[Attempt] {
        &self.entries[..self.len]
    }

    pub(super) const fn len(&self) -> usize {
        self.len
    }

    pub(super) const fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Where the attempt of `connection` waits, if it does.
    pub(super) fn position(&self, connection: Connection) -> Option<usize> {
        self.waiting()
            .iter()
            .position(|attempt| attempt.syn.connection() == connection)
    }

    /// A new copy of a waiting attempt's SYN: it keeps its place and age.
    pub(super) fn merge(&mut self, index: usize, syn: Syn, proven: bool) {
        let attempt = &mut self.entries[index];
        attempt.syn = syn;
        attempt.proven |= proven;
    }

    /// Adds an attempt; when the table is full, hands it back.
    pub(super) fn push(&mut self, attempt: Attempt) -> Result<(), Attempt> {
        match self.entries.get_mut(self.len) {
            Some(entry) => {
                *entry = attempt;
                self.len += 1;
                Ok(())
            }
            None => Err(attempt),
        }
    }

    /// The attempt at `index`.
    pub(super) fn get_mut(&mut self, index: usize) -> &mut Attempt {
        &mut self.entries[..self.len][index]
    }

    /// Takes the attempt at `index` out.
    pub(super) fn take(&mut self, index: usize) -> Attempt {
        let attempt = self.entries[index];
        self.len -= 1;
        self.entries.swap(index, self.len);
        attempt
    }

    /// The attempt to hand to a socket first among those `eligible`: a
    /// proven one before any other, the oldest (at `now`) first.
    pub(super) fn first(&self, now: Instant, eligible: impl Fn(&Attempt) -> bool) -> Option<usize> {
        self.waiting()
            .iter()
            .enumerate()
            .filter(|(_, attempt)| eligible(attempt))
            .min_by_key(|(_, attempt)| {
                (
                    !attempt.proven,
                    core::cmp::Reverse(attempt.arrived.age(now)),
                )
            })
            .map(|(index, _)| index)
    }

    /// The attempt that gives way when the table is full and a `newcomer`
    /// arrives: the oldest unproven one; if every one is proven, the oldest
    /// of them, but only for a proven newcomer (`None`: the newcomer gives
    /// way itself).
    pub(super) fn victim(&self, newcomer: &Attempt, now: Instant) -> Option<usize> {
        let oldest = |proven: bool| {
            self.waiting()
                .iter()
                .enumerate()
                .filter(|(_, attempt)| attempt.proven == proven)
                .min_by_key(|(_, attempt)| core::cmp::Reverse(attempt.arrived.age(now)))
                .map(|(index, _)| index)
        };
        oldest(false).or_else(|| oldest(true).filter(|_| newcomer.proven))
    }

    /// Marks the attempts from `address` proven.
    pub(super) fn prove(&mut self, address: IpAddress) {
        let len = self.len;
        for attempt in &mut self.entries[..len] {
            if attempt.syn.peer.addr == address {
                attempt.proven = true;
            }
        }
    }

    /// Whether an attempt of a proven peer waits that has waited `wait` by
    /// `now`.
    pub(super) fn proven_waited(&self, now: Instant, wait: Duration) -> bool {
        self.waiting()
            .iter()
            .any(|attempt| attempt.proven && attempt.arrived.age(now) >= wait)
    }

    /// When the next attempt will have waited `wait`, if one has not yet.
    pub(super) fn next_to_wait(&self, now: Instant, wait: Duration) -> Option<Instant> {
        self.waiting()
            .iter()
            .map(|attempt| attempt.arrived.when_aged(wait, now))
            .filter(|&at| at > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::syn::tests::{CLIENT, syn_from};
    use smoltcp::wire::Ipv4Address;

    fn attempt(port: u16, at_millis: i64, proven: bool) -> Attempt {
        Attempt {
            syn: syn_from(CLIENT, port),
            arrived: Stamp::at(Instant::from_millis(at_millis)),
            proven,
            announced: false,
        }
    }

    #[test]
    fn a_full_backlog_hands_the_newcomer_back() {
        let mut table = [Attempt::EMPTY; 2];
        let mut backlog = Backlog::new(&mut table);
        assert!(backlog.push(attempt(1, 0, false)).is_ok());
        assert!(backlog.push(attempt(2, 0, false)).is_ok());
        assert_eq!(
            backlog.push(attempt(3, 0, false)),
            Err(attempt(3, 0, false))
        );
        assert_eq!(backlog.len(), 2);
    }

    #[test]
    fn proven_attempts_go_first_then_the_oldest() {
        let mut table = [Attempt::EMPTY; 4];
        let mut backlog = Backlog::new(&mut table);
        for entry in [
            attempt(1, 10, false),
            attempt(2, 30, true),
            attempt(3, 20, true),
        ] {
            backlog.push(entry).unwrap();
        }
        let now = Instant::from_millis(40);
        let first = backlog.first(now, |_| true).unwrap();
        assert_eq!(backlog.take(first).syn.peer.port, 3);
        let first = backlog.first(now, |_| true).unwrap();
        assert_eq!(backlog.take(first).syn.peer.port, 2);
        assert_eq!(
            backlog.first(now, |a| a.arrived.age(now) < Duration::from_millis(30)),
            None
        );
    }

    #[test]
    fn the_oldest_unproven_attempt_gives_way_and_never_a_proven_one_to_an_unproven() {
        let mut table = [Attempt::EMPTY; 3];
        let mut backlog = Backlog::new(&mut table);
        for entry in [
            attempt(1, 5, true),
            attempt(2, 20, false),
            attempt(3, 10, false),
        ] {
            backlog.push(entry).unwrap();
        }
        let unproven = attempt(4, 30, false);
        let victim = backlog.victim(&unproven, Instant::from_millis(40)).unwrap();
        assert_eq!(backlog.take(victim).syn.peer.port, 3);
        backlog.take(backlog.victim(&unproven, Instant::from_millis(40)).unwrap());
        assert_eq!(
            backlog.victim(&unproven, Instant::from_millis(40)),
            None,
            "only proven ones left"
        );
        let proven = attempt(5, 30, true);
        assert_eq!(backlog.victim(&proven, Instant::from_millis(40)), Some(0));
    }

    #[test]
    fn a_merged_copy_keeps_its_age_and_an_arp_proves_it() {
        let mut table = [Attempt::EMPTY; 2];
        let mut backlog = Backlog::new(&mut table);
        backlog.push(attempt(1, 5, false)).unwrap();
        let connection = syn_from(CLIENT, 1).connection();
        let index = backlog.position(connection).unwrap();
        backlog.merge(index, syn_from(CLIENT, 1), false);
        assert_eq!(
            backlog.waiting()[0].arrived,
            Stamp::at(Instant::from_millis(5))
        );
        backlog.prove(Ipv4Address::new(10, 0, 0, 99).into());
        assert!(!backlog.waiting()[0].proven);
        backlog.prove(CLIENT.into());
        assert!(backlog.waiting()[0].proven);
    }

    #[test]
    fn waits_are_counted_from_arrival() {
        let mut table = [Attempt::EMPTY; 2];
        let mut backlog = Backlog::new(&mut table);
        backlog.push(attempt(1, 100, false)).unwrap();
        backlog.push(attempt(2, 300, false)).unwrap();
        let wait = Duration::from_millis(500);
        let now = Instant::from_millis(650);
        assert_eq!(
            backlog.next_to_wait(now, wait),
            Some(Instant::from_millis(800))
        );
        assert!(!backlog.proven_waited(now, wait), "nobody proved itself");
        backlog.prove(CLIENT.into());
        assert!(backlog.proven_waited(now, wait));
        assert!(!backlog.proven_waited(Instant::from_millis(599), wait));
    }
}

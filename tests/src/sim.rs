//! The driver: parties polled in virtual time.

use core::any::Any;
use core::cmp::Reverse;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Index, IndexMut};
use std::collections::{BTreeMap, BinaryHeap};

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpCidr;

use crate::clock::{Clock, earliest};
use crate::host::Host;
use crate::segment::{Port, PortConfig, Segment};

/// Rounds at one instant in which parties keep asking to be polled now yet
/// no frame moves, before the run is declared a livelock.
const LIVELOCK_ROUNDS: u32 = 1000;

/// Anything the simulation polls: a host, a server with its own interface
/// and sockets, a scripted client.
///
/// A party owns what it needs (typically a [`Port`], a smoltcp
/// `Interface` and its sockets) and does all its work due at `now` in
/// [`poll`](Party::poll).
///
/// ```
/// use reversal_sim::{Party, Port};
/// use smoltcp::iface::{Interface, SocketSet};
/// use smoltcp::time::Instant;
///
/// /// A party that owns its interface and sockets, like a server would.
/// struct Server {
///     port: Port,
///     iface: Interface,
///     sockets: SocketSet<'static>,
/// }
///
/// impl Party for Server {
///     fn poll(&mut self, now: Instant) -> Option<Instant> {
///         self.iface.poll(now, &mut self.port, &mut self.sockets);
///         // ... serve the sockets here ...
///         self.iface.poll_at(now, &self.sockets)
///     }
/// }
/// ```
pub trait Party {
    /// Does everything due at `now`: takes the frames that have arrived,
    /// runs the party's logic, transmits.
    ///
    /// Returns when the party next needs polling even if no frame arrives
    /// (a timer), or `None` if only a frame can give it work. A time at or
    /// before `now` means "poll me again right away". The simulation polls
    /// every party in every round, so returning too early only costs time;
    /// returning too late delays the party's timers. Asking for "now" over
    /// and over while no frame moves is reported as
    /// [`RunError::Livelock`] after a thousand rounds.
    fn poll(&mut self, now: Instant) -> Option<Instant>;
}

/// A typed reference to a party added to a [`Sim`]; index the simulation
/// with it to reach the party: `sim[id]`.
pub struct PartyId<P> {
    index: usize,
    party: PhantomData<fn() -> P>,
}

impl<P> Clone for PartyId<P> {
    fn clone(&self) -> PartyId<P> {
        *self
    }
}

impl<P> Copy for PartyId<P> {}

impl<P> fmt::Debug for PartyId<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartyId({})", self.index)
    }
}

/// Why a run stopped before its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunError {
    /// No party has a deadline and no frame is in flight, so nothing can
    /// happen any more, yet the goal is not reached.
    Stalled {
        /// The simulation's seed.
        seed: u64,
        /// Virtual time when it stalled.
        at: Instant,
    },
    /// The time limit passed before the goal was reached.
    TimedOut {
        /// The simulation's seed.
        seed: u64,
        /// Virtual time at the limit.
        at: Instant,
    },
    /// Parties kept asking to be polled at the same instant but no frame
    /// moved: some party returns a deadline it never acts on.
    Livelock {
        /// The simulation's seed.
        seed: u64,
        /// The instant time got stuck at.
        at: Instant,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Stalled { seed, at } => write!(
                f,
                "stalled at {at} with seed {seed}: no party has a deadline and no frame is in flight"
            ),
            RunError::TimedOut { seed, at } => {
                write!(
                    f,
                    "timed out at {at} with seed {seed}: the goal was not reached"
                )
            }
            RunError::Livelock { seed, at } => write!(
                f,
                "livelock at {at} with seed {seed}: parties ask to be polled now but nothing moves"
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// What one round left to do.
enum Round {
    /// Time moved on, or something is due at the same instant.
    Continue,
    /// Nothing happens before the end of the run.
    QuietUntilEnd,
    /// Nothing will ever happen.
    Idle,
}

/// Something to do at an instant, given with [`Sim::schedule`].
type Action = Box<dyn FnOnce(&mut Sim)>;

trait Registered: Party + Any {}

impl<P: Party + Any> Registered for P {}

/// A simulation: one [`Segment`], a virtual [`Clock`] and the parties it
/// polls.
///
/// Each round polls every party at the current instant, in the order they
/// were added. When no party and no frame is due at that instant, the clock
/// jumps to the earliest deadline or frame delivery; it never sleeps, so a
/// two-minute timeout costs microseconds of real time.
///
/// ```
/// use reversal_sim::{PortConfig, Sim};
/// use smoltcp::time::{Duration, Instant};
/// use smoltcp::wire::{IpAddress, IpCidr};
///
/// let mut sim = Sim::new(1);
/// let a = sim.add_host(PortConfig::default(), &[IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24)]);
/// let b = sim.add_host(PortConfig::default(), &[IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)]);
/// let (sent, received) = (sim[a].add_udp_socket(4, 1024), sim[b].add_udp_socket(4, 1024));
/// sim[a].udp(sent).bind(7000).unwrap();
/// sim[b].udp(received).bind(7000).unwrap();
/// sim[a].udp(sent).send_slice(b"ping", (IpAddress::v4(10, 0, 0, 2), 7000)).unwrap();
///
/// sim.run_until(Duration::from_secs(5), |sim| sim[b].udp(received).can_recv())
///     .unwrap();
/// let (payload, _) = sim[b].udp(received).recv().unwrap();
/// assert_eq!(payload, b"ping");
/// assert!(sim.now() < Instant::from_secs(1));
/// ```
pub struct Sim {
    clock: Clock,
    segment: Segment,
    /// Every party added, `None` while it is crashed.
    parties: Vec<Option<Box<dyn Registered>>>,
    /// Instants asked for with `wake_at`, earliest on top.
    wake_ups: BinaryHeap<Reverse<Instant>>,
    /// Actions given with `schedule`, in the order they are due.
    actions: BTreeMap<(Instant, u64), Action>,
    next_action: u64,
    /// Consecutive rounds at the current instant in which nothing moved.
    still_rounds: u32,
}

impl Sim {
    /// A simulation at time zero with an empty segment whose faults derive
    /// from `seed`.
    pub fn new(seed: u64) -> Sim {
        Sim::on(Segment::new(seed))
    }

    /// A simulation at time zero on `segment`.
    pub(crate) fn on(segment: Segment) -> Sim {
        Sim {
            clock: Clock::new(),
            segment,
            parties: Vec::new(),
            wake_ups: BinaryHeap::new(),
            actions: BTreeMap::new(),
            next_action: 0,
            still_rounds: 0,
        }
    }

    /// The seed of the simulation's segment.
    pub fn seed(&self) -> u64 {
        self.segment.seed()
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The simulation's segment, for attaching ports, changing faults,
    /// reading stats, the trace hash and the capture.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// Attaches a port to the segment; shorthand for
    /// `sim.segment().attach(config)`.
    pub fn attach(&self, config: PortConfig) -> Port {
        self.segment.attach(config)
    }

    /// Adds a party; from now on every round polls it.
    pub fn add<P: Party + 'static>(&mut self, party: P) -> PartyId<P> {
        self.parties.push(Some(Box::new(party)));
        PartyId {
            index: self.parties.len() - 1,
            party: PhantomData,
        }
    }

    /// Attaches a port with `config` and adds a [`Host`] on it with the
    /// given addresses.
    ///
    /// # Panics
    ///
    /// If there are more addresses than smoltcp's interface holds.
    pub fn add_host(&mut self, config: PortConfig, addresses: &[IpCidr]) -> PartyId<Host> {
        let host = Host::new(self.attach(config), addresses, self.now());
        self.add(host)
    }

    /// Crashes a party: drops it with all its state, as a board that loses
    /// power. Its [`Port`] is dropped with it, so frames to it are lost
    /// until [`restart`](Sim::restart). Indexing the simulation with `id`
    /// panics meanwhile.
    ///
    /// ```
    /// use reversal_sim::{PortConfig, Sim};
    /// use smoltcp::time::Duration;
    /// use smoltcp::wire::{IpAddress, IpCidr};
    ///
    /// let mut sim = Sim::new(1);
    /// let address = [IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24)];
    /// let board = sim.add_host(PortConfig::default(), &address);
    /// let port = sim[board].port().id();
    /// sim.crash(board);
    /// assert!(!sim.is_running(board));
    /// sim.run_for(Duration::from_secs(5)).unwrap();
    ///
    /// // It boots again on the same port, with the same MAC and address.
    /// let host = reversal_sim::Host::new(sim.segment().reattach(port, None), &address, sim.now());
    /// sim.restart(board, host);
    /// assert!(sim.is_running(board));
    /// ```
    ///
    /// # Panics
    ///
    /// If `id` comes from another simulation.
    pub fn crash<P: Party + 'static>(&mut self, id: PartyId<P>) {
        self.parties[id.index] = None;
    }

    /// Puts `party`, freshly built, in the place of the crashed party `id`:
    /// from now on every round polls it. Build it on the old port with
    /// [`Segment::reattach`] to keep its cable, or on a new one.
    ///
    /// See [`crash`](Sim::crash).
    ///
    /// # Panics
    ///
    /// If `id` comes from another simulation.
    pub fn restart<P: Party + 'static>(&mut self, id: PartyId<P>, party: P) {
        self.parties[id.index] = Some(Box::new(party));
    }

    /// Whether a party is running (not crashed).
    ///
    /// # Panics
    ///
    /// If `id` comes from another simulation.
    pub fn is_running<P>(&self, id: PartyId<P>) -> bool {
        self.parties[id.index].is_some()
    }

    /// Runs `action` when the clock reaches `at` (at once if it is not
    /// ahead), before the parties are polled at that instant: link flaps,
    /// partitions, crashes and restarts on a schedule.
    ///
    /// ```
    /// use reversal_sim::{PortConfig, Sim};
    /// use smoltcp::time::{Duration, Instant};
    ///
    /// let mut sim = Sim::new(1);
    /// let port = sim.attach(PortConfig::default());
    /// let id = port.id();
    /// // The cable is out from 2 s to 5 s.
    /// sim.schedule(Instant::from_secs(2), move |sim| sim.segment().link_down(id));
    /// sim.schedule(Instant::from_secs(5), move |sim| sim.segment().link_up(id));
    /// sim.run_for(Duration::from_secs(3)).unwrap();
    /// assert!(!sim.segment().is_link_up(id, reversal_sim::Direction::Tx));
    /// sim.run_for(Duration::from_secs(3)).unwrap();
    /// assert!(sim.segment().is_link_up(id, reversal_sim::Direction::Tx));
    /// ```
    pub fn schedule(&mut self, at: Instant, action: impl FnOnce(&mut Sim) + 'static) {
        self.actions
            .insert((at, self.next_action), Box::new(action));
        self.next_action += 1;
    }

    /// Makes the clock stop at `at` (if it is still ahead), so that
    /// [`run_until`](Sim::run_until)'s closure runs at that instant even if
    /// no party has anything to do then: a timer for code that is not a
    /// party.
    pub fn wake_at(&mut self, at: Instant) {
        if at > self.now() {
            self.wake_ups.push(Reverse(at));
        }
    }

    /// Runs until `done` returns true, for at most `limit` of virtual time.
    ///
    /// `done` is called before every round; it may also act on the
    /// parties (write to a socket, say), since the next round polls them.
    /// On success the clock stands at the instant `done` became true.
    ///
    /// # Errors
    ///
    /// [`RunError::TimedOut`] when the limit passes (the clock then stands
    /// at the limit), [`RunError::Stalled`] when nothing can happen any more,
    /// [`RunError::Livelock`] when time cannot move on. Each carries the
    /// seed, so the failure can be replayed.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> Result<(), RunError> {
        let end = self.now() + limit;
        loop {
            if done(self) {
                return Ok(());
            }
            match self.round(end)? {
                Round::Continue => {}
                // The last round may have reached the goal.
                Round::QuietUntilEnd if done(self) => return Ok(()),
                Round::Idle if done(self) => return Ok(()),
                Round::QuietUntilEnd => {
                    return Err(RunError::TimedOut {
                        seed: self.seed(),
                        at: self.now(),
                    });
                }
                Round::Idle => {
                    return Err(RunError::Stalled {
                        seed: self.seed(),
                        at: self.now(),
                    });
                }
            }
        }
    }

    /// Runs everything due within the next `duration` of virtual time and
    /// leaves the clock at its end, e.g. to let an idle timeout expire.
    ///
    /// # Errors
    ///
    /// [`RunError::Livelock`] when time cannot move on.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), RunError> {
        let end = self.now() + duration;
        loop {
            match self.round(end)? {
                Round::Continue => {}
                Round::QuietUntilEnd | Round::Idle => {
                    self.set_clock(end);
                    return Ok(());
                }
            }
        }
    }

    /// Polls every party once at the current instant, then moves the clock
    /// to the next thing due, if that is no later than `end`.
    fn round(&mut self, end: Instant) -> Result<Round, RunError> {
        let now = self.now();
        self.segment.advance_to(now);
        let moved_before = self.frames_moved();
        while let Some(entry) = self.actions.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let action = entry.remove();
            action(self);
        }
        let mut next = self.actions.first_key_value().map(|(&(at, _), _)| at);
        for party in self.parties.iter_mut().flatten() {
            next = earliest(next, party.poll(now));
        }
        next = earliest(next, self.segment.next_delivery());
        while self.wake_ups.peek().is_some_and(|&Reverse(at)| at <= now) {
            self.wake_ups.pop();
        }
        next = earliest(next, self.wake_ups.peek().map(|&Reverse(at)| at));
        let Some(next) = next else {
            return Ok(Round::Idle);
        };
        if next <= now {
            if self.frames_moved() == moved_before {
                self.still_rounds += 1;
                if self.still_rounds > LIVELOCK_ROUNDS {
                    return Err(RunError::Livelock {
                        seed: self.seed(),
                        at: now,
                    });
                }
            } else {
                self.still_rounds = 0;
            }
            return Ok(Round::Continue);
        }
        self.still_rounds = 0;
        if next > end {
            self.set_clock(end);
            return Ok(Round::QuietUntilEnd);
        }
        self.set_clock(next);
        Ok(Round::Continue)
    }

    /// Moves the clock, and the segment's time with it.
    fn set_clock(&mut self, at: Instant) {
        self.clock.advance_to(at);
        self.segment.advance_to(self.clock.now());
    }

    fn frames_moved(&self) -> u64 {
        let stats = self.segment.stats();
        stats.transmitted + stats.delivered
    }
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.clock.now())
            .field("segment", &self.segment)
            .field("parties", &self.parties.len())
            .finish()
    }
}

impl<P: Party + 'static> Index<PartyId<P>> for Sim {
    type Output = P;

    /// # Panics
    ///
    /// If `id` comes from another simulation and names no party of this
    /// type here, or names a crashed party.
    fn index(&self, id: PartyId<P>) -> &P {
        let party: &dyn Any = &**self.parties[id.index]
            .as_ref()
            .expect("the party has crashed and not restarted");
        party
            .downcast_ref()
            .expect("PartyId used with a Sim that did not issue it")
    }
}

impl<P: Party + 'static> IndexMut<PartyId<P>> for Sim {
    fn index_mut(&mut self, id: PartyId<P>) -> &mut P {
        let party: &mut dyn Any = &mut **self.parties[id.index]
            .as_mut()
            .expect("the party has crashed and not restarted");
        party
            .downcast_mut()
            .expect("PartyId used with a Sim that did not issue it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A party with a timer that fires at fixed instants.
    struct Timer {
        fire_at: Vec<Instant>,
        fired: Vec<Instant>,
    }

    impl Party for Timer {
        fn poll(&mut self, now: Instant) -> Option<Instant> {
            while self.fire_at.first().is_some_and(|&at| at <= now) {
                self.fire_at.remove(0);
                self.fired.push(now);
            }
            self.fire_at.first().copied()
        }
    }

    /// A party that always wants to be polled now and never does anything.
    struct Restless;

    impl Party for Restless {
        fn poll(&mut self, now: Instant) -> Option<Instant> {
            Some(now)
        }
    }

    fn timer(seconds: &[i64]) -> Timer {
        Timer {
            fire_at: seconds.iter().map(|&s| Instant::from_secs(s)).collect(),
            fired: Vec::new(),
        }
    }

    #[test]
    fn clock_jumps_to_each_deadline() {
        let mut sim = Sim::new(0);
        let id = sim.add(timer(&[3, 120]));
        sim.run_until(Duration::from_secs(600), |sim| sim[id].fired.len() == 2)
            .unwrap();
        assert_eq!(
            sim[id].fired,
            [Instant::from_secs(3), Instant::from_secs(120)]
        );
        assert_eq!(sim.now(), Instant::from_secs(120));
    }

    #[test]
    fn limit_before_the_deadline_times_out_at_the_limit() {
        let mut sim = Sim::new(4);
        let id = sim.add(timer(&[120]));
        let result = sim.run_until(Duration::from_secs(60), |sim| !sim[id].fired.is_empty());
        assert_eq!(
            result,
            Err(RunError::TimedOut {
                seed: 4,
                at: Instant::from_secs(60)
            })
        );
        assert!(sim[id].fired.is_empty());
    }

    #[test]
    fn nothing_left_to_do_is_a_stall() {
        let mut sim = Sim::new(5);
        let id = sim.add(timer(&[1]));
        let result = sim.run_until(Duration::from_secs(60), |sim| sim[id].fired.len() == 2);
        assert_eq!(
            result,
            Err(RunError::Stalled {
                seed: 5,
                at: Instant::from_secs(1)
            })
        );
    }

    #[test]
    fn a_party_that_never_lets_time_move_is_a_livelock() {
        let mut sim = Sim::new(6);
        sim.add(Restless);
        let result = sim.run_until(Duration::from_secs(1), |_| false);
        assert_eq!(
            result,
            Err(RunError::Livelock {
                seed: 6,
                at: Instant::ZERO
            })
        );
    }

    #[test]
    fn run_for_ends_at_the_requested_time() {
        let mut sim = Sim::new(0);
        let id = sim.add(timer(&[2, 30]));
        sim.run_for(Duration::from_secs(10)).unwrap();
        assert_eq!(sim[id].fired, [Instant::from_secs(2)]);
        assert_eq!(sim.now(), Instant::from_secs(10));
    }

    #[test]
    fn wake_at_stops_the_clock_for_the_closure() {
        let mut sim = Sim::new(0);
        sim.wake_at(Instant::from_secs(30));
        let mut seen = Vec::new();
        sim.run_until(Duration::from_secs(60), |sim| {
            seen.push(sim.now());
            sim.now() >= Instant::from_secs(30)
        })
        .unwrap();
        assert_eq!(seen, [Instant::ZERO, Instant::from_secs(30)]);
    }

    #[test]
    fn errors_name_the_seed() {
        let error = RunError::Stalled {
            seed: 1234,
            at: Instant::from_millis(1500),
        };
        assert!(error.to_string().contains("seed 1234"), "{error}");
    }

    #[test]
    #[should_panic(expected = "did not issue it")]
    fn a_party_id_of_another_type_is_refused() {
        let mut other = Sim::new(0);
        let foreign = other.add(Restless);
        let mut sim = Sim::new(0);
        sim.add(timer(&[1]));
        let _ = &sim[foreign];
    }
}

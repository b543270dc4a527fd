//! The model of one direction of one port's cable: latency with jitter, a
//! bandwidth and a bounded queue in front of it, and the faults on the wire.

use core::fmt;
use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Normal};
use smoltcp::time::{Duration, Instant};

use crate::faults::{Direction, Faults};
use crate::segment::PortId;

/// Mixed into the seed of the links' random streams so they never share
/// one with the faults (which use the segment's seed as it is).
const LINK_STREAM_KEY: u64 = 0x6c69_6e6b_6d6f_6465;

/// How long a frame takes to cross a link once it has left the queue: a
/// fixed delay or one drawn per frame from a distribution.
///
/// Unless the link allows reordering ([`Link::reorder`]), a frame never
/// arrives before one sent ahead of it on the same link: jitter stretches
/// the gaps between frames but keeps their order, as on one cable.
///
/// ```
/// use reversal_sim::Latency;
/// use smoltcp::time::Duration;
///
/// let lan = Latency::fixed(Duration::from_micros(200));
/// let wifi = Latency::uniform(Duration::from_millis(2), Duration::from_millis(8));
/// let wan = Latency::normal(Duration::from_millis(40), Duration::from_millis(5));
/// let congested = Latency::exponential(Duration::from_millis(10), Duration::from_millis(20));
/// assert_eq!(lan.mean(), Duration::from_micros(200));
/// assert_eq!(wifi.mean(), Duration::from_millis(5));
/// assert_eq!(wan.mean(), Duration::from_millis(40));
/// assert_eq!(congested.mean(), Duration::from_millis(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    shape: Shape,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Fixed(Duration),
    Uniform { min: Duration, max: Duration },
    Normal { mean: Duration, std_dev: Duration },
    Exponential { min: Duration, mean_extra: Duration },
}

impl Latency {
    /// The same delay for every frame; draws nothing from the seed.
    pub const fn fixed(delay: Duration) -> Latency {
        Latency {
            shape: Shape::Fixed(delay),
        }
    }

    /// A delay drawn uniformly from `min..=max` (swapped if given the
    /// wrong way round).
    pub fn uniform(min: Duration, max: Duration) -> Latency {
        Latency {
            shape: Shape::Uniform {
                min: min.min(max),
                max: max.max(min),
            },
        }
    }

    /// A delay drawn from a normal distribution around `mean`, cut at zero:
    /// a link with jitter of about `std_dev`.
    pub const fn normal(mean: Duration, std_dev: Duration) -> Latency {
        Latency {
            shape: Shape::Normal { mean, std_dev },
        }
    }

    /// At least `min`, plus an exponentially distributed extra delay with
    /// mean `mean_extra`: mostly fast, with a long tail, like a path
    /// through busy queues.
    pub const fn exponential(min: Duration, mean_extra: Duration) -> Latency {
        Latency {
            shape: Shape::Exponential { min, mean_extra },
        }
    }

    /// The mean delay (before cutting at zero, for [`normal`](Latency::normal)).
    pub fn mean(&self) -> Duration {
        match self.shape {
            Shape::Fixed(delay) => delay,
            Shape::Uniform { min, max } => (min + max) / 2,
            Shape::Normal { mean, .. } => mean,
            Shape::Exponential { min, mean_extra } => min + mean_extra,
        }
    }

    /// The shortest delay it can draw.
    pub fn min(&self) -> Duration {
        match self.shape {
            Shape::Fixed(delay) => delay,
            Shape::Uniform { min, .. } | Shape::Exponential { min, .. } => min,
            Shape::Normal { .. } => Duration::ZERO,
        }
    }

    /// Draws one frame's delay; a fixed latency draws nothing.
    fn draw(&self, rng: &mut ChaCha8Rng) -> Duration {
        let micros = |duration: Duration| duration.total_micros() as f64;
        let drawn = match self.shape {
            Shape::Fixed(delay) => return delay,
            Shape::Uniform { min, max } => {
                return Duration::from_micros(
                    rng.random_range(min.total_micros()..=max.total_micros()),
                );
            }
            Shape::Normal { mean, std_dev } => Normal::new(micros(mean), micros(std_dev))
                .map_or(micros(mean), |normal| normal.sample(rng)),
            Shape::Exponential { min, mean_extra } => {
                let extra =
                    Exp::new(1.0 / micros(mean_extra).max(1.0)).map_or(0.0, |exp| exp.sample(rng));
                micros(min) + extra
            }
        };
        Duration::from_micros(drawn.max(0.0).round() as u64)
    }
}

impl Default for Latency {
    /// No delay.
    fn default() -> Latency {
        Latency::fixed(Duration::ZERO)
    }
}

/// The rate at which a link sends bits.
///
/// ```
/// use reversal_sim::Bandwidth;
///
/// assert_eq!(Bandwidth::mbps(10).bits_per_second(), 10_000_000);
/// assert_eq!(Bandwidth::kbps(64).to_string(), "64 kbit/s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth {
    bits_per_second: u64,
}

impl Bandwidth {
    /// `bits_per_second`, at least one.
    pub const fn bps(bits_per_second: u64) -> Bandwidth {
        Bandwidth {
            bits_per_second: if bits_per_second == 0 {
                1
            } else {
                bits_per_second
            },
        }
    }

    /// Kilobits (1000 bits) per second.
    pub const fn kbps(kilobits: u64) -> Bandwidth {
        Bandwidth::bps(kilobits * 1000)
    }

    /// Megabits (10⁶ bits) per second.
    pub const fn mbps(megabits: u64) -> Bandwidth {
        Bandwidth::bps(megabits * 1_000_000)
    }

    /// The rate in bits per second.
    pub const fn bits_per_second(&self) -> u64 {
        self.bits_per_second
    }

    /// How long `bytes` take to send, rounded up to a microsecond.
    pub const fn time_to_send(&self, bytes: usize) -> Duration {
        let bits = bytes as u64 * 8 * 1_000_000;
        Duration::from_micros(bits.div_ceil(self.bits_per_second))
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.bits_per_second;
        match () {
            () if bits >= 1_000_000 && bits.is_multiple_of(1_000_000) => {
                write!(f, "{} Mbit/s", bits / 1_000_000)
            }
            () if bits >= 1000 && bits.is_multiple_of(1000) => write!(f, "{} kbit/s", bits / 1000),
            () => write!(f, "{bits} bit/s"),
        }
    }
}

/// What a link does with frames that arrive while it is still sending:
/// they wait in a queue, which may be bounded.
///
/// The queue counts bytes (the frames' lengths), the one being sent
/// included. It only matters on a link with a [`Bandwidth`]; without one
/// every frame leaves at once.
///
/// ```
/// use reversal_sim::Queue;
///
/// let router = Queue::drop_tail(64 * 1024);
/// let aqm = Queue::red(16 * 1024, 48 * 1024, 0.1, 64 * 1024);
/// assert_eq!(router.limit(), Some(64 * 1024));
/// assert_eq!(aqm.limit(), Some(64 * 1024));
/// assert_eq!(Queue::default().limit(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Queue {
    policy: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Policy {
    Unbounded,
    DropTail {
        limit: usize,
    },
    Red {
        min: usize,
        max: usize,
        max_p: f64,
        limit: usize,
    },
}

/// Weight of the newest sample in RED's average queue length, as in
/// Floyd and Jacobson's paper.
const RED_WEIGHT: f64 = 0.002;

impl Queue {
    /// A queue without bound: nothing is lost, frames only wait.
    pub const fn unbounded() -> Queue {
        Queue {
            policy: Policy::Unbounded,
        }
    }

    /// A queue of at most `limit` bytes that drops the frames arriving
    /// while it is full (a plain FIFO, as most switches and embedded MACs).
    pub const fn drop_tail(limit: usize) -> Queue {
        Queue {
            policy: Policy::DropTail { limit },
        }
    }

    /// Random early detection (Floyd and Jacobson, 1993): below an
    /// average of `min` bytes nothing is dropped, between `min` and `max`
    /// an arriving frame is dropped with a probability rising to `max_p`,
    /// above `max` every one is; the queue never holds more than `limit`
    /// bytes. The random draws come from the seed.
    pub const fn red(min: usize, max: usize, max_p: f64, limit: usize) -> Queue {
        Queue {
            policy: Policy::Red {
                min,
                max,
                max_p,
                limit,
            },
        }
    }

    /// The most bytes the queue holds, if bounded.
    pub const fn limit(&self) -> Option<usize> {
        match self.policy {
            Policy::Unbounded => None,
            Policy::DropTail { limit } | Policy::Red { limit, .. } => Some(limit),
        }
    }
}

impl Default for Queue {
    /// Unbounded.
    fn default() -> Queue {
        Queue::unbounded()
    }
}

/// One direction of a port's cable, as netem would set it up: a queue in
/// front of a link of some bandwidth, then the faults on the wire, then the
/// latency.
///
/// The default is a perfect link: no delay, unlimited bandwidth, nothing
/// lost. A frame's trip: it waits in the [`Queue`] (or is dropped there)
/// while frames ahead of it are sent at the [`Bandwidth`]; the
/// [`Faults`] may then lose, corrupt, duplicate or hold it back on the
/// wire (a lost frame still took its time on the link); then it takes the
/// [`Latency`] to arrive.
///
/// ```
/// use reversal_sim::{Bandwidth, Faults, Latency, Link, Queue};
/// use smoltcp::time::Duration;
///
/// // An ADSL-like uplink: 1 Mbit/s, a 32 KiB buffer, 20 ms ± 2 ms, 1 % loss.
/// let uplink = Link::new()
///     .bandwidth(Bandwidth::mbps(1))
///     .queue(Queue::drop_tail(32 * 1024))
///     .latency(Latency::normal(Duration::from_millis(20), Duration::from_millis(2)))
///     .faults(Faults { drop: 0.01, ..Faults::default() });
/// assert_eq!(uplink.bandwidth, Some(Bandwidth::mbps(1)));
/// assert!(!uplink.reorder);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Link {
    /// The delay after the frame has been sent (propagation and jitter).
    pub latency: Latency,
    /// The rate frames are sent at; `None` sends each one at once.
    pub bandwidth: Option<Bandwidth>,
    /// Where frames wait for the link.
    pub queue: Queue,
    /// What goes wrong on the wire.
    pub faults: Faults,
    /// Whether jitter may reorder frames (off: a frame never overtakes one
    /// sent before it; the `delay` fault still does, as it is meant to).
    pub reorder: bool,
}

impl Link {
    /// A perfect link: no delay, no bandwidth limit, no faults.
    pub const fn new() -> Link {
        Link {
            latency: Latency::fixed(Duration::ZERO),
            bandwidth: None,
            queue: Queue::unbounded(),
            faults: Faults::NONE,
            reorder: false,
        }
    }

    /// With this latency.
    pub const fn latency(mut self, latency: Latency) -> Link {
        self.latency = latency;
        self
    }

    /// Sending at this rate.
    pub const fn bandwidth(mut self, bandwidth: Bandwidth) -> Link {
        self.bandwidth = Some(bandwidth);
        self
    }

    /// With this queue in front of the link.
    pub const fn queue(mut self, queue: Queue) -> Link {
        self.queue = queue;
        self
    }

    /// With these faults on the wire.
    pub const fn faults(mut self, faults: Faults) -> Link {
        self.faults = faults;
        self
    }

    /// Letting jitter reorder frames.
    pub const fn reorder(mut self, reorder: bool) -> Link {
        self.reorder = reorder;
        self
    }
}

/// What one direction of one port's link has done.
///
/// ```
/// use reversal_sim::{Direction, PortConfig, Segment};
///
/// let segment = Segment::new(0);
/// let port = segment.attach(PortConfig::default());
/// let stats = segment.link_stats(port.id(), Direction::Tx);
/// assert_eq!(stats.frames, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LinkStats {
    /// Frames sent over the link (lost ones on the wire included).
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames the queue had no room for.
    pub queue_drops: u64,
    /// Of those, dropped early by RED rather than by a full queue.
    pub early_drops: u64,
    /// The most bytes that were waiting at once.
    pub max_backlog: usize,
}

/// The running state of one direction of one port's link.
#[derive(Debug)]
pub(crate) struct LinkState {
    link: Link,
    up: bool,
    /// Draws for jitter and RED; separate from the fault stream.
    rng: ChaCha8Rng,
    /// Frames in the queue or being sent: when each finishes, and its size.
    backlog: VecDeque<(Instant, usize)>,
    backlog_bytes: usize,
    /// When the frame being sent now finishes.
    busy_until: Instant,
    /// RED's average queue length in bytes.
    average: f64,
    /// Frames since RED last dropped one, for its spacing of drops.
    since_drop: u32,
    /// The latest arrival so far, which a frame may not beat unless the
    /// link reorders.
    last_arrival: Instant,
    stats: LinkStats,
}

impl LinkState {
    pub(crate) fn new(seed: u64, port: PortId, direction: Direction, link: Link) -> LinkState {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ LINK_STREAM_KEY);
        rng.set_stream(direction.stream(port));
        LinkState {
            link,
            up: true,
            rng,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            busy_until: Instant::ZERO,
            average: 0.0,
            since_drop: 0,
            last_arrival: Instant::ZERO,
            stats: LinkStats::default(),
        }
    }

    pub(crate) fn link(&self) -> &Link {
        &self.link
    }

    pub(crate) fn set_link(&mut self, link: Link) {
        self.link = link;
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up
    }

    pub(crate) fn set_up(&mut self, up: bool) {
        self.up = up;
    }

    pub(crate) fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Forgets the frames in the queue, as a host that loses power does.
    pub(crate) fn flush(&mut self) {
        self.backlog.clear();
        self.backlog_bytes = 0;
    }

    /// A frame of `len` bytes reaches the link at `at`: when it has been
    /// sent, or `None` if the queue had no room for it.
    pub(crate) fn send(&mut self, at: Instant, len: usize) -> Option<Instant> {
        let Some(bandwidth) = self.link.bandwidth else {
            self.count(len);
            return Some(at);
        };
        while self.backlog.front().is_some_and(|&(done, _)| done <= at) {
            let (_, sent) = self.backlog.pop_front().expect("peeked");
            self.backlog_bytes -= sent;
        }
        if !self.admit(at, len, bandwidth) {
            self.stats.queue_drops += 1;
            return None;
        }
        let done = at.max(self.busy_until) + bandwidth.time_to_send(len);
        self.busy_until = done;
        self.backlog.push_back((done, len));
        self.backlog_bytes += len;
        self.stats.max_backlog = self.stats.max_backlog.max(self.backlog_bytes);
        self.count(len);
        Some(done)
    }

    fn count(&mut self, len: usize) {
        self.stats.frames += 1;
        self.stats.bytes += len as u64;
    }

    /// Whether the queue takes a frame of `len` bytes now.
    fn admit(&mut self, at: Instant, len: usize, bandwidth: Bandwidth) -> bool {
        match self.link.queue.policy {
            Policy::Unbounded => true,
            Policy::DropTail { limit } => self.backlog_bytes + len <= limit,
            Policy::Red {
                min,
                max,
                max_p,
                limit,
            } => {
                if self.backlog_bytes == 0 {
                    // An idle queue: the average decays as if small frames
                    // had been sent all the while.
                    let idle = at - self.busy_until.min(at);
                    let frame_time = bandwidth.time_to_send(1500).total_micros().max(1);
                    let frames = (idle.total_micros() / frame_time).min(i32::MAX as u64);
                    self.average *= (1.0 - RED_WEIGHT).powi(frames as i32);
                }
                self.average =
                    (1.0 - RED_WEIGHT) * self.average + RED_WEIGHT * self.backlog_bytes as f64;
                if self.backlog_bytes + len > limit {
                    return false;
                }
                let early = if self.average < min as f64 {
                    false
                } else if self.average >= max as f64 {
                    true
                } else {
                    let base = max_p * (self.average - min as f64) / (max - min).max(1) as f64;
                    let spaced = base / (1.0 - f64::from(self.since_drop) * base).max(f64::EPSILON);
                    self.rng.random::<f64>() < spaced
                };
                if early {
                    self.since_drop = 0;
                    self.stats.early_drops += 1;
                    return false;
                }
                self.since_drop += 1;
                true
            }
        }
    }

    /// When a frame sent at `sent` arrives at the other end.
    pub(crate) fn arrival(&mut self, sent: Instant) -> Instant {
        let drawn = sent + self.link.latency.draw(&mut self.rng);
        if self.link.reorder {
            return drawn;
        }
        let arrival = drawn.max(self.last_arrival);
        self.last_arrival = arrival;
        arrival
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(link: Link) -> LinkState {
        LinkState::new(1, PortId::new(0), Direction::Tx, link)
    }

    #[test]
    fn a_link_without_bandwidth_sends_at_once() {
        let mut link = state(Link::new().queue(Queue::drop_tail(10)));
        for _ in 0..100 {
            assert_eq!(
                link.send(Instant::from_millis(3), 1500),
                Some(Instant::from_millis(3))
            );
        }
        assert_eq!(link.stats().queue_drops, 0);
    }

    #[test]
    fn frames_are_sent_one_after_another_at_the_bandwidth() {
        // 1 Mbit/s: 1250 bytes take 10 ms.
        let mut link = state(Link::new().bandwidth(Bandwidth::mbps(1)));
        let sent: Vec<_> = (0..3)
            .map(|_| link.send(Instant::ZERO, 1250).unwrap())
            .collect();
        assert_eq!(
            sent,
            [10, 20, 30].map(Instant::from_millis),
            "each waits for the one before"
        );
        // After the queue drained, a frame goes at once again.
        assert_eq!(
            link.send(Instant::from_millis(100), 1250),
            Some(Instant::from_millis(110))
        );
    }

    #[test]
    fn a_full_drop_tail_queue_drops_what_arrives() {
        let link = Link::new()
            .bandwidth(Bandwidth::mbps(1))
            .queue(Queue::drop_tail(3000));
        let mut link = state(link);
        let fates: Vec<_> = (0..4)
            .map(|_| link.send(Instant::ZERO, 1000).is_some())
            .collect();
        assert_eq!(fates, [true, true, true, false]);
        assert_eq!(link.stats().queue_drops, 1);
        assert_eq!(link.stats().max_backlog, 3000);
        // Once the first frame is out (8 ms), there is room for one more.
        assert!(link.send(Instant::from_millis(8), 1000).is_some());
        assert!(link.send(Instant::from_millis(8), 1000).is_none());
    }

    #[test]
    fn red_drops_some_frames_before_the_queue_is_full() {
        let queue = Queue::red(2_000, 20_000, 0.2, 200_000);
        let mut link = state(Link::new().bandwidth(Bandwidth::mbps(1)).queue(queue));
        let mut accepted = 0;
        for n in 0..2_000i64 {
            // Twice the link's rate: the queue builds up.
            if link.send(Instant::from_micros(n * 2_000), 500).is_some() {
                accepted += 1;
            }
        }
        let stats = link.stats();
        assert!(stats.early_drops > 0, "{stats:?}");
        assert_eq!(
            stats.early_drops, stats.queue_drops,
            "never full: {stats:?}"
        );
        assert!(stats.max_backlog < 200_000, "{stats:?}");
        assert!(accepted > 500, "{accepted}");
    }

    #[test]
    fn jitter_never_reorders_unless_asked() {
        let jittery =
            Link::new().latency(Latency::uniform(Duration::ZERO, Duration::from_millis(50)));
        let mut ordered = state(jittery);
        let arrivals: Vec<_> = (0..200)
            .map(|n| ordered.arrival(Instant::from_millis(n)))
            .collect();
        assert!(arrivals.windows(2).all(|pair| pair[0] <= pair[1]));

        let mut reordering = state(jittery.reorder(true));
        let arrivals: Vec<_> = (0..200)
            .map(|n| reordering.arrival(Instant::from_millis(n)))
            .collect();
        assert!(arrivals.windows(2).any(|pair| pair[0] > pair[1]));
    }

    #[test]
    fn distributions_stay_near_their_mean() {
        let mean = |latency: Latency| {
            let mut link = state(Link::new().latency(latency).reorder(true));
            let total: i64 = (0..10_000)
                .map(|_| (link.arrival(Instant::ZERO) - Instant::ZERO).total_micros() as i64)
                .sum();
            total / 10_000
        };
        let ms = Duration::from_millis;
        assert_eq!(mean(Latency::fixed(ms(7))), 7_000);
        assert!((4_900..5_100).contains(&mean(Latency::uniform(ms(0), ms(10)))));
        assert!((19_800..20_200).contains(&mean(Latency::normal(ms(20), ms(3)))));
        assert!((29_000..31_000).contains(&mean(Latency::exponential(ms(10), ms(20)))));
    }

    #[test]
    fn a_fixed_latency_draws_nothing() {
        let mut link = state(Link::new().latency(Latency::fixed(Duration::from_millis(1))));
        let before = link.rng.clone();
        link.arrival(Instant::ZERO);
        assert_eq!(link.rng, before);
    }

    #[test]
    fn bandwidth_reads_as_people_write_it() {
        assert_eq!(Bandwidth::mbps(100).to_string(), "100 Mbit/s");
        assert_eq!(Bandwidth::bps(1_500).to_string(), "1500 bit/s");
        assert_eq!(
            Bandwidth::mbps(100).time_to_send(1514),
            Duration::from_micros(122)
        );
    }
}

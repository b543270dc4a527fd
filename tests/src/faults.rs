//! Seeded fault injection for one direction of one port.

use core::cell::RefCell;
use core::fmt;
use core::str::FromStr;
use std::collections::BTreeSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoltcp::time::Duration;

use crate::segment::PortId;

/// What goes wrong with the frames crossing one direction of one port.
///
/// Probabilities are per frame: `0.0` (the default) never, `1.0` or more
/// always. The default value is a perfect link.
///
/// Faults are applied in this order: size limit, drop, corrupt, truncate,
/// duplicate, then delay, which is decided for each copy on its own.
///
/// ```
/// use reversal_sim::Faults;
/// use smoltcp::time::Duration;
///
/// let lossy = Faults {
///     drop: 0.05,
///     duplicate: 0.01,
///     delay: 0.1,
///     max_delay: Duration::from_millis(30),
///     corrupt: 0.01,
///     ..Faults::default()
/// };
/// assert!(lossy.is_active());
/// assert!(!Faults::default().is_active());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Probability that a frame is lost.
    pub drop: f64,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability that a frame is held back for a random time in
    /// `0..=max_delay`, so that frames sent after it can overtake it.
    pub delay: f64,
    /// The longest time a delayed frame is held back.
    pub max_delay: Duration,
    /// Probability that one random bit of a frame is flipped.
    ///
    /// A single flipped bit in an IP header or payload is always caught by
    /// the IPv4, TCP, UDP or ICMP checksum (smoltcp verifies them), so the
    /// receiver drops the frame, as a real one would. A bit flipped in the
    /// Ethernet header sends the frame astray or makes it unreadable, and
    /// ARP has no checksum at all: a flipped bit there can teach a host a
    /// wrong neighbour until the entry expires, as on a real wire.
    pub corrupt: f64,
    /// Probability that a frame is cut to a random shorter length.
    pub truncate: f64,
    /// Frames longer than this many bytes (Ethernet header included, no
    /// frame check sequence) are dropped, like on a link with a smaller MTU.
    pub max_frame_len: Option<usize>,
}

impl Faults {
    /// A perfect link: nothing goes wrong (the default).
    pub const NONE: Faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
        delay: 0.0,
        max_delay: Duration::ZERO,
        corrupt: 0.0,
        truncate: 0.0,
        max_frame_len: None,
    };

    /// A rough but usable link: 5% of the frames lost, 1% duplicated, 1%
    /// corrupted, and a tenth held back up to 20 ms so that later ones
    /// overtake them. TCP gets through, slowly, with every kind of repair
    /// at work.
    ///
    /// ```
    /// use reversal_sim::{Faults, PortConfig};
    ///
    /// let rough = PortConfig::new().faults(Faults::rough());
    /// # let _ = rough;
    /// ```
    pub fn rough() -> Faults {
        Faults {
            drop: 0.05,
            duplicate: 0.01,
            delay: 0.1,
            max_delay: Duration::from_millis(20),
            corrupt: 0.01,
            ..Faults::default()
        }
    }

    /// Whether any fault can happen at all.
    pub fn is_active(&self) -> bool {
        [
            self.drop,
            self.duplicate,
            self.delay,
            self.corrupt,
            self.truncate,
        ]
        .iter()
        .any(|&probability| probability > 0.0)
            || self.max_frame_len.is_some()
    }
}

/// Which way a frame crosses a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Frames the port's host transmits, before the switch sees them.
    Tx,
    /// Frames the switch hands to the port's host.
    Rx,
}

impl Direction {
    /// The number of this direction's random stream on `port`: each
    /// (port, direction) pair has one of its own.
    pub(crate) fn stream(self, port: PortId) -> u64 {
        let direction_bit = match self {
            Direction::Tx => 0,
            Direction::Rx => 1,
        };
        port.index() as u64 * 2 + direction_bit
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Tx => "tx",
            Direction::Rx => "rx",
        })
    }
}

/// Counts of what the segment did with frames.
///
/// One transmitted frame can count several times: it can be duplicated,
/// then each copy delayed, and flooded to several ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Frames hosts handed to the segment.
    pub transmitted: u64,
    /// Frames hosts took from the segment.
    pub delivered: u64,
    /// Frames lost on purpose (`drop`).
    pub dropped: u64,
    /// Extra copies made (`duplicate`).
    pub duplicated: u64,
    /// Frames held back (`delay`).
    pub delayed: u64,
    /// Frames with a flipped bit (`corrupt`).
    pub corrupted: u64,
    /// Frames cut short (`truncate`).
    pub truncated: u64,
    /// Frames dropped for their size (`max_frame_len` or the receiving
    /// port's MTU).
    pub oversize: u64,
    /// Frames a link's queue had no room for.
    pub queue_drops: u64,
    /// Frames lost to a link that was down or a port without its host.
    pub link_down: u64,
    /// Frames a partition cut.
    pub partitioned: u64,
    /// Frames held back at the switch (each counted once, when held).
    pub held: u64,
}

/// A kind of fault a shrinking run can leave out.
///
/// ```
/// use reversal_sim::{FaultId, FaultKind};
///
/// let id: FaultId = "0.rx.3.duplicate".parse().unwrap();
/// assert_eq!(id.kind, FaultKind::Duplicate);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The frame was lost.
    Drop,
    /// A bit was flipped.
    Corrupt,
    /// The frame was cut short.
    Truncate,
    /// A second copy was delivered.
    Duplicate,
    /// The frame (or a copy) was held back.
    Delay,
}

impl FaultKind {
    const ALL: [FaultKind; 5] = [
        FaultKind::Drop,
        FaultKind::Corrupt,
        FaultKind::Truncate,
        FaultKind::Duplicate,
        FaultKind::Delay,
    ];

    fn name(self) -> &'static str {
        match self {
            FaultKind::Drop => "drop",
            FaultKind::Corrupt => "corrupt",
            FaultKind::Truncate => "truncate",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Delay => "delay",
        }
    }
}

/// One fault that happened in a run: which kind, to the how-manieth frame
/// of which direction of which port (counting from 0).
///
/// Written `port.direction.frame.kind`, as in `2.tx.17.drop`, which is
/// how `SIM_FAULTS` lists the faults a shrunk case keeps.
///
/// ```
/// use reversal_sim::FaultId;
///
/// let id: FaultId = "2.tx.17.drop".parse().unwrap();
/// assert_eq!(id.to_string(), "2.tx.17.drop");
/// assert!("2.up.17.drop".parse::<FaultId>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FaultId {
    /// The port.
    pub port: PortId,
    /// Which way the frame crossed it.
    pub direction: Direction,
    /// The frame's number in that direction's stream of fault decisions.
    pub frame: u64,
    /// What happened to it.
    pub kind: FaultKind,
}

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.port,
            self.direction,
            self.frame,
            self.kind.name()
        )
    }
}

/// A [`FaultId`] that does not read `port.direction.frame.kind`.
///
/// ```
/// use reversal_sim::FaultId;
///
/// let error = "3.sideways.1.drop".parse::<FaultId>().unwrap_err();
/// assert!(error.to_string().contains("port.tx|rx.frame.kind"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFaultIdError(String);

impl fmt::Display for ParseFaultIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a fault like 2.tx.17.drop (port.tx|rx.frame.kind)",
            self.0
        )
    }
}

impl std::error::Error for ParseFaultIdError {}

impl FromStr for FaultId {
    type Err = ParseFaultIdError;

    fn from_str(text: &str) -> Result<FaultId, ParseFaultIdError> {
        let error = || ParseFaultIdError(text.to_owned());
        let mut parts = text.trim().split('.');
        let mut next = || parts.next().ok_or_else(error);
        let port = next()?.parse().map_err(|_| error())?;
        let direction = match next()? {
            "tx" => Direction::Tx,
            "rx" => Direction::Rx,
            _ => return Err(error()),
        };
        let frame = next()?.parse().map_err(|_| error())?;
        let kind = next()?;
        let kind = FaultKind::ALL
            .into_iter()
            .find(|candidate| candidate.name() == kind)
            .ok_or_else(error)?;
        if parts.next().is_some() {
            return Err(error());
        }
        Ok(FaultId {
            port: PortId::from_index(port),
            direction,
            frame,
            kind,
        })
    }
}

/// Which faults may happen in a run, and which did.
#[derive(Debug, Default)]
pub(crate) struct FaultRecord {
    /// `None`: every fault may happen.
    allowed: Option<BTreeSet<FaultId>>,
    happened: Vec<FaultId>,
}

impl FaultRecord {
    pub(crate) fn new(allowed: Option<BTreeSet<FaultId>>) -> FaultRecord {
        FaultRecord {
            allowed,
            happened: Vec::new(),
        }
    }

    /// Whether `fault` may happen; if so, it is recorded as happened.
    fn permit(&mut self, fault: FaultId) -> bool {
        let allowed = self
            .allowed
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&fault));
        if allowed {
            self.happened.push(fault);
        }
        allowed
    }

    pub(crate) fn happened(&self) -> &[FaultId] {
        &self.happened
    }
}

/// What became of one frame in one direction: zero, one or two copies,
/// each with its own extra delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fate {
    delays: [Duration; 2],
    copies: usize,
}

impl Fate {
    const LOST: Fate = Fate {
        delays: [Duration::ZERO; 2],
        copies: 0,
    };

    const INTACT: Fate = Fate {
        delays: [Duration::ZERO; 2],
        copies: 1,
    };

    /// The extra delay of each copy that goes on.
    pub(crate) fn delays(&self) -> &[Duration] {
        &self.delays[..self.copies]
    }
}

/// The faults of one direction of one port with their own random stream.
///
/// Each (port, direction) pair draws from its own ChaCha stream of the
/// segment's seed, so adding a port or changing one port's faults leaves
/// every other port's decisions as they were.
#[derive(Debug)]
pub(crate) struct FaultStream {
    /// Frames this stream has decided on: the number of the next one.
    frames: u64,
    rng: ChaCha8Rng,
    port: PortId,
    direction: Direction,
}

impl FaultStream {
    pub(crate) fn new(seed: u64, port: PortId, direction: Direction) -> FaultStream {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(direction.stream(port));
        FaultStream {
            frames: 0,
            rng,
            port,
            direction,
        }
    }

    /// Decides the fate of `frame` under `faults`, changing its bytes in
    /// place when it is corrupted or truncated.
    pub(crate) fn apply(
        &mut self,
        faults: &Faults,
        frame: &mut Vec<u8>,
        stats: &mut Stats,
        record: Option<&RefCell<FaultRecord>>,
    ) -> Fate {
        let faults = *faults;
        let ordinal = self.frames;
        self.frames += 1;
        let (port, direction) = (self.port, self.direction);
        // A fault a shrinking run leaves out still makes its draws, so the
        // frames after it meet the same fate as before.
        let permit = |kind| {
            record.is_none_or(|record| {
                record.borrow_mut().permit(FaultId {
                    port,
                    direction,
                    frame: ordinal,
                    kind,
                })
            })
        };
        if faults.max_frame_len.is_some_and(|max| frame.len() > max) {
            stats.oversize += 1;
            self.note(format_args!(
                "dropped oversize frame of {} bytes",
                frame.len()
            ));
            return Fate::LOST;
        }
        if self.chance(faults.drop) {
            if !permit(FaultKind::Drop) {
                return Fate::INTACT;
            }
            stats.dropped += 1;
            self.note(format_args!("dropped frame of {} bytes", frame.len()));
            return Fate::LOST;
        }
        if !frame.is_empty() && self.chance(faults.corrupt) {
            let bit = self.rng.random_range(0..frame.len() * 8);
            if permit(FaultKind::Corrupt) {
                frame[bit / 8] ^= 1 << (bit % 8);
                stats.corrupted += 1;
                self.note(format_args!(
                    "flipped bit {bit} of a {}-byte frame",
                    frame.len()
                ));
            }
        }
        if !frame.is_empty() && self.chance(faults.truncate) {
            let len = self.rng.random_range(0..frame.len());
            if permit(FaultKind::Truncate) {
                self.note(format_args!(
                    "truncated frame of {} bytes to {len}",
                    frame.len()
                ));
                frame.truncate(len);
                stats.truncated += 1;
            }
        }
        let mut fate = Fate::INTACT;
        let duplicated = self.chance(faults.duplicate);
        let drawn_copies = if duplicated { 2 } else { 1 };
        let mut delayed = [false; 2];
        for (delay, hit) in fate.delays[..drawn_copies].iter_mut().zip(&mut delayed) {
            if self.chance(faults.delay) {
                let micros = self.rng.random_range(0..=faults.max_delay.total_micros());
                *delay = Duration::from_micros(micros);
                *hit = true;
            }
        }
        if duplicated && permit(FaultKind::Duplicate) {
            fate.copies = 2;
            stats.duplicated += 1;
            self.note(format_args!("duplicated frame of {} bytes", frame.len()));
        }
        let copies = fate.copies;
        if delayed[..copies].contains(&true) && permit(FaultKind::Delay) {
            for (delay, _) in fate.delays[..copies]
                .iter()
                .zip(delayed)
                .filter(|(_, hit)| *hit)
            {
                stats.delayed += 1;
                self.note(format_args!(
                    "delayed frame of {} bytes by {delay}",
                    frame.len(),
                ));
            }
        } else {
            fate.delays = [Duration::ZERO; 2];
        }
        fate
    }

    /// Draws only for probabilities that can happen, so a fault that is off
    /// costs nothing.
    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.random::<f64>() < probability
    }

    fn note(&self, what: fmt::Arguments<'_>) {
        log::debug!("port {} {}: {what}", self.port, self.direction);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream with its faults, as a link holds them.
    struct Stream(FaultStream, Faults);

    impl Stream {
        fn apply(&mut self, frame: &mut Vec<u8>, stats: &mut Stats) -> Fate {
            self.0.apply(&self.1, frame, stats, None)
        }
    }

    fn stream_of(seed: u64, port: usize, direction: Direction, faults: Faults) -> Stream {
        Stream(FaultStream::new(seed, PortId::new(port), direction), faults)
    }

    fn stream(faults: Faults) -> Stream {
        stream_of(7, 0, Direction::Tx, faults)
    }

    fn frame() -> Vec<u8> {
        (0..100).collect()
    }

    #[test]
    fn perfect_link_passes_frames_untouched() {
        let mut stream = stream(Faults::default());
        let mut stats = Stats::default();
        let mut bytes = frame();
        let fate = stream.apply(&mut bytes, &mut stats);
        assert_eq!(fate.delays(), &[Duration::ZERO]);
        assert_eq!(bytes, frame());
        assert_eq!(stats, Stats::default());
    }

    #[test]
    fn certain_drop_loses_every_frame() {
        let mut stream = stream(Faults {
            drop: 1.0,
            ..Faults::default()
        });
        let mut stats = Stats::default();
        for _ in 0..10 {
            assert!(stream.apply(&mut frame(), &mut stats).delays().is_empty());
        }
        assert_eq!(stats.dropped, 10);
    }

    #[test]
    fn drop_rate_is_close_to_the_probability() {
        let mut stream = stream(Faults {
            drop: 0.25,
            ..Faults::default()
        });
        let mut stats = Stats::default();
        for _ in 0..10_000 {
            stream.apply(&mut frame(), &mut stats);
        }
        assert!((2200..2800).contains(&stats.dropped), "{stats:?}");
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let mut stream = stream(Faults {
            corrupt: 1.0,
            ..Faults::default()
        });
        let mut bytes = frame();
        stream.apply(&mut bytes, &mut Stats::default());
        let flipped: u32 = bytes
            .iter()
            .zip(frame())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(flipped, 1);
    }

    #[test]
    fn truncation_shortens_the_frame() {
        let mut stream = stream(Faults {
            truncate: 1.0,
            ..Faults::default()
        });
        let mut bytes = frame();
        let mut stats = Stats::default();
        stream.apply(&mut bytes, &mut stats);
        assert!(bytes.len() < 100);
        assert_eq!(bytes[..], frame()[..bytes.len()]);
        assert_eq!(stats.truncated, 1);
    }

    #[test]
    fn duplication_makes_two_copies() {
        let mut stream = stream(Faults {
            duplicate: 1.0,
            ..Faults::default()
        });
        let mut stats = Stats::default();
        assert_eq!(stream.apply(&mut frame(), &mut stats).delays().len(), 2);
        assert_eq!(stats.duplicated, 1);
    }

    #[test]
    fn delays_stay_within_the_maximum() {
        let max_delay = Duration::from_millis(20);
        let mut stream = stream(Faults {
            delay: 1.0,
            max_delay,
            ..Faults::default()
        });
        let mut stats = Stats::default();
        for _ in 0..1000 {
            let fate = stream.apply(&mut frame(), &mut stats);
            assert!(fate.delays()[0] <= max_delay);
        }
        assert_eq!(stats.delayed, 1000);
    }

    #[test]
    fn size_limit_drops_only_larger_frames() {
        let mut stream = stream(Faults {
            max_frame_len: Some(100),
            ..Faults::default()
        });
        let mut stats = Stats::default();
        assert_eq!(stream.apply(&mut frame(), &mut stats).delays().len(), 1);
        let mut big = vec![0; 101];
        assert!(stream.apply(&mut big, &mut stats).delays().is_empty());
        assert_eq!(stats.oversize, 1);
    }

    #[test]
    fn streams_of_different_ports_differ() {
        let faults = Faults {
            drop: 0.5,
            ..Faults::default()
        };
        let mut first = stream_of(7, 0, Direction::Tx, faults);
        let mut second = stream_of(7, 1, Direction::Tx, faults);
        let fates = |stream: &mut Stream| -> Vec<usize> {
            (0..64)
                .map(|_| {
                    stream
                        .apply(&mut frame(), &mut Stats::default())
                        .delays()
                        .len()
                })
                .collect()
        };
        assert_ne!(fates(&mut first), fates(&mut second));
    }

    #[test]
    fn same_seed_and_port_repeat_the_same_decisions() {
        let faults = Faults {
            drop: 0.3,
            corrupt: 0.3,
            ..Faults::default()
        };
        let run = || {
            let mut stream = stream_of(42, 3, Direction::Rx, faults);
            (0..64)
                .map(|_| {
                    let mut bytes = frame();
                    let copies = stream
                        .apply(&mut bytes, &mut Stats::default())
                        .delays()
                        .len();
                    (copies, bytes)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}

//! The admission workloads: more clients than sessions, and forged SYNs,
//! driven from the kernel's side with `std::net` clients on threads (issue
//! 12's targets). Every one is bounded in clients, SYNs and time.
//!
//! - (f) [`burst`]: every session held, then four clients per session at
//!   once: how many were refused, told busy, served, and how long the
//!   slowest waited;
//! - (g) [`crowd`]: three clients per session that connect, send a line
//!   and close, again and again: the share served, refusals;
//! - (h) [`half_open`]: silent forged SYNs, then a new client: how long
//!   until its line came back;
//! - (i) [`flood`]: forged SYNs at a set rate while new clients come and
//!   open sessions talk: the new clients served within a second, the open
//!   sessions' latency.

use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::forged::ForgedSyns;
use crate::histogram::Histogram;
use crate::workloads::{Expect, SHORT_LINE, Session, WorkloadError, io_error, join, line};

/// Longest a client of these workloads waits for its connection: a
/// connection waits in the server's backlog for the admission wait (1 s by
/// default) before it is even accepted.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// How one connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its line came back.
    Served,
    /// `ERR busy`, then the server closed.
    Busy,
    /// Refused, reset, or closed with no reply.
    Refused,
}

/// Outcomes of many attempts, and how long each took from connecting to
/// its reply (or to the end).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Lines answered.
    pub served: u64,
    /// `ERR busy` replies.
    pub busy: u64,
    /// Refusals, resets and closes without a reply.
    pub refused: u64,
    /// Served attempts that took at most a second.
    pub served_within_a_second: u64,
    /// The slowest attempt.
    pub slowest: Duration,
    /// From the first attempt's start to the last one's end.
    pub elapsed: Duration,
    /// How long served attempts took.
    pub served_after: Histogram,
}

impl Tally {
    fn add(&mut self, outcome: Outcome, took: Duration) {
        match outcome {
            Outcome::Served => {
                self.served += 1;
                self.served_after.record(took);
                self.served_within_a_second += u64::from(took <= Duration::from_secs(1));
            }
            Outcome::Busy => self.busy += 1,
            Outcome::Refused => self.refused += 1,
        }
        self.slowest = self.slowest.max(took);
    }

    fn merge(&mut self, other: &Tally) {
        self.served += other.served;
        self.busy += other.busy;
        self.refused += other.refused;
        self.served_within_a_second += other.served_within_a_second;
        self.slowest = self.slowest.max(other.slowest);
        self.served_after.merge(&other.served_after);
    }

    /// Attempts in all.
    pub fn attempts(&self) -> u64 {
        self.served + self.busy + self.refused
    }

    /// Percent of the attempts that were served.
    pub fn served_percent(&self) -> f64 {
        percent(self.served, self.attempts())
    }

    /// Percent of the attempts served within a second.
    pub fn within_a_second_percent(&self) -> f64 {
        percent(self.served_within_a_second, self.attempts())
    }

    /// Attempts served per second.
    pub fn served_per_second(&self) -> f64 {
        self.served as f64 / self.elapsed.as_secs_f64()
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} attempts in {:.1} s: {} served ({} within 1 s), {} busy, {} refused; slowest {:.3} s",
            self.attempts(),
            self.elapsed.as_secs_f64(),
            self.served,
            self.served_within_a_second,
            self.busy,
            self.refused,
            self.slowest.as_secs_f64()
        )
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    part as f64 * 100.0 / whole as f64
}

/// One attempt: connects, sends `request` (a line), half-closes and reads
/// until the server closes; how it ended and how long that took.
pub fn attempt(address: SocketAddr, request: &[u8], expect: Expect) -> (Outcome, Duration) {
    let started = Instant::now();
    let outcome = (|| {
        let Ok(mut stream) = TcpStream::connect_timeout(&address, CONNECT_LIMIT) else {
            return Outcome::Refused;
        };
        let _ = stream.set_read_timeout(Some(CONNECT_LIMIT));
        let _ = stream.set_write_timeout(Some(CONNECT_LIMIT));
        if stream.write_all(request).is_err() {
            return Outcome::Refused;
        }
        let _ = stream.shutdown(Shutdown::Write);
        let mut reply = Vec::new();
        if stream.read_to_end(&mut reply).is_err() && reply.is_empty() {
            return Outcome::Refused;
        }
        if reply == expect.reply(request) {
            Outcome::Served
        } else if reply.starts_with(b"ERR busy") {
            Outcome::Busy
        } else {
            Outcome::Refused
        }
    })();
    (outcome, started.elapsed())
}

/// (f) Opens `sessions` sessions that stay, then `extra` clients connect
/// at once, each sending a line and waiting for the end.
///
/// # Errors
///
/// A held session could not be opened.
pub fn burst(
    address: SocketAddr,
    sessions: usize,
    extra: usize,
    expect: Expect,
) -> Result<Tally, WorkloadError> {
    let held = (0..sessions)
        .map(|n| Session::open(address, line(n as u64, SHORT_LINE, false), expect))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Arc::new(Barrier::new(extra + 1));
    let clients: Vec<_> = (0..extra)
        .map(|n| {
            let start = Arc::clone(&start);
            thread::spawn(move || -> Result<Tally, WorkloadError> {
                let request = line(1000 + n as u64, SHORT_LINE, false);
                start.wait();
                let (outcome, took) = attempt(address, &request, expect);
                let mut tally = Tally::default();
                tally.add(outcome, took);
                Ok(tally)
            })
        })
        .collect();
    start.wait();
    let started = Instant::now();
    let tally = sum(join(clients)?, started);
    drop(held);
    Ok(tally)
}

/// (g) `clients` clients that connect, send a line and close, again and
/// again, for `duration`.
///
/// # Errors
///
/// A client thread failed.
pub fn crowd(
    address: SocketAddr,
    clients: usize,
    duration: Duration,
    expect: Expect,
) -> Result<Tally, WorkloadError> {
    let started = Instant::now();
    let stop = started + duration;
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            thread::spawn(move || -> Result<Tally, WorkloadError> {
                let request = line(client as u64, SHORT_LINE, false);
                let mut tally = Tally::default();
                while Instant::now() < stop {
                    let (outcome, took) = attempt(address, &request, expect);
                    tally.add(outcome, took);
                }
                Ok(tally)
            })
        })
        .collect();
    Ok(sum(join(threads)?, started))
}

fn sum(tallies: Vec<Tally>, started: Instant) -> Tally {
    let mut total = Tally::default();
    for tally in &tallies {
        total.merge(tally);
    }
    total.elapsed = started.elapsed();
    total
}

/// (h) `rounds` times: `syns` silent forged SYNs at once, then a new
/// client; how each client's attempt went. The rounds are `pause` apart,
/// so that the half-open handshakes of one round are old in the next.
///
/// # Errors
///
/// Writing the forged SYNs failed.
pub fn half_open(
    address: SocketAddr,
    forged: &mut ForgedSyns,
    syns: u32,
    rounds: u32,
    pause: Duration,
    expect: Expect,
) -> Result<Tally, WorkloadError> {
    let started = Instant::now();
    let mut tally = Tally::default();
    for round in 0..rounds {
        forged.burst(syns).map_err(io_error("write forged SYNs"))?;
        let request = line(u64::from(round), SHORT_LINE, false);
        let (outcome, took) = attempt(address, &request, expect);
        tally.add(outcome, took);
        thread::sleep(pause);
    }
    tally.elapsed = started.elapsed();
    Ok(tally)
}

/// What a SYN flood left of the service.
#[derive(Debug, Clone)]
pub struct Flood {
    /// Forged SYNs written.
    pub syns: u64,
    /// How long the flood lasted.
    pub lasted: Duration,
    /// New clients that came during the flood.
    pub newcomers: Tally,
    /// Latency of the open sessions' lines during the flood.
    pub talk: Histogram,
    /// Lines the open sessions exchanged.
    pub lines: u64,
}

/// (i) Forged SYNs at `rate` a second for `duration`, while `talkers` open
/// sessions send a line every 10 ms and wait for each reply, and a new
/// client comes every `every`.
///
/// # Errors
///
/// A session could not be opened or failed, or writing the SYNs failed.
pub fn flood(
    address: SocketAddr,
    mut forged: ForgedSyns,
    rate: u32,
    duration: Duration,
    every: Duration,
    talkers: usize,
    expect: Expect,
) -> Result<Flood, WorkloadError> {
    let mut open = (0..talkers)
        .map(|n| Session::open(address, line(n as u64, SHORT_LINE, false), expect))
        .collect::<Result<Vec<_>, _>>()?;
    let syns = thread::spawn(move || forged.flood(rate, duration));
    let started = Instant::now();
    let stop = started + duration;
    let talk: Vec<_> = open
        .drain(..)
        .map(|mut session| {
            thread::spawn(move || -> Result<(Histogram, u64), WorkloadError> {
                let mut latency = Histogram::new();
                let mut lines = 0;
                while Instant::now() < stop {
                    let sent = Instant::now();
                    session.round_trip()?;
                    latency.record(sent.elapsed());
                    lines += 1;
                    thread::sleep(Duration::from_millis(10));
                }
                Ok((latency, lines))
            })
        })
        .collect();
    let mut newcomers = Tally::default();
    let mut n = 0u64;
    while Instant::now() + every <= stop {
        let due = started + every * (n as u32 + 1);
        thread::sleep(due.saturating_duration_since(Instant::now()));
        let (outcome, took) = attempt(address, &line(5000 + n, SHORT_LINE, false), expect);
        newcomers.add(outcome, took);
        n += 1;
    }
    let lasted = started.elapsed();
    newcomers.elapsed = lasted;
    let syns = match syns.join() {
        Ok(written) => written.map_err(io_error("write forged SYNs"))?,
        Err(_) => return Err(WorkloadError::ClientPanicked),
    };
    let mut flood = Flood {
        syns,
        lasted,
        newcomers,
        talk: Histogram::new(),
        lines: 0,
    };
    for (latency, lines) in join(talk)? {
        flood.talk.merge(&latency);
        flood.lines += lines;
    }
    Ok(flood)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_outcomes_and_the_quick_ones() {
        let mut tally = Tally::default();
        tally.add(Outcome::Served, Duration::from_millis(300));
        tally.add(Outcome::Served, Duration::from_millis(1500));
        tally.add(Outcome::Busy, Duration::from_secs(1));
        tally.add(Outcome::Refused, Duration::ZERO);
        assert_eq!((tally.served, tally.busy, tally.refused), (2, 1, 1));
        assert_eq!(tally.served_within_a_second, 1);
        assert_eq!(tally.slowest, Duration::from_millis(1500));
        assert_eq!(tally.served_percent(), 50.0);
        assert_eq!(tally.within_a_second_percent(), 25.0);
    }
}

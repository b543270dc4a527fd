//! `reversal-bench`: the real `host-tap` over a real TAP device, measured
//! against the kernel's own TCP stack and against smoltcp's raw ceiling.
//!
//! The benchmark runs itself again in a network namespace of its own (so the
//! host's network is never touched), makes a TAP there with the kernel's
//! side at 192.168.69.100/24, and starts each server as a child process:
//!
//! - `host-tap` (found next to this binary) on the TAP, at 192.168.69.1;
//! - the kernel baseline: this binary again, as a thread-per-client reversal
//!   server on 127.0.0.1 (`std::net`, the core's grapheme reversal);
//! - `tap-echo` (next to this binary): smoltcp on the same TAP code with the
//!   same buffers, echoing bytes without any line logic.
//!
//! Clients are `std::net` threads on the kernel's side. Workloads:
//! (a) bulk: 1 KiB lines through one connection, every reply byte checked;
//! (b) 64 clients in lock-step request/response: lines/s, p50, p99;
//! (c) connection churn: connect, one line, close; connections/s;
//! (d) idle CPU of the server process, without and with 64 open sessions;
//! (e) VmRSS of the server after 1k and after 100k connections;
//! and admission, against `--admission-sessions` sessions (8 by default, as
//! in issue 12's table; see `reversal_bench::admission`): (f) a burst of
//! four clients per session while every session is held; (g) three clients
//! per session churning; (h) 100 silent forged SYNs, then a new client;
//! (i) a flood of forged SYNs while new clients come and sessions talk.
//!
//! It prints a Markdown table with the ratios and which targets were met.
//! Every workload is bounded in bytes, connections and time; a watchdog ends
//! the run if it takes too long, and the servers die with the benchmark
//! (also on a panic or Ctrl-C). Needs root, `/dev/net/tun`, `unshare` and
//! `ip`.
//!
//! ```text
//! cargo build --release -p host-tap -p reversal-bench
//! sudo target/release/reversal-bench                 # the full run, a few minutes
//! sudo target/release/reversal-bench --quick         # seconds, for CI
//! sudo target/release/reversal-bench --mtu 9000 --only a
//! ```

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use clap::{Parser, ValueEnum};
use reversal_bench::admission::{self, Tally};
use reversal_bench::forged::ForgedSyns;
use reversal_bench::kernel_server;
use reversal_bench::report::{self, Row, Target};
use reversal_bench::workloads::{self, Expect, Stream, WorkloadError};
use reversal_netns::SetupError;
use reversal_netns::namespace::{self, sysctl};
use reversal_netns::process::{self, ServerProcess};
use reversal_netns::tap::{Tap, try_ip};

/// The TAP the benchmark makes in its namespace.
const TAP_NAME: &str = "tapbench";
/// The kernel's side of the TAP.
const HOST_CIDR: &str = "192.168.69.100/24";
/// The servers' side of the TAP (`host-tap`'s default address).
const SERVER_CIDR: &str = "192.168.69.1/24";
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);
const PORT: u16 = 8888;
/// Concurrent clients of (b), idle sessions of (d): `host-tap`'s default `--sessions`.
const CLIENTS: usize = 64;
/// How long a server may take to start serving.
const START_LIMIT: Duration = Duration::from_secs(10);
/// Exit code when the machine cannot run the benchmark (no root, no TUN).
const EXIT_UNAVAILABLE: u8 = 3;

const AFTER_HELP: &str = "\
Workloads (--only): a bulk, b 64-client request/response, c connection churn,
d idle CPU, e RSS after 1k and 100k connections; admission against
--admission-sessions: f burst beyond held sessions, g crowd of clients
churning, h silent half-open SYNs, i SYN flood.

Exit codes:
   0  all workloads ran (targets missed are reported, not failures)
   1  a workload or a server failed
   2  command line not understood
   3  cannot run here: needs root, /dev/net/tun, unshare and iproute2
";

/// Measure host-tap over a real TAP against the kernel stack and tap-echo.
#[derive(Debug, Parser)]
#[command(name = "reversal-bench", version, after_help = AFTER_HELP)]
struct Args {
    /// Small sizes and short durations (seconds in all), for CI.
    #[arg(long)]
    quick: bool,

    /// MTU of the TAP (the kernel baseline always uses loopback's).
    #[arg(long, value_name = "BYTES", default_value_t = 1500,
          value_parser = clap::value_parser!(u32).range(576..=65535))]
    mtu: u32,

    /// Run only these workloads, e.g. `a,b`.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    only: Vec<Workload>,

    /// MiB through the bulk connection [default: 256, --quick 8].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..))]
    bulk_mib: Option<u64>,

    /// Seconds of the request/response workload [default: 10, --quick 1].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    duration: Option<Duration>,

    /// Seconds of each idle measurement [default: 10, --quick 1].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    idle: Option<Duration>,

    /// Lines with multi-byte graphemes (accents, Hangul, emoji) instead of ASCII.
    #[arg(long)]
    unicode: bool,

    /// RUST_LOG of the TAP servers (`info` logs every session open and close).
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    server_log: String,

    /// One more argument for both TAP servers (host-tap and tap-echo take the
    /// same `--socket-buffer` and `--offload`); repeat for more, e.g.
    /// `--tap-arg=--offload --tap-arg=off`.
    #[arg(long = "tap-arg", value_name = "ARG", allow_hyphen_values = true)]
    tap_args: Vec<String>,

    /// Stop with an error after this many seconds in all [default: 1200, --quick 120].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    time_limit: Option<Duration>,

    /// Sessions host-tap serves in the admission workloads (f to i).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    admission_sessions: u16,

    /// host-tap's --admission-wait in every workload [default: host-tap's].
    #[arg(long, value_name = "DURATION")]
    admission_wait: Option<String>,

    /// Internal: serve the kernel baseline on 127.0.0.1:PORT.
    #[arg(long, value_name = "PORT", hide = true)]
    kernel_server: Option<u16>,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds < 1e6 => Ok(Duration::from_secs_f64(seconds)),
        _ => Err(format!("{text:?} is not a number of seconds above 0")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Bulk lines through one connection.
    #[value(name = "a")]
    Bulk,
    /// 64 clients in request/response.
    #[value(name = "b")]
    RequestResponse,
    /// Connect, one line, close.
    #[value(name = "c")]
    Churn,
    /// CPU while idle.
    #[value(name = "d")]
    Idle,
    /// Memory after many connections.
    #[value(name = "e")]
    Rss,
    /// A burst beyond held sessions.
    #[value(name = "f")]
    Burst,
    /// Three clients per session churning.
    #[value(name = "g")]
    Crowd,
    /// Silent half-open handshakes, then a client.
    #[value(name = "h")]
    HalfOpen,
    /// A SYN flood while clients come and sessions talk.
    #[value(name = "i")]
    Flood,
}

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    HostTap,
    Kernel,
    TapEcho,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::HostTap => "host-tap",
            Server::Kernel => "kernel",
            Server::TapEcho => "tap-echo",
        }
    }

    fn expect(self) -> Expect {
        match self {
            Server::HostTap | Server::Kernel => Expect::Reversed,
            Server::TapEcho => Expect::Echoed,
        }
    }

    fn address(self) -> SocketAddr {
        let ip = match self {
            Server::HostTap | Server::TapEcho => SERVER_IP,
            Server::Kernel => Ipv4Addr::LOCALHOST,
        };
        SocketAddr::V4(SocketAddrV4::new(ip, PORT))
    }

    fn on_tap(self) -> bool {
        self != Server::Kernel
    }
}

/// Sizes and durations of this run.
#[derive(Debug, Clone)]
struct Plan {
    workloads: Vec<Workload>,
    bulk_bytes: u64,
    duration: Duration,
    churn_duration: Duration,
    churn_limit: u64,
    idle: Duration,
    rss_first: u64,
    rss_total: u64,
    admission_sessions: usize,
    crowd_duration: Duration,
    half_open_rounds: u32,
    flood_duration: Duration,
    time_limit: Duration,
}

impl Plan {
    fn new(args: &Args) -> Plan {
        let quick = args.quick;
        let workloads = if args.only.is_empty() {
            Workload::value_variants().to_vec()
        } else {
            Workload::value_variants()
                .iter()
                .copied()
                .filter(|w| args.only.contains(w))
                .collect()
        };
        let pick = |full: u64, small: u64| if quick { small } else { full };
        Plan {
            workloads,
            bulk_bytes: args.bulk_mib.unwrap_or(pick(256, 8)) << 20,
            duration: args.duration.unwrap_or(Duration::from_secs(pick(10, 1))),
            churn_duration: Duration::from_secs(pick(5, 1)),
            churn_limit: pick(100_000, 2_000),
            idle: args.idle.unwrap_or(Duration::from_secs(pick(10, 1))),
            rss_first: pick(1_000, 100),
            rss_total: pick(100_000, 1_000),
            admission_sessions: usize::from(args.admission_sessions),
            crowd_duration: Duration::from_secs(pick(10, 2)),
            half_open_rounds: pick(5, 2) as u32,
            flood_duration: Duration::from_secs(pick(20, 3)),
            time_limit: args
                .time_limit
                .unwrap_or(Duration::from_secs(pick(1200, 120))),
        }
    }

    fn describe(&self, args: &Args) -> String {
        let text = if args.unicode {
            "mixed-Unicode"
        } else {
            "ASCII"
        };
        format!(
            "TAP MTU {}; {text} lines; (a) {} MiB of 1 KiB lines; (b) {CLIENTS} clients, \
             64-byte lines, {:?}; (c) {} clients for {:?} or {} connections; (d) {:?} each; \
             (e) RSS after {} and {} connections; (f)-(i) {} sessions, (g) for {:?}, \
             (h) {} rounds, (i) {:?}; TAP servers with RUST_LOG={}{}{}",
            args.mtu,
            self.bulk_bytes >> 20,
            self.duration,
            workloads::CHURN_THREADS,
            self.churn_duration,
            self.churn_limit,
            self.idle,
            self.rss_first,
            self.rss_total,
            self.admission_sessions,
            self.crowd_duration,
            self.half_open_rounds,
            self.flood_duration,
            args.server_log,
            args.admission_wait
                .as_ref()
                .map_or_else(String::new, |wait| format!(
                    ", host-tap --admission-wait {wait}"
                )),
            if args.tap_args.is_empty() {
                String::new()
            } else {
                format!(" and arguments `{}`", args.tap_args.join(" "))
            },
        )
    }
}

/// Why the benchmark stopped.
#[derive(Debug)]
enum BenchError {
    Setup(SetupError),
    MissingBinary(PathBuf),
    Start {
        server: &'static str,
        error: Box<dyn std::error::Error>,
    },
    Workload {
        workload: &'static str,
        server: &'static str,
        error: WorkloadError,
    },
}

impl BenchError {
    fn exit_code(&self) -> ExitCode {
        match self {
            BenchError::Setup(SetupError::Unavailable(_)) => ExitCode::from(EXIT_UNAVAILABLE),
            _ => ExitCode::FAILURE,
        }
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Setup(error) => error.fmt(f),
            BenchError::MissingBinary(path) => write!(
                f,
                "{} is missing: build the servers next to this program \
                 (`cargo build --release -p host-tap -p reversal-bench`)",
                path.display()
            ),
            BenchError::Start { server, error } => write!(f, "cannot start {server}: {error}"),
            BenchError::Workload {
                workload,
                server,
                error,
            } => write!(f, "{workload} against {server} failed: {error}"),
        }
    }
}

impl From<SetupError> for BenchError {
    fn from(error: SetupError) -> Self {
        BenchError::Setup(error)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(port) = args.kernel_server {
        return serve_kernel_baseline(port);
    }
    if !namespace::is_inside() {
        return rerun_in_own_namespace();
    }
    match run(&args) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("reversal-bench: error: {error}");
            error.exit_code()
        }
    }
}

fn serve_kernel_baseline(port: u16) -> ExitCode {
    let served = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .and_then(|listener| kernel_server::serve(&listener));
    if let Err(error) = served {
        eprintln!("reversal-bench: kernel baseline: {error}");
    }
    ExitCode::FAILURE
}

/// Everything the workloads need.
struct Bench {
    tap: Tap,
    host_tap: PathBuf,
    tap_echo: PathBuf,
    this: PathBuf,
    server_log: String,
    /// host-tap's --admission-wait, if one is given.
    admission_wait: Option<String>,
    tap_args: Vec<String>,
}

/// Checks that the benchmark can run here, then runs this program again in
/// a network namespace of its own and ends as that run ends.
fn rerun_in_own_namespace() -> ExitCode {
    let ended = servers().and_then(|_| {
        if let Some(why) = namespace::why_no_namespace(&[]) {
            return Err(SetupError::Unavailable(why).into());
        }
        let mut rerun = namespace::rerun_inside()?;
        rerun.args(std::env::args_os().skip(1));
        process::die_with_parent(&mut rerun)
            .status()
            .map_err(|e| SetupError::Namespace(format!("cannot run unshare: {e}")).into())
    });
    match ended {
        Ok(status) => status
            .code()
            .and_then(|code| u8::try_from(code).ok())
            .map_or(ExitCode::FAILURE, ExitCode::from),
        Err(error) => {
            eprintln!("reversal-bench: error: {error}");
            error.exit_code()
        }
    }
}

/// This program and the TAP servers next to it: `host-tap` and `tap-echo`.
fn servers() -> Result<[PathBuf; 3], BenchError> {
    let this = std::env::current_exe()
        .map_err(|e| SetupError::Unavailable(format!("cannot find this program: {e}")))?;
    let host_tap = this.with_file_name("host-tap");
    let tap_echo = this.with_file_name("tap-echo");
    for binary in [&host_tap, &tap_echo] {
        if !binary.is_file() {
            return Err(BenchError::MissingBinary(binary.clone()));
        }
    }
    Ok([this, host_tap, tap_echo])
}

/// Brings up the namespace's loopback and lets the kernel-side clients open
/// connections quickly.
fn prepare_namespace() -> Result<(), SetupError> {
    try_ip("link set dev lo up")?;
    // Clients close first, so their side keeps TIME_WAIT for a minute; churn
    // and the RSS runs open 100k connections. Both settings apply to this
    // namespace only.
    sysctl("/proc/sys/net/ipv4/ip_local_port_range", "1024 65535")?;
    sysctl("/proc/sys/net/ipv4/tcp_max_tw_buckets", "0")?;
    Ok(())
}

fn run(args: &Args) -> Result<String, BenchError> {
    namespace::ensure_inside()?;
    let plan = Plan::new(args);
    let [this, host_tap, tap_echo] = servers()?;
    start_watchdog(plan.time_limit);
    prepare_namespace()?;
    let tap = Tap::create(TAP_NAME, args.mtu, HOST_CIDR)?;
    eprintln!(
        "reversal-bench: in a network namespace of its own; {} MTU {}, kernel side {HOST_CIDR}",
        tap.name(),
        args.mtu
    );
    let bench = Bench {
        tap,
        host_tap,
        tap_echo,
        this,
        server_log: args.server_log.clone(),
        admission_wait: args.admission_wait.clone(),
        tap_args: args.tap_args.clone(),
    };
    let started = Instant::now();
    let mut results = Results::default();
    for &workload in &plan.workloads {
        bench.measure(workload, &plan, args.unicode, &mut results)?;
    }
    Ok(render(args, &plan, &results, started.elapsed()))
}

/// Ends the process (and with it the servers and the namespace) if the run
/// takes longer than `limit`.
fn start_watchdog(limit: Duration) {
    thread::spawn(move || {
        thread::sleep(limit);
        eprintln!("reversal-bench: error: still running after {limit:?} (--time-limit); stopping");
        std::process::exit(1);
    });
}

/// The measured rows, in table order.
#[derive(Debug, Default)]
struct Results {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Results {
    fn set(&mut self, workload: &str, metric: &'static str, server: Server, value: f64) {
        let index = match self
            .rows
            .iter()
            .position(|r| r.workload == workload && r.metric == metric)
        {
            Some(index) => index,
            None => {
                self.rows.push(Row::new(workload, metric));
                self.rows.len() - 1
            }
        };
        let row = &mut self.rows[index];
        let slot = match server {
            Server::HostTap => &mut row.host,
            Server::Kernel => &mut row.kernel,
            Server::TapEcho => &mut row.echo,
        };
        *slot = Some(value);
    }

    fn set_some(
        &mut self,
        workload: &str,
        metric: &'static str,
        server: Server,
        value: Option<f64>,
    ) {
        if let Some(value) = value {
            self.set(workload, metric, server, value);
        }
    }

    fn get(&self, workload: &str, metric: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.workload == workload && r.metric == metric)
    }
}

const BULK: &str = "(a) bulk, 1 KiB lines";
const REQUEST_RESPONSE: &str = "(b) 64 clients, request/response";
const CHURN: &str = "(c) churn: connect, line, close";
const IDLE: &str = "(d) idle";
const RSS: &str = "(e) RSS";

const MIB_PER_S: &str = "MiB/s";
const LINES_PER_S: &str = "lines/s";
const P50: &str = "p50 µs";
const P99: &str = "p99 µs";
const CONNECTIONS_PER_S: &str = "connections/s";
const CPU_PER_MIB: &str = "server CPU ms per MiB";
const FRAMES_PER_MIB: &str = "server frames per MiB";
const CPU_PER_LINE: &str = "server CPU µs per line";
const FRAMES_PER_LINE: &str = "server frames per line";
const CPU_PER_CONNECTION: &str = "server CPU µs per connection";
const FRAMES_PER_CONNECTION: &str = "server frames per connection";
const CPU_NO_SESSIONS: &str = "CPU % of a core, no sessions";
const CPU_OPEN_SESSIONS: &str = "CPU % of a core, 64 idle sessions";
const RSS_START: &str = "VmRSS KiB at start";
const RSS_FIRST: &str = "VmRSS KiB after first cycles";
const RSS_TOTAL: &str = "VmRSS KiB after all cycles";
const RSS_GROWTH: &str = "growth, last / first";

/// A workload's result and what it cost the server.
#[derive(Debug)]
struct Measured<T> {
    value: T,
    /// Server CPU time (user + system) during the workload.
    cpu_seconds: f64,
    /// Frames the server wrote to the TAP during the workload (TAP servers only).
    frames_out: Option<u64>,
}

impl<T> Measured<T> {
    /// Server CPU microseconds per unit of work.
    fn cpu_micros_per(&self, units: f64) -> f64 {
        self.cpu_seconds * 1e6 / units
    }

    /// Frames the server wrote per unit of work.
    fn frames_per(&self, units: f64) -> Option<f64> {
        self.frames_out.map(|frames| frames as f64 / units)
    }
}

impl Bench {
    fn measure(
        &self,
        workload: Workload,
        plan: &Plan,
        unicode: bool,
        results: &mut Results,
    ) -> Result<(), BenchError> {
        match workload {
            Workload::Bulk => {
                for server in [Server::HostTap, Server::Kernel, Server::TapEcho] {
                    let stream = Stream::bulk(unicode, server.expect());
                    let bulk = self.with_server(BULK, server, |_, address| {
                        workloads::bulk(address, plan.bulk_bytes, &stream)
                    })?;
                    let mib = bulk.value.bytes as f64 / f64::from(1 << 20);
                    progress(
                        BULK,
                        server,
                        format!("{:.1} MiB/s", bulk.value.mib_per_second()),
                    );
                    results.set(BULK, MIB_PER_S, server, bulk.value.mib_per_second());
                    results.set(BULK, CPU_PER_MIB, server, bulk.cpu_micros_per(mib) / 1e3);
                    results.set_some(BULK, FRAMES_PER_MIB, server, bulk.frames_per(mib));
                }
            }
            Workload::RequestResponse => {
                for server in [Server::HostTap, Server::Kernel, Server::TapEcho] {
                    let rr = self.with_server(REQUEST_RESPONSE, server, |_, address| {
                        workloads::request_response(
                            address,
                            CLIENTS,
                            plan.duration,
                            unicode,
                            server.expect(),
                        )
                    })?;
                    let micros = |q| {
                        rr.value
                            .latency
                            .quantile(q)
                            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
                    };
                    let (p50, p99) = (micros(0.5), micros(0.99));
                    let lines = rr.value.lines as f64;
                    progress(
                        REQUEST_RESPONSE,
                        server,
                        format!(
                            "{:.0} lines/s, p50 {p50:.0} µs, p99 {p99:.0} µs",
                            rr.value.lines_per_second()
                        ),
                    );
                    let per_second = rr.value.lines_per_second();
                    results.set(REQUEST_RESPONSE, LINES_PER_S, server, per_second);
                    results.set(REQUEST_RESPONSE, P50, server, p50);
                    results.set(REQUEST_RESPONSE, P99, server, p99);
                    let cpu = rr.cpu_micros_per(lines);
                    results.set(REQUEST_RESPONSE, CPU_PER_LINE, server, cpu);
                    let frames = rr.frames_per(lines);
                    results.set_some(REQUEST_RESPONSE, FRAMES_PER_LINE, server, frames);
                }
            }
            Workload::Churn => {
                for server in [Server::HostTap, Server::Kernel, Server::TapEcho] {
                    let churn = self.with_server(CHURN, server, |_, address| {
                        workloads::churn(
                            address,
                            plan.churn_duration,
                            plan.churn_limit,
                            unicode,
                            server.expect(),
                        )
                    })?;
                    let Measured { value: done, .. } = &churn;
                    progress(
                        CHURN,
                        server,
                        format!(
                            "{} connections in {:.2} s: {:.0}/s",
                            done.connections,
                            done.elapsed.as_secs_f64(),
                            done.per_second()
                        ),
                    );
                    if done.busy > 0 {
                        results.notes.push(format!(
                            "{CHURN}: {} answered ERR busy {} times (not counted)",
                            server.name(),
                            done.busy
                        ));
                    }
                    let connections = done.connections as f64;
                    results.set(CHURN, CONNECTIONS_PER_S, server, done.per_second());
                    let cpu = churn.cpu_micros_per(connections);
                    results.set(CHURN, CPU_PER_CONNECTION, server, cpu);
                    let frames = churn.frames_per(connections);
                    results.set_some(CHURN, FRAMES_PER_CONNECTION, server, frames);
                }
            }
            Workload::Idle => {
                for server in [Server::HostTap, Server::Kernel] {
                    let idle = self
                        .with_server(IDLE, server, |process, address| {
                            workloads::idle_cpu(
                                process,
                                address,
                                plan.idle,
                                CLIENTS,
                                server.expect(),
                            )
                        })?
                        .value;
                    progress(
                        IDLE,
                        server,
                        format!(
                            "{:.2} % with no sessions, {:.2} % with {} idle sessions",
                            idle.no_sessions, idle.open_sessions, idle.sessions
                        ),
                    );
                    results.set(IDLE, CPU_NO_SESSIONS, server, idle.no_sessions);
                    results.set(IDLE, CPU_OPEN_SESSIONS, server, idle.open_sessions);
                }
            }
            Workload::Rss => {
                // Generous: the slowest server still makes hundreds per second.
                let limit = Duration::from_secs(300);
                for server in [Server::HostTap, Server::Kernel] {
                    let rss = self
                        .with_server(RSS, server, |process, address| {
                            workloads::rss_growth(
                                process,
                                address,
                                plan.rss_first,
                                plan.rss_total,
                                limit,
                                server.expect(),
                            )
                        })?
                        .value;
                    progress(
                        RSS,
                        server,
                        format!(
                            "{} KiB at start, {} KiB after {}, {} KiB after {} connections",
                            rss.start_kib, rss.first_kib, rss.first, rss.total_kib, rss.total
                        ),
                    );
                    results.set(RSS, RSS_START, server, rss.start_kib as f64);
                    results.set(RSS, RSS_FIRST, server, rss.first_kib as f64);
                    results.set(RSS, RSS_TOTAL, server, rss.total_kib as f64);
                    results.set(RSS, RSS_GROWTH, server, rss.growth());
                }
            }
            Workload::Burst | Workload::Crowd | Workload::HalfOpen | Workload::Flood => {
                self.measure_admission(workload, plan, results)?;
            }
        }
        Ok(())
    }

    /// Starts `server`, waits until it answers, runs `work` against it, and
    /// stops it again; also tells what the work cost the server.
    fn with_server<T>(
        &self,
        workload: &'static str,
        server: Server,
        work: impl FnOnce(&mut ServerProcess, SocketAddr) -> Result<T, WorkloadError>,
    ) -> Result<Measured<T>, BenchError> {
        self.with_server_of(workload, server, CLIENTS, work)
    }

    /// As [`with_server`](Self::with_server), with host-tap serving
    /// `sessions` sessions.
    fn with_server_of<T>(
        &self,
        workload: &'static str,
        server: Server,
        sessions: usize,
        work: impl FnOnce(&mut ServerProcess, SocketAddr) -> Result<T, WorkloadError>,
    ) -> Result<Measured<T>, BenchError> {
        let mut process = self.start(server, sessions)?;
        let failed = |error| BenchError::Workload {
            workload,
            server: server.name(),
            error,
        };
        let frames = || -> Result<Option<u64>, BenchError> {
            if !server.on_tap() {
                return Ok(None);
            }
            self.tap.frames_from_server().map(Some).map_err(|e| {
                failed(WorkloadError::Io {
                    context: "read the TAP's counters",
                    source: e,
                })
            })
        };
        let cpu_before = process.cpu_seconds().map_err(|e| failed(e.into()))?;
        let frames_before = frames()?;
        let value = work(&mut process, server.address()).map_err(failed)?;
        process
            .check_running()
            .map_err(|e| failed(WorkloadError::Server(e)))?;
        let cpu_seconds = process.cpu_seconds().map_err(|e| failed(e.into()))? - cpu_before;
        let frames_out = frames()?
            .zip(frames_before)
            .map(|(after, before)| after - before);
        Ok(Measured {
            value,
            cpu_seconds,
            frames_out,
        })
    }

    fn start(&self, server: Server, sessions: usize) -> Result<ServerProcess, BenchError> {
        let failed = |error: Box<dyn std::error::Error>| BenchError::Start {
            server: server.name(),
            error,
        };
        let mut command = match server {
            Server::HostTap => self.tap_server(&self.host_tap),
            Server::TapEcho => self.tap_server(&self.tap_echo),
            Server::Kernel => {
                let mut command = Command::new(&self.this);
                command.args(["--kernel-server", &PORT.to_string()]);
                command
            }
        };
        if server == Server::HostTap {
            command.args(["--sessions", &sessions.to_string()]);
            if let Some(wait) = &self.admission_wait {
                command.args(["--admission-wait", wait]);
            }
        }
        let mut process =
            ServerProcess::spawn(server.name(), command).map_err(|e| failed(e.into()))?;
        if server.on_tap()
            && let Err(error) = self.tap.wait_for_carrier(START_LIMIT)
        {
            let exited = process.check_running().err();
            return Err(failed(exited.map_or_else(|| error.into(), Into::into)));
        }
        wait_until_serving(&mut process, server).map_err(|e| failed(e.into()))?;
        Ok(process)
    }

    fn tap_server(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .args(["--tap", self.tap.name(), "--address", SERVER_CIDR])
            .args(["--port", &PORT.to_string()])
            .args(&self.tap_args)
            .env("RUST_LOG", &self.server_log);
        command
    }
}

const BURST: &str = "(f) burst: 4 clients per session, all held";
const CROWD: &str = "(g) crowd: 3 clients per session churning";
const HALF_OPEN: &str = "(h) 100 silent SYNs, then a client";
const FLOOD: &str = "(i) SYN flood, 2,500/s";

const REFUSED: &str = "refused";
const BUSY: &str = "ERR busy";
const SERVED: &str = "served";
const SERVED_PERCENT: &str = "served %";
const SLOWEST_S: &str = "slowest, s";
const SERVED_PER_S: &str = "served connections/s";
const SYNS_PER_S: &str = "forged SYNs/s";
const WITHIN_A_SECOND: &str = "new clients served within 1 s, %";
const TALK_P99_MS: &str = "open sessions p99 ms";

/// Silent SYNs before each client of (h).
const HALF_OPEN_SYNS: u32 = 100;
/// Forged SYNs a second in (i).
const FLOOD_RATE: u32 = 2_500;
/// A new client every this long in (i).
const FLOOD_NEWCOMER_EVERY: Duration = Duration::from_millis(500);
/// Sessions that talk through (i).
const FLOOD_TALKERS: usize = 4;

impl Bench {
    /// The admission workloads (f) to (i), against `plan.admission_sessions`.
    fn measure_admission(
        &self,
        workload: Workload,
        plan: &Plan,
        results: &mut Results,
    ) -> Result<(), BenchError> {
        let sessions = plan.admission_sessions;
        let forged = || {
            let owned = [Ipv4Addr::new(192, 168, 69, 100)];
            let mac = host_tap::settings::parse_unicast_mac(host_tap::settings::DEFAULT_MAC)
                .expect("the default MAC is valid");
            ForgedSyns::new(self.tap.name(), SERVER_IP, mac, PORT, &owned).map_err(|e| {
                WorkloadError::Io {
                    context: "open a packet socket on the TAP",
                    source: e,
                }
            })
        };
        let tally = |results: &mut Results, name, server, tally: &Tally| {
            results.set(name, REFUSED, server, tally.refused as f64);
            results.set(name, BUSY, server, tally.busy as f64);
            results.set(name, SERVED, server, tally.served as f64);
            results.set(name, SERVED_PERCENT, server, tally.served_percent());
            results.set(name, SLOWEST_S, server, tally.slowest.as_secs_f64());
        };
        match workload {
            Workload::Burst => {
                for server in [Server::HostTap, Server::Kernel] {
                    let burst = self.with_server_of(BURST, server, sessions, |_, address| {
                        admission::burst(address, sessions, 4 * sessions, server.expect())
                    })?;
                    let done = &burst.value;
                    progress(BURST, server, done.to_string());
                    tally(results, BURST, server, done);
                }
            }
            Workload::Crowd => {
                for server in [Server::HostTap, Server::Kernel] {
                    let crowd = self.with_server_of(CROWD, server, sessions, |_, address| {
                        admission::crowd(
                            address,
                            3 * sessions,
                            plan.crowd_duration,
                            server.expect(),
                        )
                    })?;
                    let done = &crowd.value;
                    progress(CROWD, server, done.to_string());
                    tally(results, CROWD, server, done);
                    results.set(CROWD, SERVED_PER_S, server, done.served_per_second());
                }
            }
            Workload::HalfOpen => {
                let server = Server::HostTap;
                let half_open =
                    self.with_server_of(HALF_OPEN, server, sessions, |_, address| {
                        let mut forged = forged()?;
                        // Half-open handshakes of one round are 3 s old in the next.
                        let pause = Duration::from_secs(3);
                        let rounds = plan.half_open_rounds;
                        admission::half_open(
                            address,
                            &mut forged,
                            HALF_OPEN_SYNS,
                            rounds,
                            pause,
                            server.expect(),
                        )
                    })?;
                let done = &half_open.value;
                progress(HALF_OPEN, server, done.to_string());
                tally(results, HALF_OPEN, server, done);
            }
            Workload::Flood => {
                let server = Server::HostTap;
                let flood = self.with_server_of(FLOOD, server, sessions, |_, address| {
                    admission::flood(
                        address,
                        forged()?,
                        FLOOD_RATE,
                        plan.flood_duration,
                        FLOOD_NEWCOMER_EVERY,
                        FLOOD_TALKERS,
                        server.expect(),
                    )
                })?;
                let done = &flood.value;
                let p99 = done
                    .talk
                    .quantile(0.99)
                    .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
                progress(
                    FLOOD,
                    server,
                    format!(
                        "{} SYNs in {:.1} s; new clients: {}; open sessions: {} lines, p99 {p99:.2} ms",
                        done.syns,
                        done.lasted.as_secs_f64(),
                        done.newcomers,
                        done.lines
                    ),
                );
                results.set(
                    FLOOD,
                    SYNS_PER_S,
                    server,
                    done.syns as f64 / done.lasted.as_secs_f64(),
                );
                results.set(FLOOD, REFUSED, server, done.newcomers.refused as f64);
                results.set(
                    FLOOD,
                    WITHIN_A_SECOND,
                    server,
                    done.newcomers.within_a_second_percent(),
                );
                results.set(FLOOD, TALK_P99_MS, server, p99);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Retries one line until it is answered, at most [`START_LIMIT`].
fn wait_until_serving(process: &mut ServerProcess, server: Server) -> Result<(), WorkloadError> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        match workloads::probe(server.address(), server.expect()) {
            Ok(()) => break,
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => {
                process.check_running()?;
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
    // Lets the probe's session finish closing before the workload needs it.
    thread::sleep(Duration::from_millis(100));
    Ok(())
}

fn progress(workload: &str, server: Server, text: String) {
    eprintln!("reversal-bench: {workload}: {}: {text}", server.name());
}

/// The report: machine, command, settings, table, targets.
fn render(args: &Args, plan: &Plan, results: &Results, took: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## reversal-bench\n");
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(
        out,
        "- date: {}",
        humantime::format_rfc3339_seconds(SystemTime::now())
    );
    let command: Vec<String> = std::env::args().collect();
    let _ = writeln!(out, "- command: `{}`", command.join(" "));
    let _ = writeln!(out, "- settings: {}", plan.describe(args));
    let _ = writeln!(out, "- run took {:.0} s\n", took.as_secs_f64());
    out.push_str(&report::table(&results.rows));
    for note in &results.notes {
        let _ = writeln!(out, "\nNote: {note}");
    }
    let _ = writeln!(out, "\nTargets:\n");
    for target in targets(results) {
        let _ = writeln!(out, "{target}");
    }
    out
}

fn targets(results: &Results) -> Vec<Target> {
    let row = |workload, metric| results.get(workload, metric);
    let bulk = row(BULK, MIB_PER_S);
    let bulk_cpu = row(BULK, CPU_PER_MIB);
    let lines = row(REQUEST_RESPONSE, LINES_PER_S);
    let p99 = row(REQUEST_RESPONSE, P99);
    let idle = [row(IDLE, CPU_NO_SESSIONS), row(IDLE, CPU_OPEN_SESSIONS)];
    let growth = row(RSS, RSS_GROWTH);
    let idle_worst = idle
        .iter()
        .map(|r| r.and_then(|r| r.host))
        .reduce(|a, b| Some(a?.max(b?)))
        .flatten();
    vec![
        Target::judge(
            "bulk >= 80 % of the tap-echo ceiling",
            bulk.and_then(Row::host_over_echo),
            |ratio| ratio >= 0.8,
            |ratio| format!("{:.1} %", ratio * 100.0),
        ),
        Target::judge(
            "bulk >= the kernel baseline's (issue 13)",
            bulk.and_then(Row::host_over_kernel),
            |ratio| ratio >= 1.0,
            |ratio| format!("x{ratio:.2}"),
        ),
        Target::judge(
            "bulk server CPU per MiB <= 1.5 x the kernel baseline's (issue 13)",
            bulk_cpu.and_then(Row::host_over_kernel),
            |ratio| ratio <= 1.5,
            |ratio| format!("x{ratio:.2}"),
        ),
        Target::judge(
            "64-client lines/s >= 1.2 x the kernel baseline's (issue 13)",
            lines.and_then(Row::host_over_kernel),
            |ratio| ratio >= 1.2,
            |ratio| format!("x{ratio:.2}"),
        ),
        Target::judge(
            "p99 < 2 ms at 64 clients",
            p99.and_then(|r| r.host),
            |micros| micros < 2000.0,
            |micros| format!("{:.2} ms", micros / 1000.0),
        ),
        Target::judge(
            "idle CPU < 1 % (with and without idle sessions)",
            idle_worst,
            |percent| percent < 1.0,
            |percent| format!("at most {percent:.2} %"),
        ),
        Target::judge(
            "RSS flat between the first and the last connections (within 5 %)",
            growth.and_then(|r| r.host),
            |growth| growth <= 1.05,
            |growth| format!("x{growth:.3}"),
        ),
        Target::judge(
            "burst of 4 x sessions beyond held sessions: 0 refused",
            row(BURST, REFUSED).and_then(|r| r.host),
            |refused| refused == 0.0,
            |refused| format!("{refused:.0} refused"),
        ),
        Target::judge(
            "churn with 3 x sessions clients: 0 refused",
            row(CROWD, REFUSED).and_then(|r| r.host),
            |refused| refused == 0.0,
            |refused| format!("{refused:.0} refused"),
        ),
        Target::judge(
            "churn with 3 x sessions clients: >= 95 % served",
            row(CROWD, SERVED_PERCENT).and_then(|r| r.host),
            |served| served >= 95.0,
            |served| format!("{served:.1} %"),
        ),
        Target::judge(
            "100 silent half-open SYNs: a new client served within 1 s",
            half_open_slowest(results),
            |slowest| slowest <= 1.0,
            |slowest| format!("slowest {slowest:.3} s"),
        ),
        Target::judge(
            "SYN flood >= 2,000/s: >= 90 % of new clients served within 1 s",
            row(FLOOD, WITHIN_A_SECOND)
                .and_then(|r| r.host)
                .filter(|_| flood_rate(results) >= f64::from(2_000)),
            |within| within >= 90.0,
            |within| format!("{within:.0} % at {:.0} SYN/s", flood_rate(results)),
        ),
        Target::judge(
            "SYN flood >= 2,000/s: open sessions p99 < 10 ms",
            row(FLOOD, TALK_P99_MS).and_then(|r| r.host),
            |p99| p99 < 10.0,
            |p99| format!("{p99:.2} ms"),
        ),
    ]
}

/// The slowest client of (h) in seconds, or infinity if one was not served.
fn half_open_slowest(results: &Results) -> Option<f64> {
    let host = |metric| results.get(HALF_OPEN, metric).and_then(|r| r.host);
    let slowest = host(SLOWEST_S)?;
    Some(if host(SERVED_PERCENT)? < 100.0 {
        f64::INFINITY
    } else {
        slowest
    })
}

/// The forged SYNs a second of (i), 0 if not measured.
fn flood_rate(results: &Results) -> f64 {
    results
        .get(FLOOD, SYNS_PER_S)
        .and_then(|r| r.host)
        .unwrap_or(0.0)
}

/// CPUs, CPU model and kernel, from `/proc`.
fn machine() -> String {
    let cpus = thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |k| k.trim().to_owned());
    format!("{cpus} CPUs ({model}), Linux {kernel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(["reversal-bench"].iter().chain(extra)).unwrap()
    }

    #[test]
    fn only_picks_workloads_in_table_order() {
        let plan = Plan::new(&args(&["--only", "e,a"]));
        assert_eq!(plan.workloads, [Workload::Bulk, Workload::Rss]);
        assert_eq!(Plan::new(&args(&[])).workloads.len(), 9);
    }

    #[test]
    fn quick_is_small_and_options_override_it() {
        let quick = Plan::new(&args(&["--quick"]));
        let full = Plan::new(&args(&[]));
        assert!(quick.bulk_bytes < full.bulk_bytes && quick.rss_total < full.rss_total);
        assert_eq!(full.bulk_bytes, 256 << 20);
        assert_eq!(full.rss_total, 100_000);
        let custom = Plan::new(&args(&["--quick", "--bulk-mib", "3", "--duration", "0.5"]));
        assert_eq!(custom.bulk_bytes, 3 << 20);
        assert_eq!(custom.duration, Duration::from_millis(500));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            &["--mtu", "100"][..],
            &["--only", "z"],
            &["--duration", "0"],
        ] {
            let parsed = Args::try_parse_from(["reversal-bench"].iter().chain(bad));
            assert!(parsed.is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn targets_follow_the_ratios() {
        let mut results = Results::default();
        results.set(BULK, MIB_PER_S, Server::HostTap, 90.0);
        results.set(BULK, MIB_PER_S, Server::TapEcho, 100.0);
        results.set(IDLE, CPU_NO_SESSIONS, Server::HostTap, 0.0);
        results.set(IDLE, CPU_OPEN_SESSIONS, Server::HostTap, 1.5);
        results.set(BULK, MIB_PER_S, Server::Kernel, 100.0);
        results.set(BULK, CPU_PER_MIB, Server::HostTap, 2.0);
        results.set(BULK, CPU_PER_MIB, Server::Kernel, 1.0);
        let targets = targets(&results);
        let verdict = |goal: &str| {
            targets
                .iter()
                .find(|target| target.goal.starts_with(goal))
                .map(|target| target.verdict)
                .unwrap()
        };
        assert_eq!(verdict("bulk >= 80 %"), report::Verdict::Met);
        assert_eq!(verdict("bulk >= the kernel"), report::Verdict::Missed);
        assert_eq!(verdict("bulk server CPU"), report::Verdict::Missed);
        assert_eq!(verdict("64-client"), report::Verdict::NotMeasured);
        assert_eq!(verdict("idle CPU"), report::Verdict::Missed);
    }

    #[test]
    fn a_value_lands_in_its_server_column() {
        let mut results = Results::default();
        results.set(CHURN, CONNECTIONS_PER_S, Server::Kernel, 5.0);
        results.set(CHURN, CONNECTIONS_PER_S, Server::HostTap, 4.0);
        let row = results.get(CHURN, CONNECTIONS_PER_S).unwrap();
        assert_eq!(
            (row.host, row.kernel, row.echo),
            (Some(4.0), Some(5.0), None)
        );
        assert_eq!(results.rows.len(), 1);
    }
}

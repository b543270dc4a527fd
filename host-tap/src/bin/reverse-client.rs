//! `reverse-client`: the seed's `thread_client` for the reversal service.
//!
//! Talks to any reversal server through the operating system's own stack
//! (`std::net`): one more standard client next to `nc`. With a terminal it
//! prompts `>>>`, sends the line typed and prints the reply; with piped input
//! it sends every line, prints exactly the replies and exits once the server
//! has answered the last one.

use std::fmt;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use clap::Parser;

/// The seed's prompt.
const PROMPT: &[u8] = b">>>";
/// How long, after the server closed, the input may take to finish sending.
const SEND_GRACE: Duration = Duration::from_secs(1);

const AFTER_HELP: &str = "\
Examples:
  reverse-client -i 192.168.69.1 -p 8888       # >>> prompt; type lines, Ctrl-D ends
  printf 'hello\\nworld\\n' | reverse-client -i 192.168.69.1
  echo hello | reverse-client --udp -i 192.168.69.1

With a terminal, each line typed is sent and its reply printed before the next
>>> prompt. With piped input there is no prompt: every line is sent, the output
is exactly the server's replies, and the client exits after the last one (it
half-closes after the input ends, so an unterminated last line is answered too).

Exit codes:
   0  every line answered
   1  cannot connect, or the connection failed
   2  command line not understood
   3  --udp: some datagrams got no reply within the timeout
   4  the server closed the connection before all input was sent (e.g. ERR busy)
";

/// Send lines to a reversal server and print its replies.
#[derive(Debug, Parser)]
#[command(name = "reverse-client", version, after_help = AFTER_HELP)]
struct Args {
    /// Server IP address, IPv4 or IPv6 (the seed's `-i`).
    #[arg(
        short = 'i',
        long = "ip",
        value_name = "IP",
        default_value = "127.0.0.1"
    )]
    ip: IpAddr,

    /// Server port (the seed's `-p`).
    #[arg(short, long, value_name = "PORT", default_value_t = 8888,
          value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,

    /// Send each line as one UDP datagram and print the datagram that answers it.
    #[arg(long)]
    udp: bool,

    /// How long to wait for the connection, and with --udp for each reply.
    #[arg(short, long, value_name = "DURATION", default_value = "2s",
          value_parser = parse_timeout)]
    timeout: Duration,
}

/// A humantime duration that is not zero (sockets take no zero timeout).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err("the timeout must be longer than 0".into()),
        Ok(duration) => Ok(duration),
        Err(error) => Err(format!("{error} (write e.g. 500ms, 2s)")),
    }
}

/// Why the conversation did not complete.
#[derive(Debug)]
enum ClientError {
    Connect(SocketAddr, io::Error),
    Io(&'static str, io::Error),
    /// The server closed while input was still to be sent.
    ClosedEarly(Option<io::Error>),
    NoReplies {
        missing: usize,
        sent: usize,
    },
}

impl ClientError {
    fn exit_code(&self) -> u8 {
        match self {
            ClientError::Connect(..) | ClientError::Io(..) => 1,
            ClientError::NoReplies { .. } => 3,
            ClientError::ClosedEarly(_) => 4,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(address, error) => {
                write!(f, "cannot connect to {address}: {error}")
            }
            ClientError::Io(what, error) => write!(f, "cannot {what}: {error}"),
            ClientError::ClosedEarly(None) => {
                f.write_str("the server closed the connection before all input was sent")
            }
            ClientError::ClosedEarly(Some(error)) => write!(
                f,
                "the server closed the connection before all input was sent ({error})"
            ),
            ClientError::NoReplies { missing, sent } => {
                write!(f, "{missing} of {sent} datagrams got no reply")
            }
        }
    }
}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> ClientError {
    move |error| ClientError::Io(what, error)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let server = SocketAddr::new(args.ip, args.port);
    let interactive = io::stdin().is_terminal();
    let mut output = io::stdout().lock();
    let result = if args.udp {
        exchange_datagrams(
            server,
            args.timeout,
            &mut io::stdin().lock(),
            &mut output,
            interactive,
        )
    } else {
        TcpStream::connect_timeout(&server, args.timeout)
            .map_err(|error| ClientError::Connect(server, error))
            .and_then(|stream| {
                if interactive {
                    converse_interactively(&stream, &mut io::stdin().lock(), &mut output)
                } else {
                    converse_piped(&stream, io::stdin(), &mut output)
                }
            })
    };
    let flushed = output.flush().map_err(io_error("write the output"));
    match result.and(flushed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("reverse-client: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Streams all of `input` to the server while copying its replies to
/// `output`, half-closes after the input, and reads until the server closes.
fn converse_piped(
    stream: &TcpStream,
    mut input: impl Read + Send + 'static,
    output: &mut impl Write,
) -> Result<(), ClientError> {
    let mut sender = stream
        .try_clone()
        .map_err(io_error("share the connection"))?;
    let (sent, all_sent) = mpsc::channel();
    // Sending on its own thread: a server that applies backpressure must see
    // its replies read while the input is still going out.
    thread::spawn(move || {
        let result =
            io::copy(&mut input, &mut sender).and_then(|_| sender.shutdown(Shutdown::Write));
        // The receiver may have given up already.
        let _ = sent.send(result);
    });
    let mut replies = stream;
    io::copy(&mut replies, output).map_err(io_error("receive the replies"))?;
    match all_sent.recv_timeout(SEND_GRACE) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(ClientError::ClosedEarly(Some(error))),
        Err(_) => Err(ClientError::ClosedEarly(None)),
    }
}

/// Reads the next line of `input` into `line` (terminator kept), after the
/// seed's `>>>` prompt if `prompt`; false at the end of input.
fn next_line(
    input: &mut impl BufRead,
    output: &mut impl Write,
    prompt: bool,
    line: &mut Vec<u8>,
) -> Result<bool, ClientError> {
    if prompt {
        output
            .write_all(PROMPT)
            .and_then(|()| output.flush())
            .map_err(io_error("write the prompt"))?;
    }
    line.clear();
    let read = input
        .read_until(b'\n', line)
        .map_err(io_error("read the input"))?;
    if read == 0 && prompt {
        // Ctrl-D: end the prompt's line.
        output
            .write_all(b"\n")
            .map_err(io_error("write the output"))?;
    }
    Ok(read > 0)
}

/// The seed's loop: prompt, read a line, send it, print its reply. At the
/// end of input, half-closes and prints what the server still sends.
fn converse_interactively(
    stream: &TcpStream,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> Result<(), ClientError> {
    let mut replies = io::BufReader::new(stream);
    let mut line = Vec::new();
    let mut reply = Vec::new();
    while next_line(input, output, true, &mut line)? {
        let mut sender = stream;
        if let Err(error) = sender.write_all(&line) {
            return Err(ClientError::ClosedEarly(Some(error)));
        }
        if !line.ends_with(b"\n") {
            // Input ended inside a line: it is answered after the half-close.
            break;
        }
        reply.clear();
        if replies
            .read_until(b'\n', &mut reply)
            .map_err(io_error("receive a reply"))?
            == 0
        {
            return Err(ClientError::ClosedEarly(None));
        }
        output
            .write_all(&reply)
            .map_err(io_error("write the output"))?;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(io_error("half-close the connection"))?;
    io::copy(&mut replies, output).map_err(io_error("receive the replies"))?;
    Ok(())
}

/// Sends each line of `input` (with its terminator) as one datagram and
/// prints the datagram that answers it, waiting up to `timeout` for each.
fn exchange_datagrams(
    server: SocketAddr,
    timeout: Duration,
    input: &mut impl BufRead,
    output: &mut impl Write,
    prompt: bool,
) -> Result<(), ClientError> {
    let any: IpAddr = if server.is_ipv4() {
        "0.0.0.0".parse().expect("a valid literal")
    } else {
        "::".parse().expect("a valid literal")
    };
    let socket = UdpSocket::bind((any, 0)).map_err(io_error("open a UDP socket"))?;
    // Connected: only the server's datagrams are received.
    socket
        .connect(server)
        .map_err(|error| ClientError::Connect(server, error))?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(io_error("set the reply timeout"))?;
    let mut line = Vec::new();
    let mut reply = vec![0u8; 65_536];
    let (mut sent, mut missing) = (0, 0);
    while next_line(input, output, prompt, &mut line)? {
        discard_late_replies(&socket, &mut reply)?;
        socket.send(&line).map_err(io_error("send a datagram"))?;
        sent += 1;
        match socket.recv(&mut reply) {
            Ok(len) => output
                .write_all(&reply[..len])
                .map_err(io_error("write the output"))?,
            Err(error) if is_timeout(&error) => {
                missing += 1;
                eprintln!(
                    "reverse-client: no reply to datagram {sent} within {}",
                    humantime::format_duration(timeout)
                );
            }
            Err(error) => return Err(ClientError::Io("receive a reply", error)),
        }
    }
    if missing > 0 {
        return Err(ClientError::NoReplies { missing, sent });
    }
    Ok(())
}

/// Drops replies that came after their timeout, so that they are not taken
/// for the answer to the next datagram.
fn discard_late_replies(socket: &UdpSocket, buffer: &mut [u8]) -> Result<(), ClientError> {
    socket
        .set_nonblocking(true)
        .map_err(io_error("poll the UDP socket"))?;
    while socket.recv(buffer).is_ok() {}
    socket
        .set_nonblocking(false)
        .map_err(io_error("poll the UDP socket"))
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    /// A loopback server reversing bytes of each line (enough for ASCII), and
    /// answering an unterminated last line after the client's FIN.
    fn reversing_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                thread::spawn(move || {
                    let mut reader = io::BufReader::new(stream.try_clone().unwrap());
                    let mut line = Vec::new();
                    while let Ok(1..) = reader.read_until(b'\n', &mut line) {
                        let terminated = line.last() == Some(&b'\n');
                        let body = line.strip_suffix(b"\n").unwrap_or(&line);
                        let mut reply: Vec<u8> = body.iter().rev().copied().collect();
                        if terminated {
                            reply.push(b'\n');
                        }
                        if stream.write_all(&reply).is_err() {
                            break;
                        }
                        line.clear();
                    }
                });
            }
        });
        address
    }

    fn connect(address: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    #[test]
    fn piped_output_is_exactly_the_replies() {
        let stream = connect(reversing_server());
        let mut output = Vec::new();
        converse_piped(
            &stream,
            io::Cursor::new(b"hello\nabc\nlast".to_vec()),
            &mut output,
        )
        .unwrap();
        assert_eq!(output, b"olleh\ncba\ntsal");
    }

    #[test]
    fn piped_input_larger_than_the_socket_buffers_goes_through() {
        let stream = connect(reversing_server());
        let input: Vec<u8> = b"0123456789abcdef\n".repeat(100_000);
        let mut output = Vec::new();
        converse_piped(&stream, io::Cursor::new(input), &mut output).unwrap();
        assert_eq!(output, b"fedcba9876543210\n".repeat(100_000));
    }

    #[test]
    fn server_closing_before_the_input_ends_is_closed_early() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(b"ERR busy\n").unwrap();
        });
        let stream = connect(address);
        let mut output = Vec::new();
        // Input that never ends, like a terminal nobody types into.
        let (_keep_open, input) = std::os::unix::net::UnixStream::pair().unwrap();
        let error = converse_piped(&stream, input, &mut output).unwrap_err();
        assert!(matches!(error, ClientError::ClosedEarly(_)), "{error}");
        assert_eq!(error.exit_code(), 4);
        assert_eq!(output, b"ERR busy\n");
    }

    #[test]
    fn interactive_prompts_before_each_line_and_prints_each_reply() {
        let stream = connect(reversing_server());
        let mut output = Vec::new();
        converse_interactively(&stream, &mut &b"Hello World!!!\nabc\n"[..], &mut output).unwrap();
        assert_eq!(
            String::from_utf8(output).unwrap(),
            ">>>!!!dlroW olleH\n>>>cba\n>>>\n"
        );
    }

    #[test]
    fn interactive_input_ending_inside_a_line_gets_its_reply_after_the_half_close() {
        let stream = connect(reversing_server());
        let mut output = Vec::new();
        converse_interactively(&stream, &mut &b"abc"[..], &mut output).unwrap();
        assert_eq!(output, b">>>cba");
    }

    /// A loopback UDP server reversing each datagram's bytes, except that it
    /// ignores datagrams starting with `!`.
    fn udp_server() -> SocketAddr {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = socket.local_addr().unwrap();
        thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            loop {
                let (len, peer) = socket.recv_from(&mut buffer).unwrap();
                let datagram = &mut buffer[..len];
                if datagram.first() != Some(&b'!') {
                    datagram.reverse();
                    socket.send_to(datagram, peer).unwrap();
                }
            }
        });
        address
    }

    #[test]
    fn each_line_is_one_datagram_and_its_reply_is_printed() {
        let mut output = Vec::new();
        let timeout = Duration::from_secs(5);
        exchange_datagrams(
            udp_server(),
            timeout,
            &mut &b"ab\ncd\n"[..],
            &mut output,
            false,
        )
        .unwrap();
        assert_eq!(output, b"\nba\ndc");
    }

    #[test]
    fn unanswered_datagrams_are_counted_after_their_timeout() {
        let mut output = Vec::new();
        let timeout = Duration::from_millis(100);
        let error = exchange_datagrams(
            udp_server(),
            timeout,
            &mut &b"!x\nab\n!y\n"[..],
            &mut output,
            false,
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::NoReplies {
                    missing: 2,
                    sent: 3
                }
            ),
            "{error}"
        );
        assert_eq!(error.exit_code(), 3);
        assert_eq!(output, b"\nba");
    }

    #[test]
    fn zero_timeout_is_a_usage_error() {
        let error = Args::try_parse_from(["reverse-client", "-t", "0"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(Args::try_parse_from(["reverse-client", "-t", "50ms"]).is_ok());
    }

    #[test]
    fn help_lists_the_exit_codes() {
        use clap::CommandFactory;
        let help = Args::command().render_help().to_string();
        assert!(help.contains("Exit codes:"), "{help}");
    }
}

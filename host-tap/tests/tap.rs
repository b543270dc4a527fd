//! `TapDevice` against the real kernel.
//!
//! A TAP must never touch the host's network, so every test here re-runs
//! itself in a fresh network and mount namespace (`unshare --net --mount`)
//! and does its work there (see `reversal_netns::namespace`). Without root,
//! `/dev/net/tun`, `unshare` or a tool a test needs, the tests print
//! `skipped: ...` and pass, unless `REQUIRE_TAP=1`, where they fail instead.
//!
//! Run with: `cargo test -p host-tap --test tap -- --nocapture`.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use host_tap::tap::{Offloads, TapDevice, TapError, TapOptions, TapStats};
use reversal_netns::namespace::{NOBODY, expect_one_passed, in_own_namespace};
use reversal_netns::process::{COMMAND_LIMIT, run};
use reversal_netns::tap::{interface_exists, ip, run_ip};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address};

/// Set in a re-run as user `nobody`: the check to make there (see `as_nobody`).
const NOBODY_CHECK: &str = "HOST_TAP_TEST_NOBODY_CHECK";

/// Adds a persistent TAP `name`, up, with `host_cidr` on the kernel side.
fn add_tap(name: &str, host_cidr: &str) {
    ip(&format!("tuntap add name {name} mode tap"));
    ip(&format!("addr add {host_cidr} dev {name}"));
    ip(&format!("link set dev {name} up"));
}

/// An Ethernet broadcast of a local experimental EtherType: nobody answers it.
const TEST_FRAME: [u8; 60] = {
    let mut frame = [0; 60];
    let mut i = 0;
    while i < 6 {
        frame[i] = 0xff;
        i += 1;
    }
    frame[6] = 0x02;
    frame[12] = 0x88;
    frame[13] = 0xb5;
    frame
};

fn send_test_frame(device: &mut TapDevice) {
    let token = device
        .transmit(Instant::now())
        .expect("a TAP always offers a tx token");
    token.consume(TEST_FRAME.len(), |frame| frame.copy_from_slice(&TEST_FRAME));
}

fn variant_name(error: &TapError) -> String {
    let debug = format!("{error:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

const SMOLTCP_ADDRESS: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);
const ECHO_PORT: u16 = 7;

/// A kernel TCP client sends `len` bytes through the TAP to a smoltcp echo
/// socket and must get them back unchanged; returns the device's counters.
fn echo_through_tap(mtu: usize, len: usize, options: TapOptions) -> TapStats {
    ip("tuntap add name tap0 mode tap");
    ip(&format!("link set dev tap0 mtu {mtu}"));
    ip("addr add 192.168.69.100/24 dev tap0");
    ip("link set dev tap0 up");
    let mut device = TapDevice::open_with("tap0", options).expect("open tap0");
    assert_eq!(device.mtu(), mtu);
    assert_eq!(device.capabilities().max_transmission_unit, mtu + 14);
    let offloaded = device.offloads() != Offloads::NONE;
    assert_eq!(offloaded, options.offload, "{:?}", device.offloads());

    let config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 0x01]).into());
    let mut iface = Interface::new(config, &mut device, Instant::now());
    iface.update_ip_addrs(|addrs| {
        addrs.push(IpCidr::new(SMOLTCP_ADDRESS.into(), 24)).unwrap();
    });
    let mut sockets = SocketSet::new(vec![]);
    let buffer = || tcp::SocketBuffer::new(vec![0; 256 * 1024]);
    let mut echo = tcp::Socket::new(buffer(), buffer());
    echo.listen(ECHO_PORT).unwrap();
    let echo = sockets.add(echo);

    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let sent = payload.clone();
    let client = thread::spawn(move || {
        let server = SocketAddr::new(IpAddr::V4(SMOLTCP_ADDRESS), ECHO_PORT);
        let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(10))
            .expect("connect to smoltcp");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let writing = thread::spawn(move || {
            writer.write_all(&sent).expect("send to smoltcp");
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut received = Vec::new();
        stream.read_to_end(&mut received).expect("receive the echo");
        writing.join().unwrap();
        received
    });

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut chunk = [0; 16 * 1024];
    while !client.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "echo did not finish in time"
        );
        let now = Instant::now();
        iface.poll(now, &mut device, &mut sockets);
        let socket = sockets.get_mut::<tcp::Socket>(echo);
        while socket.can_recv() && socket.can_send() {
            let room = socket.send_capacity() - socket.send_queue();
            let take = room.min(chunk.len());
            let moved = socket.recv_slice(&mut chunk[..take]).unwrap();
            socket.send_slice(&chunk[..moved]).unwrap();
        }
        if !socket.may_recv() && socket.may_send() {
            socket.close();
        }
        iface.poll(now, &mut device, &mut sockets);
        // Capped so that the end of the client thread is noticed soon.
        let delay = iface
            .poll_delay(now, &sockets)
            .map_or(Duration::MAX, Into::into);
        device
            .wait(Some(delay.min(Duration::from_millis(50))))
            .expect("wait on tap0");
    }
    let received = client.join().unwrap();
    assert!(
        received == payload,
        "echo differs: {} of {len} bytes back",
        received.len()
    );

    let stats = device.stats();
    assert!(stats.frames_in > 0 && stats.frames_out > 0, "{stats:?}");
    assert_eq!((stats.read_errors, stats.write_errors), (0, 0), "{stats:?}");
    assert_eq!(
        (stats.rx_oversized, stats.rx_bad_checksums),
        (0, 0),
        "{stats:?}"
    );
    stats
}

#[test]
fn echo_at_mtu_1500() {
    in_own_namespace("echo_at_mtu_1500", &[], || {
        let stats = echo_through_tap(1500, 1 << 20, TapOptions::new());
        // Segments of up to 64 KiB each way, where the MTU allows 1460 bytes.
        assert!(stats.frames_out < (1 << 20) / 8192, "{stats:?}");
    });
}

#[test]
fn echo_at_mtu_1500_without_offloads() {
    in_own_namespace("echo_at_mtu_1500_without_offloads", &[], || {
        let stats = echo_through_tap(1500, 1 << 20, TapOptions::new().with_offload(false));
        assert!(stats.frames_out >= (1 << 20) / 1460, "{stats:?}");
    });
}

#[test]
fn echo_at_mtu_65521() {
    in_own_namespace("echo_at_mtu_65521", &[], || {
        echo_through_tap(65521, 4 << 20, TapOptions::new());
    });
}

#[test]
fn open_of_a_missing_tap_is_tap_missing() {
    in_own_namespace("open_of_a_missing_tap_is_tap_missing", &[], || {
        let error = TapDevice::open("tapnone").unwrap_err();
        assert!(
            matches!(&error, TapError::TapMissing { name } if name == "tapnone"),
            "{error:?}"
        );
        // Root could have created it while trying; it must not have.
        assert!(!interface_exists("tapnone"));
    });
}

#[test]
fn open_of_an_interface_that_is_no_tap_is_not_a_tap() {
    in_own_namespace(
        "open_of_an_interface_that_is_no_tap_is_not_a_tap",
        &[],
        || {
            ip("tuntap add name tun0 mode tun");
            for name in ["lo", "tun0"] {
                let error = TapDevice::open(name).unwrap_err();
                assert!(
                    matches!(error, TapError::NotATap { .. }),
                    "{name}: {error:?}"
                );
            }
        },
    );
}

#[test]
fn second_open_of_a_tap_is_busy() {
    in_own_namespace("second_open_of_a_tap_is_busy", &[], || {
        ip("tuntap add name tap0 mode tap");
        let _first = TapDevice::open("tap0").expect("first open");
        let error = TapDevice::open("tap0").unwrap_err();
        assert!(matches!(error, TapError::Busy { .. }), "{error:?}");
    });
}

#[test]
fn wait_times_out_when_no_frame_comes() {
    in_own_namespace("wait_times_out_when_no_frame_comes", &[], || {
        // Down, so the kernel sends nothing (no IPv6 autoconfiguration either).
        ip("tuntap add name tap0 mode tap");
        let device = TapDevice::open("tap0").unwrap();
        let started = std::time::Instant::now();
        assert!(!device.wait(Some(Duration::from_millis(100))).unwrap());
        assert!(started.elapsed() >= Duration::from_millis(100));
    });
}

#[test]
fn wait_wakes_when_a_frame_comes() {
    in_own_namespace("wait_wakes_when_a_frame_comes", &[], || {
        add_tap("tap0", "192.168.69.100/24");
        let mut device = TapDevice::open("tap0").unwrap();
        // Sending to the smoltcp side makes the kernel ARP for it through the TAP.
        let socket = UdpSocket::bind((Ipv4Addr::new(192, 168, 69, 100), 0)).unwrap();
        socket
            .send_to(b"ping", (Ipv4Addr::new(192, 168, 69, 1), 9))
            .unwrap();
        assert!(device.wait(Some(Duration::from_secs(5))).unwrap());
        let (rx, _tx) = device.receive(Instant::now()).expect("a frame");
        let len = smoltcp::phy::RxToken::consume(rx, |frame| frame.len());
        assert!(len >= 14);
        assert_eq!(device.stats().frames_in, 1);
    });
}

#[test]
fn wait_or_wakeup_ends_when_the_wakeup_is_readable() {
    in_own_namespace(
        "wait_or_wakeup_ends_when_the_wakeup_is_readable",
        &[],
        || {
            ip("tuntap add name tap0 mode tap");
            let device = TapDevice::open("tap0").unwrap();
            let (wakeup, mut signal_handler_end) = UnixStream::pair().unwrap();
            signal_handler_end.write_all(b"!").unwrap();
            let started = std::time::Instant::now();
            let frame = device
                .wait_or_wakeup(wakeup.as_fd(), Some(Duration::from_secs(5)))
                .unwrap();
            assert!(!frame, "no frame came, only the wakeup");
            assert!(started.elapsed() < Duration::from_secs(1));
        },
    );
}

#[test]
fn writes_while_the_link_is_down_are_counted_and_survived() {
    in_own_namespace(
        "writes_while_the_link_is_down_are_counted_and_survived",
        &[],
        || {
            ip("tuntap add name tap0 mode tap");
            let mut device = TapDevice::open("tap0").unwrap();
            send_test_frame(&mut device); // the kernel answers EIO
            send_test_frame(&mut device);
            assert_eq!(device.stats().write_errors, 2);
            assert_eq!(device.stats().frames_out, 0);
            // A down link queues nothing to read: no frame, but no error either.
            assert!(device.receive(Instant::now()).is_none());
            assert_eq!(device.stats().read_errors, 0);

            ip("link set dev tap0 up");
            send_test_frame(&mut device);
            assert_eq!(device.stats().frames_out, 1);
            assert_eq!(device.stats().write_errors, 2);
        },
    );
}

#[test]
fn deleting_an_attached_tap_is_survived() {
    in_own_namespace("deleting_an_attached_tap_is_survived", &[], || {
        add_tap("tap0", "192.168.69.100/24");
        let mut device = TapDevice::open("tap0").unwrap();
        ip("link delete dev tap0");

        // Reads and writes now fail with EBADFD: counted, never a panic.
        assert!(device.receive(Instant::now()).is_none());
        assert!(device.receive(Instant::now()).is_none());
        assert_eq!(device.stats().read_errors, 2);
        send_test_frame(&mut device);
        assert_eq!(device.stats().write_errors, 1);

        // And `wait` says so at once instead of reporting "readable" for ever.
        let started = std::time::Instant::now();
        let error = device.wait(Some(Duration::from_secs(5))).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotConnected, "{error}");
        assert!(started.elapsed() < Duration::from_secs(1));
    });
}

#[test]
fn create_configures_the_tap_and_drop_removes_it() {
    in_own_namespace("create_configures_the_tap_and_drop_removes_it", &[], || {
        let host: [(IpAddr, u8); 2] = [
            ("192.168.70.100".parse().unwrap(), 24),
            ("fd00:70::100".parse().unwrap(), 64),
        ];
        let device = TapDevice::create("tapc0", &host).expect("create tapc0");
        assert_eq!(device.name(), "tapc0");
        assert_eq!(device.mtu(), 1500);

        let link = String::from_utf8(run_ip("-o link show dev tapc0").stdout).unwrap();
        assert!(link.contains(",UP"), "{link}");
        let addresses = String::from_utf8(run_ip("-o addr show dev tapc0").stdout).unwrap();
        assert!(addresses.contains("inet 192.168.70.100/24"), "{addresses}");
        let ipv6 = addresses
            .lines()
            .find(|line| line.contains("inet6 fd00:70::100/64"))
            .unwrap_or_else(|| panic!("no IPv6 address: {addresses}"));
        // `nodad`: usable at once, not tentative.
        assert!(!ipv6.contains("tentative"), "{ipv6}");

        drop(device);
        assert!(!interface_exists("tapc0"), "tapc0 outlived its device");
    });
}

#[test]
fn create_expands_a_name_template() {
    in_own_namespace("create_expands_a_name_template", &[], || {
        let device = TapDevice::create("tapt%d", &[]).expect("create tapt%d");
        assert_eq!(device.name(), "tapt0");
        assert!(interface_exists("tapt0"));
    });
}

#[test]
fn create_over_an_existing_interface_is_already_exists() {
    in_own_namespace(
        "create_over_an_existing_interface_is_already_exists",
        &[],
        || {
            ip("tuntap add name tap0 mode tap");
            let error = TapDevice::create("tap0", &[]).unwrap_err();
            assert!(matches!(error, TapError::AlreadyExists { .. }), "{error:?}");
            assert!(interface_exists("tap0"), "the existing TAP was removed");
        },
    );
}

#[test]
fn create_with_a_bad_address_reports_ip_and_removes_the_tap() {
    in_own_namespace(
        "create_with_a_bad_address_reports_ip_and_removes_the_tap",
        &[],
        || {
            let host = [("192.168.70.100".parse().unwrap(), 99)];
            let error = TapDevice::create("tapbad", &host).unwrap_err();
            let TapError::IpCommandFailed { command, stderr } = &error else {
                panic!("expected IpCommandFailed, got {error:?}");
            };
            assert_eq!(command, "ip addr add 192.168.70.100/99 dev tapbad");
            assert!(!stderr.is_empty());
            assert!(
                !interface_exists("tapbad"),
                "the half-made TAP was left behind"
            );
        },
    );
}

/// Runs `check` (`open <name>` or `create <name>`) as user `nobody` in this
/// namespace; it must end in `expected` (`Ok` or a `TapError` variant name).
fn as_nobody(exe: &Path, check: &str, expected: &str) {
    let test = "unprivileged_user_gets_the_matching_result";
    let output = run(
        Command::new("setpriv")
            .arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .args(["--clear-groups", "--"])
            .arg(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(NOBODY_CHECK, format!("{check} {expected}")),
        b"",
        COMMAND_LIMIT,
    );
    expect_one_passed(test, &format!("`{check}` as nobody"), &output);
}

/// The part of `unprivileged_user_gets_the_matching_result` that runs as nobody.
fn check_as_nobody(spec: &str) {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let [operation, name, expected] = words[..] else {
        panic!("bad {NOBODY_CHECK}: {spec:?}");
    };
    let result = match operation {
        "open" => TapDevice::open(name),
        "create" => TapDevice::create(name, &[]),
        _ => panic!("bad operation in {NOBODY_CHECK}: {spec:?}"),
    };
    let outcome = match &result {
        Ok(_) => "Ok".to_owned(),
        Err(error) => {
            println!("{operation} {name}: {error}");
            variant_name(error)
        }
    };
    assert_eq!(outcome, expected, "{operation} {name} as nobody");
}

#[test]
fn unprivileged_user_gets_the_matching_result() {
    if let Ok(spec) = std::env::var(NOBODY_CHECK) {
        check_as_nobody(&spec);
        return;
    }
    in_own_namespace(
        "unprivileged_user_gets_the_matching_result",
        &["setpriv", "mount", "mknod", "chmod"],
        || {
            ip(&format!("tuntap add name tapmine mode tap user {NOBODY}"));
            // Root's own: nobody may not attach. (A TAP with no owner at all would
            // be open to anyone who can open /dev/net/tun.)
            ip("tuntap add name taproot mode tap user 0");
            // This mount namespace gets its own /dev/net whose tun node's mode we pick;
            // the host's /dev/net/tun stays as it is. The test binary is copied there
            // too, so that nobody can run it wherever the target directory lives.
            let dir = Path::new("/dev/net");
            let mount = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "mode=0755", "tmpfs"])
                .arg(dir)
                .status()
                .expect("run mount");
            assert!(mount.success(), "mount a tmpfs on /dev/net");
            let tun = dir.join("tun");
            let mknod = Command::new("mknod")
                .arg(&tun)
                .args(["c", "10", "200"])
                .status()
                .expect("run mknod");
            assert!(mknod.success(), "mknod /dev/net/tun");
            let exe = dir.join("tap-test");
            std::fs::copy(std::env::current_exe().unwrap(), &exe).expect("copy the test binary");

            let chmod = |mode: &str| {
                let status = Command::new("chmod")
                    .arg(mode)
                    .arg(&tun)
                    .status()
                    .expect("run chmod");
                assert!(status.success());
            };
            chmod("0600");
            as_nobody(&exe, "open tapmine", "TunDeviceDenied");
            chmod("0666");
            as_nobody(&exe, "open tapmine", "Ok");
            as_nobody(&exe, "open taproot", "NoPermission");
            as_nobody(&exe, "open tapnone", "TapMissing");
            as_nobody(&exe, "create tapnew", "NoPermission");
            assert!(!interface_exists("tapnew"));
        },
    );
}

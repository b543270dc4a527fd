//! A client of a reversal server that reboots: the server loses its
//! sessions, the client's old connection is reset when it next sends, and
//! a new connection is served.

use reversal_core::{Capacity, HeapResources, ServerConfig};
use reversal_sim::reversal::{Network, Script};
use smoltcp::time::{Duration, Instant};

type Net = Network;

/// Memory for a boot: two sessions, one busy socket.
fn resources() -> &'static mut HeapResources<'static> {
    let capacity = Capacity::new(2, 1024, 128).with_spare_sockets(1);
    Box::leak(Box::new(HeapResources::new(capacity)))
}

fn network() -> Net {
    let _ = env_logger::builder().is_test(true).try_init();
    Net::new(3, ServerConfig::new(2, 128), resources()).unwrap()
}

#[test]
fn a_client_whose_server_reboots_is_reset_reconnects_and_is_served() {
    let mut net = network();
    let talk = net.talk(Script::new().send_line("first"));
    assert_eq!(
        net.run_until_replies(talk, 1, Duration::from_secs(10))
            .reply_text(),
        ["tsrif\n"]
    );
    let before = net.sim[net.server()].counters();
    assert_eq!((before.connections, before.lines), (1, 1));

    // Power fails for ten seconds; the board boots from scratch.
    let crashed_at = net.sim.now();
    net.crash_server();
    net.sim.run_for(Duration::from_secs(10)).unwrap();
    net.restart_server(resources()).unwrap();
    assert_eq!(net.sim[net.server()].counters().connections, 0);

    net.continue_with(talk, Script::new().send_line("second"));
    let old = net.run_until_ended(talk, Duration::from_secs(60));
    assert!(old.was_reset(), "{old:?}");
    assert_eq!(old.reply_text(), ["tsrif\n"], "nothing more on the old one");

    let again = net.reconnect(talk, Script::new().send_line("second").close());
    let new = net.run_until_ended(again, Duration::from_secs(10));
    assert_eq!(new.reply_text(), ["dnoces\n"]);
    assert!(!new.was_reset());
    assert!(new.started_at().unwrap() > crashed_at);
    assert_eq!(net.sim[net.server()].counters().lines, 1);
}

#[test]
fn a_reboot_on_a_schedule_while_clients_wait_for_replies() {
    let mut net = network();
    let early = net.talk(Script::new().send_line("early").close());
    let server = net.server();
    net.sim
        .schedule(Instant::from_secs(1), move |sim| sim.crash(server));
    net.run_until_ended(early, Duration::from_secs(10));

    // A client that starts while the server is down cannot connect yet:
    // its SYNs are lost, and it retries.
    net.sim.run_for(Duration::from_secs(2)).unwrap();
    let during = net.talk(Script::new().send_line("during").close());
    net.sim.run_for(Duration::from_secs(2)).unwrap();
    assert!(net.conversation(during).connected_at().is_none());
    net.restart_server(resources()).unwrap();
    let conversation = net.run_until_ended(during, Duration::from_secs(60));
    assert_eq!(conversation.reply_text(), ["gnirud\n"]);
    assert!(net.sim.segment().stats().link_down > 0, "SYNs were lost");
}

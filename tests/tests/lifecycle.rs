//! The server beyond one conversation, end to end on the simulated
//! segment: a burst of clients beyond the sessions, one session slot
//! serving client after client, and a shutdown that still answers.

use reversal_core::{Capacity, HeapResources, ServerConfig};
use reversal_sim::reversal::{Network, Script};
use smoltcp::time::Duration;

const MAX_LINE: usize = 64;
/// How long a test waits for a conversation to end.
const END_LIMIT: Duration = Duration::from_secs(600);

/// One session and `busy_sockets` sockets to say `ERR busy`.
fn one_session(busy_sockets: usize) -> Network {
    let _ = env_logger::builder().is_test(true).try_init();
    let capacity = Capacity::new(1, 1024, MAX_LINE).with_spare_sockets(busy_sockets);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    Network::new(0, ServerConfig::new(1, MAX_LINE), resources).unwrap()
}

#[test]
fn a_burst_beyond_the_sessions_gets_err_busy_on_every_busy_socket() {
    let mut net = one_session(4);
    let first = net.talk(Script::new().send_line("a"));
    net.run_until_replies(first, 1, END_LIMIT);
    // Four at once: one busy socket each, none is reset.
    let rejected: Vec<_> = (0..4).map(|_| net.talk(Script::new())).collect();
    for talk in rejected {
        let conversation = net.run_until_ended(talk, END_LIMIT);
        let replies = conversation.reply_text();
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert!(replies[0].starts_with("ERR busy "), "{replies:?}");
        assert!(!conversation.was_reset(), "refused instead of told busy");
    }
    assert_eq!(net.sim[net.server()].counters().errors.busy, 4);
}

#[test]
fn one_session_slot_serves_one_client_after_another() {
    let mut net = one_session(1);
    let server = net.server();
    for _ in 0..3 {
        let talk = net.talk(Script::new().send_line("abc").close());
        let conversation = net.run_until_ended(talk, END_LIMIT);
        assert_eq!(conversation.reply_text(), ["cba\n"]);
        assert!(!conversation.was_reset());
        net.sim
            .run_until(Duration::from_secs(5), |sim| {
                sim[server].server().active_sessions() == 0
            })
            .unwrap();
    }
    let counters = net.sim[server].counters();
    assert_eq!((counters.connections, counters.errors.busy), (3, 0));
}

#[test]
fn a_shutdown_delivers_the_replies_owed_then_closes() {
    let mut net = one_session(1);
    let server = net.server();
    let talk = net.talk(Script::new().send("pending\npartial"));
    // Let the bytes reach the server before it is told to stop.
    net.run_until_replies(talk, 1, END_LIMIT);
    net.sim
        .run_until(Duration::from_secs(5), |sim| {
            sim[server].counters().bytes_in == 15
        })
        .unwrap();
    net.sim[server].server_mut().shutdown();
    let conversation = net.run_until_ended(talk, END_LIMIT);
    // The partial line is answered as at the end of input.
    assert_eq!(conversation.reply_text(), ["gnidnep\n", "laitrap"]);
    assert!(!conversation.was_reset(), "closed with a FIN");
    net.sim
        .run_until(Duration::from_secs(60), |sim| {
            sim[server].server().is_shut_down()
        })
        .unwrap();
    // A client that comes now finds no one listening.
    let late = net.talk(Script::new().send_line("late"));
    let conversation = net.run_until_ended(late, END_LIMIT);
    assert!(conversation.reply_text().is_empty());
    assert!(conversation.was_reset());
}

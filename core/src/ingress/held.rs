//! Keeps a repeated SYN away from the listening sockets.
//!
//! smoltcp hands an incoming segment to the first socket in the set that
//! accepts it, and a listening socket accepts any SYN. When a socket listens
//! again at a lower index than the socket that already holds a connection, a
//! retransmitted or duplicated SYN of that connection is taken by the
//! listener, which answers with a SYN-ACK of its own and ends up resetting
//! the client. [`HeldConnections`] drops such SYNs before smoltcp sees them:
//! the socket that holds the connection has answered the first SYN already
//! and retransmits its SYN-ACK by itself.

use super::filter::{Filter, Verdict};
use super::segment::{Connection, Segment};

/// The connections the sockets hold, in a table the caller lends: one
/// entry per TCP socket is enough (see [`hold`](Self::hold)).
#[derive(Debug)]
pub(crate) struct HeldConnections<'t> {
    table: &'t mut [Connection],
    len: usize,
}

impl<'t> HeldConnections<'t> {
    /// An empty list in `table`.
    pub(crate) fn new(table: &'t mut [Connection]) -> Self {
        HeldConnections { table, len: 0 }
    }

    /// Forgets every connection (before the list is filled again).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Records a connection. The server records one per socket that holds
    /// one, so a table with an entry per socket is full only when every
    /// socket holds a connection: then none listens, none can take a SYN
    /// that is not its own, and forgetting a connection is harmless.
    pub(crate) fn hold(&mut self, connection: Connection) {
        if let Some(entry) = self.table.get_mut(self.len) {
            *entry = connection;
            self.len += 1;
        }
    }

    fn holds(&self, connection: Connection) -> bool {
        self.table[..self.len].contains(&connection)
    }
}

impl Filter for HeldConnections<'_> {
    fn inspect(&mut self, segment: &Segment) -> Verdict {
        if !segment.is_connection_request() {
            return Verdict::Pass;
        }
        if self.holds(segment.connection) {
            return Verdict::Drop;
        }
        // A second copy of this SYN later in the same batch is a duplicate.
        self.hold(segment.connection);
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::segment::tests::{connection, segment};
    use smoltcp::phy::{ChecksumCapabilities, Medium};
    use smoltcp::wire::TcpControl;

    fn parse(control: TcpControl, ack: bool) -> Segment {
        let checksum = ChecksumCapabilities::default();
        Segment::parse(Medium::Ip, &checksum, &segment(control, ack)).unwrap()
    }

    #[test]
    fn held_connections_are_recognised_until_cleared() {
        let mut table = [Connection::NONE; 2];
        let mut held = HeldConnections::new(&mut table);
        held.hold(connection());
        assert!(held.holds(connection()));
        let other_port = Connection {
            port: 7,
            ..connection()
        };
        assert!(!held.holds(other_port));
        held.clear();
        assert!(!held.holds(connection()));
    }

    #[test]
    fn a_syn_of_a_held_connection_is_dropped_and_others_pass() {
        let mut table = [Connection::NONE; 2];
        let mut held = HeldConnections::new(&mut table);
        let syn = parse(TcpControl::Syn, false);
        assert_eq!(held.inspect(&syn), Verdict::Pass, "a new connection");
        assert_eq!(held.inspect(&syn), Verdict::Drop, "its duplicate");
        let ack = parse(TcpControl::None, true);
        assert_eq!(held.inspect(&ack), Verdict::Pass, "not a SYN");
    }

    #[test]
    fn a_full_table_forgets_but_never_overflows() {
        let mut table = [Connection::NONE; 1];
        let mut held = HeldConnections::new(&mut table);
        let other = Connection {
            port: 7,
            ..connection()
        };
        held.hold(other);
        held.hold(connection());
        assert!(held.holds(other));
        assert!(!held.holds(connection()));
    }
}

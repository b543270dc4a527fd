//! What each socket shown to the listener is doing: listening, in a
//! half-open handshake since when, or holding a connection; in a table the
//! caller lends, one entry per socket, rebuilt at every update.

use smoltcp::time::Instant;

use super::stamp::Stamp;

use crate::ingress::Connection;

/// What a socket shown to a [`Listener`](super::Listener) is for.
///
/// smoltcp hands a SYN to the first listening socket in the `SocketSet`, so
/// put the serving sockets before the refusing ones in the set.
///
/// ```
/// use reversal_core::listener::Role;
/// assert_ne!(Role::Serve, Role::Refuse);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// It serves the connection it takes. Waiting attempts go to these
    /// first.
    #[default]
    Serve,
    /// It turns a connection away politely (the reversal server's busy
    /// sockets say `ERR busy` and close). It takes an attempt only once
    /// the attempt has waited the admission wait.
    Refuse,
}

/// What one socket is doing, for the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Activity {
    /// Closed, or on another port.
    Idle,
    Listening,
    /// In SYN-RECEIVED: the handshake is under way.
    HalfOpen,
    /// The handshake is done; the connection is open or closing.
    Held,
}

/// One socket's entry in the listener's table.
///
/// The caller lends a table of them, one per socket it shows the listener
/// ([`ListenerMemory`](super::ListenerMemory)); [`TrackedSocket::EMPTY`]
/// fills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedSocket {
    pub(super) connection: Connection,
    pub(super) activity: Activity,
    pub(super) role: Role,
    /// Since when it has been half-open.
    pub(super) since: Stamp,
    /// Its half-open handshake gave way at the last update.
    pub(super) reclaimed: bool,
    /// Its half-open peer had proved itself when the SYN was handed over
    /// (the table of proven peers may forget it before the handshake ends).
    pub(super) proven: bool,
}

impl TrackedSocket {
    /// An unused entry, all zero bytes.
    ///
    /// ```
    /// let sockets = [reversal_core::listener::TrackedSocket::EMPTY; 4];
    /// ```
    pub const EMPTY: TrackedSocket = TrackedSocket {
        connection: Connection::NONE,
        activity: Activity::Idle,
        role: Role::Serve,
        since: Stamp::ZERO,
        reclaimed: false,
        proven: false,
    };
}

impl Default for TrackedSocket {
    fn default() -> Self {
        TrackedSocket::EMPTY
    }
}

/// The table, as of the last update (and the SYNs handed over since).
#[derive(Debug)]
pub(super) struct Tracked<'a> {
    entries: &'a mut [TrackedSocket],
    len: usize,
}

impl<'a> Tracked<'a> {
    pub(super) fn new(entries: &'a mut [TrackedSocket]) -> Self {
        Tracked { entries, len: 0 }
    }

    /// The entries in use.
    pub(super) fn iter(&self) -> impl Iterator<Item = &TrackedSocket> {
        self.entries[..self.len].iter()
    }

    /// The entry of the `index`-th socket shown, to be rewritten (what it
    /// held before is in it); `None` past the end of the table.
    pub(super) fn entry(&mut self, index: usize) -> Option<&mut TrackedSocket> {
        self.entries.get_mut(index)
    }

    /// After an update: `len` sockets were written.
    pub(super) fn set_len(&mut self, len: usize) {
        self.len = len.min(self.entries.len());
    }

    /// Whether a socket holds `connection`, half-open or open: a SYN of it
    /// is a copy, which a listening socket must not take.
    pub(super) fn holds(&self, connection: Connection) -> bool {
        self.iter().any(|socket| {
            matches!(socket.activity, Activity::HalfOpen | Activity::Held)
                && socket.connection == connection
        })
    }

    /// Notes that a listening socket of `role` is about to take
    /// `connection`'s SYN, from a peer that has `proven` itself or not:
    /// smoltcp gives it to the first one in the set, which is the first one
    /// in the table.
    pub(super) fn claim(&mut self, role: Role, connection: Connection, proven: bool, now: Instant) {
        let len = self.len;
        let listening = self.entries[..len]
            .iter_mut()
            .find(|socket| socket.activity == Activity::Listening && socket.role == role);
        if let Some(socket) = listening {
            *socket = TrackedSocket {
                connection,
                activity: Activity::HalfOpen,
                role,
                since: Stamp::at(now),
                reclaimed: false,
                proven,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::syn::tests::{CLIENT, syn_from};

    #[test]
    fn a_claimed_listener_holds_the_connection_of_the_syn_it_takes() {
        let mut table = [TrackedSocket::EMPTY; 3];
        let mut tracked = Tracked::new(&mut table);
        for (index, role) in [Role::Serve, Role::Refuse, Role::Refuse]
            .into_iter()
            .enumerate()
        {
            let entry = tracked.entry(index).unwrap();
            entry.activity = Activity::Listening;
            entry.role = role;
        }
        tracked.set_len(3);
        let connection = syn_from(CLIENT, 1).connection();
        assert!(!tracked.holds(connection));
        tracked.claim(Role::Refuse, connection, false, Instant::from_millis(7));
        assert!(tracked.holds(connection));
        let refusing: Vec<_> = tracked.iter().map(|s| s.activity).collect();
        assert_eq!(
            refusing,
            [Activity::Listening, Activity::HalfOpen, Activity::Listening]
        );
    }

    #[test]
    fn a_table_never_grows_past_its_entries() {
        let mut table = [TrackedSocket::EMPTY; 1];
        let mut tracked = Tracked::new(&mut table);
        assert!(tracked.entry(1).is_none());
        tracked.set_len(5);
        assert_eq!(tracked.iter().count(), 1);
    }
}

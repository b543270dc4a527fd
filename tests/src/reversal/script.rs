//! The script language of scripted conversations.

#[cfg(doc)]
use super::Conversation;
use smoltcp::time::Duration;

/// One thing a [`Conversation`] does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Send(Vec<u8>),
    /// A line without its LF, written whole.
    Line(Vec<u8>),
    WaitAcked,
    Pause(Duration),
    AwaitReplies(usize),
    Close,
}

/// What a [`Conversation`] does, step by step; each step starts when the
/// one before it is done. Replies are read all along, whatever the step.
///
/// ```
/// use reversal_sim::reversal::Script;
/// use smoltcp::time::Duration;
///
/// // A seed-style client: a message without newline, then wait for the
/// // answer; then a line sent in two segments a second apart.
/// let script = Script::new()
///     .send("hello")
///     .await_replies(1)
///     .send("wor")
///     .pause(Duration::from_secs(1))
///     .send_line("ld")
///     .close();
/// # let _ = script;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub(super) steps: Vec<Step>,
}

impl Script {
    /// An empty script: connect and read replies, nothing more.
    pub fn new() -> Script {
        Script::default()
    }

    /// Sends `bytes` as they are, as fast as the socket takes them: when
    /// its send buffer is short of room, in several writes.
    ///
    /// The client socket has Nagle's algorithm off, so bytes sent in a poll
    /// of their own (after a [`pause`](Script::pause) or
    /// [`wait_acked`](Script::wait_acked)) leave in a segment of their own.
    pub fn send(mut self, bytes: impl AsRef<[u8]>) -> Script {
        self.steps.push(Step::Send(bytes.as_ref().to_vec()));
        self
    }

    /// Sends `line` followed by LF in one write, as the core's
    /// `LineClient::send_line` does: it waits until the socket has room for
    /// all of it. So smoltcp marks a push (PSH) only after the LF, never
    /// inside the line, and the server's idle flush can never answer part
    /// of it, whatever the network loses. The conversation fails if the
    /// line cannot fit the send buffer at all.
    pub fn send_line(mut self, line: impl AsRef<[u8]>) -> Script {
        self.steps.push(Step::Line(line.as_ref().to_vec()));
        self
    }

    /// Waits until the server has acknowledged every byte sent so far, so
    /// that what is sent next starts a new segment.
    pub fn wait_acked(mut self) -> Script {
        self.steps.push(Step::WaitAcked);
        self
    }

    /// Waits `duration` of virtual time.
    pub fn pause(mut self, duration: Duration) -> Script {
        self.steps.push(Step::Pause(duration));
        self
    }

    /// Waits until `total` replies have arrived since the connection opened.
    pub fn await_replies(mut self, total: usize) -> Script {
        self.steps.push(Step::AwaitReplies(total));
        self
    }

    /// Half-closes the connection (FIN); replies are still read.
    pub fn close(mut self) -> Script {
        self.steps.push(Step::Close);
        self
    }
}

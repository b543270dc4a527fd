//! The two `phy::Device`s on the segment: the server's, which allocates
//! nothing while the server polls, and the client's, plain queues.

use std::cell::RefCell;
use std::collections::VecDeque;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::{FRAME, TX_RING};

// The server's device: every buffer allocated before the server runs

/// Frames in and out of the server. `receive` lends a frame from `inbox`;
/// `transmit` fills one of `TX_RING` preallocated buffers, or says the ring
/// is full: nothing allocates or frees while the server polls.
pub(super) struct ServerPort {
    pub(super) inbox: Vec<Vec<u8>>,
    next_in: usize,
    outbox: RefCell<Vec<Vec<u8>>>,
    spare: RefCell<Vec<Vec<u8>>>,
}

impl ServerPort {
    pub(super) fn new() -> Self {
        ServerPort {
            inbox: Vec::with_capacity(64),
            next_in: 0,
            outbox: RefCell::new(Vec::with_capacity(TX_RING)),
            spare: RefCell::new((0..TX_RING).map(|_| Vec::with_capacity(FRAME)).collect()),
        }
    }

    pub(super) fn has_input(&self) -> bool {
        self.next_in < self.inbox.len()
    }

    /// Takes the frames the server sent, returning their buffers to the ring
    /// (called between polls).
    pub(super) fn take_sent(&mut self) -> Vec<Vec<u8>> {
        if !self.has_input() {
            self.inbox.clear();
            self.next_in = 0;
        }
        let sent: Vec<Vec<u8>> = self.outbox.get_mut().drain(..).collect();
        let copies = sent.iter().map(|frame| frame.to_vec()).collect();
        let spare = self.spare.get_mut();
        spare.extend(sent.into_iter().map(|mut frame| {
            frame.clear();
            frame
        }));
        copies
    }
}

pub(super) struct LentFrame<'a>(&'a [u8]);

pub(super) struct TxSlot<'a> {
    outbox: &'a RefCell<Vec<Vec<u8>>>,
    spare: &'a RefCell<Vec<Vec<u8>>>,
}

impl phy::RxToken for LentFrame<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for TxSlot<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buffer = self
            .spare
            .borrow_mut()
            .pop()
            .expect("transmit checked the ring");
        assert!(
            len <= FRAME,
            "the server built a {len}-byte frame for a {FRAME}-byte MTU"
        );
        buffer.resize(len, 0);
        let result = f(&mut buffer);
        self.outbox.borrow_mut().push(buffer);
        result
    }
}

impl Device for ServerPort {
    type RxToken<'a> = LentFrame<'a>;
    type TxToken<'a> = TxSlot<'a>;

    fn receive(&mut self, _: Instant) -> Option<(LentFrame<'_>, TxSlot<'_>)> {
        if self.spare.borrow().is_empty() {
            return None;
        }
        let frame = self.inbox.get(self.next_in)?;
        self.next_in += 1;
        Some((
            LentFrame(frame),
            TxSlot {
                outbox: &self.outbox,
                spare: &self.spare,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxSlot<'_>> {
        if self.spare.borrow().is_empty() {
            return None;
        }
        Some(TxSlot {
            outbox: &self.outbox,
            spare: &self.spare,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME;
        caps
    }
}

/// The client's device: plain queues.
#[derive(Default)]
pub(super) struct ClientPort {
    pub(super) inbox: VecDeque<Vec<u8>>,
    pub(super) outbox: Vec<Vec<u8>>,
}

pub(super) struct OwnedFrame(Vec<u8>);
pub(super) struct ClientTx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for OwnedFrame {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for ClientTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let result = f(&mut frame);
        self.0.push(frame);
        result
    }
}

impl Device for ClientPort {
    type RxToken<'a> = OwnedFrame;
    type TxToken<'a> = ClientTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(OwnedFrame, ClientTx<'_>)> {
        let frame = self.inbox.pop_front()?;
        Some((OwnedFrame(frame), ClientTx(&mut self.outbox)))
    }

    fn transmit(&mut self, _: Instant) -> Option<ClientTx<'_>> {
        Some(ClientTx(&mut self.outbox))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME;
        caps
    }
}

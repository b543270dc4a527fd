//! A smoltcp [`Device`] over an Ethernet controller that moves whole frames
//! through FIFOs, copying each through one fixed receive or transmit buffer:
//! no allocation, no DMA descriptors.
//!
//! The controller's driver implements [`Mac`], a handful of register-level
//! operations; [`FrameDevice`] adds the buffers, smoltcp's tokens, the drop
//! counter and the wake-up the [`sleep`](crate::sleep) loop needs. The
//! Stellaris MAC (lm3s6965evb) and the SMSC LAN9118 (mps2-an505) both work
//! this way; a controller with DMA rings would implement smoltcp's `Device`
//! itself instead.

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::EthernetAddress;
use static_cell::ConstStaticCell;

/// Largest Ethernet frame (without FCS) the buffers hold: 1514 bytes for a
/// 1500-byte MTU, room for a VLAN tag, rounded up to whole FIFO words.
pub const FRAME_CAPACITY: usize = 1520;

/// Ethernet II header: destination, source, EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// An Ethernet controller that receives and sends whole frames through
/// FIFOs. Every method is called from the main loop only; the interrupt
/// handler is the driver's own business (it only has to mask the receive
/// interrupt so the level-triggered line drops).
pub trait Mac {
    /// Why a received frame was dropped.
    type RxDrop: defmt::Format;

    /// Full-size frames the receive FIFO holds: smoltcp keeps TCP windows at
    /// this many segments so a peer cannot overrun it.
    const RX_BURST: usize;

    /// The station address the controller answers to.
    fn address(&self) -> EthernetAddress;

    /// Whether a received frame waits in the FIFO.
    fn rx_pending(&self) -> bool;

    /// Lets the next received frame raise the controller's interrupt, so
    /// that a `wfi` returns when one arrives. Called with interrupts
    /// disabled, before [`rx_pending`](Self::rx_pending) is checked.
    fn enable_rx_wakeup(&mut self);

    /// Pops the next frame (which [`rx_pending`](Self::rx_pending) said is
    /// there) into `frame` and returns its length without FCS. A frame that
    /// cannot be delivered is consumed anyway.
    fn pop_frame(&mut self, frame: &mut [u8; FRAME_CAPACITY]) -> Result<usize, Self::RxDrop>;

    /// Sends `frame` (an Ethernet frame without FCS, at most
    /// [`FRAME_CAPACITY`] bytes); the controller adds padding and FCS.
    fn push_frame(&mut self, frame: &[u8]);
}

/// The two frame buffers the device copies through.
#[derive(Debug)]
struct FrameBuffers {
    rx: [u8; FRAME_CAPACITY],
    tx: [u8; FRAME_CAPACITY],
}

/// In `.bss`: a board has one Ethernet controller, so one set.
static FRAMES: ConstStaticCell<FrameBuffers> = ConstStaticCell::new(FrameBuffers {
    rx: [0; FRAME_CAPACITY],
    tx: [0; FRAME_CAPACITY],
});

/// A [`Mac`] as a smoltcp [`Device`].
#[derive(Debug)]
pub struct FrameDevice<M> {
    mac: M,
    buffers: &'static mut FrameBuffers,
    rx_dropped: u32,
}

impl<M: Mac> FrameDevice<M> {
    /// The device over `mac`, with the board's one pair of frame buffers.
    ///
    /// # Panics
    ///
    /// If called twice.
    pub fn new(mac: M) -> Self {
        Self {
            mac,
            buffers: FRAMES.take(),
            rx_dropped: 0,
        }
    }

    /// The station address.
    pub fn mac_address(&self) -> EthernetAddress {
        self.mac.address()
    }

    /// Frames received but dropped since start.
    pub fn rx_dropped(&self) -> u32 {
        self.rx_dropped
    }

    /// See [`Mac::rx_pending`].
    pub fn rx_pending(&self) -> bool {
        self.mac.rx_pending()
    }

    /// See [`Mac::enable_rx_wakeup`].
    pub fn enable_rx_wakeup(&mut self) {
        self.mac.enable_rx_wakeup();
    }
}

/// A received frame, already out of the FIFO.
#[derive(Debug)]
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

/// Room for one frame to send; holding it means holding the controller.
#[derive(Debug)]
pub struct TxToken<'a, M> {
    buffer: &'a mut [u8; FRAME_CAPACITY],
    mac: &'a mut M,
}

impl<M: Mac> phy::TxToken for TxToken<'_, M> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let frame = &mut self.buffer[..len];
        let result = f(frame);
        self.mac.push_frame(frame);
        result
    }
}

impl<M: Mac> Device for FrameDevice<M> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, M>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_, M>)> {
        while self.mac.rx_pending() {
            match self.mac.pop_frame(&mut self.buffers.rx) {
                Ok(len) => {
                    let FrameBuffers { rx, tx } = &mut *self.buffers;
                    let tx = TxToken {
                        buffer: tx,
                        mac: &mut self.mac,
                    };
                    return Some((RxToken { frame: &rx[..len] }, tx));
                }
                Err(drop) => {
                    self.rx_dropped = self.rx_dropped.wrapping_add(1);
                    defmt::warn!("ethernet: dropped received frame: {}", drop);
                }
            }
        }
        None
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_, M>> {
        Some(TxToken {
            buffer: &mut self.buffers.tx,
            mac: &mut self.mac,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = ETHERNET_HEADER_LEN + 1500;
        caps.max_burst_size = Some(M::RX_BURST);
        caps
    }
}

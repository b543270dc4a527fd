//! Stellaris (LM3S6965) Ethernet MAC as a [`Mac`], which
//! `reversal_board::FrameDevice` makes a smoltcp `Device`.
//!
//! The MAC moves frames through two word-wide FIFOs behind one `DATA`
//! register, so every frame is copied between the FIFO and one fixed
//! receive buffer or one fixed transmit buffer: no allocation, no DMA.
//!
//! The reference for behaviour is QEMU's `hw/net/stellaris_enet.c` (what the
//! firmware runs on) cross-checked with the LM3S6965 datasheet (what real
//! silicon does); where they differ, the code follows the datasheet when that
//! is harmless under QEMU, and says so.
//!
//! Frame layout in the FIFOs (little-endian words):
//! - receive: a 16-bit length (counting itself, the frame and the 4-byte FCS),
//!   the frame, the FCS, zero padding to a whole word;
//! - transmit: a 16-bit data length (the frame *without* its 14-byte Ethernet
//!   header), the frame, padding to a whole word; then `TR.NEWTX` sends it.
//!   The MAC appends the FCS and pads short frames to 60 bytes.
//!
//! This module is the only one that touches the MAC's registers.

use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use reversal_board::frames::ETHERNET_HEADER_LEN;
use reversal_board::{FRAME_CAPACITY, Mac};
use smoltcp::wire::EthernetAddress;

use crate::sysctl;

/// Bytes the receive FIFO adds around each frame: length prefix and FCS.
const RX_PREFIX_LEN: usize = 2;
const RX_FCS_LEN: usize = 4;
/// Both FIFOs are 2 KiB on silicon; a length beyond that means the FIFO
/// lost its framing, not that a big frame arrived.
const FIFO_BYTES: usize = 2048;

/// The MAC's register block (LM3S6965 datasheet, "Ethernet Controller").
const MAC_BASE: usize = 0x4004_8000;

#[derive(Clone, Copy)]
#[repr(usize)]
enum Reg {
    /// Read: raw interrupt status (MACRIS). Write: acknowledge (MACIACK).
    RisIack = 0x00,
    /// Interrupt mask (MACIM): 1 lets the bit reach the NVIC.
    Im = 0x04,
    /// Receive control (MACRCTL).
    Rctl = 0x08,
    /// Transmit control (MACTCTL).
    Tctl = 0x0C,
    /// Receive FIFO on read, transmit FIFO on write (MACDATA).
    Data = 0x10,
    /// Individual address bytes 0..=3 (MACIA0).
    Ia0 = 0x14,
    /// Individual address bytes 4..=5 (MACIA1).
    Ia1 = 0x18,
    /// Number of frames in the receive FIFO (MACNP).
    Np = 0x34,
    /// Transmission request (MACTR).
    Tr = 0x38,
}

/// Interrupt bits shared by MACRIS, MACIACK and MACIM.
const INT_RX: u32 = 1 << 0;
const INT_ALL: u32 = 0x7F;

const RCTL_RXEN: u32 = 1 << 0;
/// Accept all multicast frames: smoltcp filters them (IPv6 neighbour
/// discovery needs solicited-node multicast; QEMU filters nothing anyway).
const RCTL_AMUL: u32 = 1 << 1;
/// Reject frames with a bad FCS (QEMU never makes one).
const RCTL_BADCRC: u32 = 1 << 3;
/// Clears the receive FIFO; only valid while RXEN is clear.
const RCTL_RSTFIFO: u32 = 1 << 4;

const TCTL_TXEN: u32 = 1 << 0;
/// Pad frames shorter than 60 bytes (smoltcp leaves that to the MAC).
const TCTL_PADEN: u32 = 1 << 1;
/// Append the FCS in hardware.
const TCTL_CRC: u32 = 1 << 2;
/// Full duplex. On silicon this must match what the PHY negotiated; the
/// LM3S6965EVB's integrated PHY on a switch negotiates full duplex, and QEMU
/// has no duplex at all.
const TCTL_DUPLEX: u32 = 1 << 3;

/// Set to start sending the frame in the transmit FIFO; silicon keeps it set
/// until the frame has left (QEMU sends at once and reads 0).
const TR_NEWTX: u32 = 1 << 0;

/// Run-mode clock gating 2: the EMAC and its PHY. Silicon faults on access
/// to a gated peripheral.
const RCGC2_EMAC0: u32 = 1 << 28;
const RCGC2_EPHY0: u32 = 1 << 30;

/// The MAC's interrupt line on the NVIC (LM3S6965 vector 58).
#[derive(Clone, Copy)]
struct EthernetIrq;

/// The interrupt number the NVIC reports for [`EthernetIrq`] (IRQ 42).
pub const ETHERNET_IRQ_NUMBER: u16 = 42;

// SAFETY: 42 is the Ethernet controller's interrupt on the LM3S6965 (and in
// QEMU's lm3s6965evb), below the 64 lines the NVIC implements.
unsafe impl InterruptNumber for EthernetIrq {
    fn number(self) -> u16 {
        ETHERNET_IRQ_NUMBER
    }
}

fn read(reg: Reg) -> u32 {
    // SAFETY: `reg` is a register of the MAC block, which is always mapped;
    // reads of `Data` pop the receive FIFO, which only `&mut StellarisEnet`
    // methods do.
    unsafe { ptr::read_volatile((MAC_BASE + reg as usize) as *const u32) }
}

fn write(reg: Reg, value: u32) {
    // SAFETY: as in `read`; writes of `Data` push the transmit FIFO, which
    // only `&mut StellarisEnet` methods do.
    unsafe { ptr::write_volatile((MAC_BASE + reg as usize) as *mut u32, value) }
}

/// Set by [`StellarisEnet::new`]: there is one MAC, so one driver.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Why [`StellarisEnet::new`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum InitError {
    /// A driver for the MAC already exists.
    AlreadyTaken,
    /// Neither the MAC nor the board's user registers hold an address.
    NoMacAddress,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyTaken => f.write_str("the Ethernet MAC already has a driver"),
            Self::NoMacAddress => f.write_str("no MAC address in MACIA0/1 nor in USER0/1"),
        }
    }
}

/// Why a frame in the receive FIFO was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum RxDrop {
    /// Shorter than an Ethernet header.
    Runt {
        /// The frame's length without FCS.
        frame_len: usize,
    },
    /// Longer than [`FRAME_CAPACITY`].
    TooLong {
        /// The frame's length without FCS.
        frame_len: usize,
    },
    /// The length prefix cannot be real: the FIFO was reset.
    LostFraming {
        /// The length the prefix claimed.
        fifo_len: usize,
    },
}

/// The Ethernet MAC, started and receiving.
#[derive(Debug)]
pub struct StellarisEnet {
    mac_address: EthernetAddress,
}

impl StellarisEnet {
    /// Clocks, resets and starts the MAC: transmit with hardware FCS and
    /// padding, receive enabled (frames that arrive from now on are kept),
    /// the MAC's interrupt line enabled on the NVIC with every source masked
    /// (see [`Mac::enable_rx_wakeup`]).
    ///
    /// The MAC address is the one in MACIA0/1 (QEMU puts its `-nic` address
    /// there), else the board's factory address in USER0/1, which is then
    /// programmed into MACIA0/1.
    pub fn new() -> Result<Self, InitError> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Err(InitError::AlreadyTaken);
        }

        sysctl::ungate(sysctl::RCGC2, RCGC2_EMAC0 | RCGC2_EPHY0);

        write(Reg::Rctl, 0);
        write(Reg::Tctl, 0);
        write(Reg::Im, 0);
        write(Reg::RisIack, INT_ALL);

        let mac_address = match mac_from_ia() {
            Some(address) => address,
            None => {
                let address = mac_from_user_registers().ok_or(InitError::NoMacAddress)?;
                let b = address.0;
                write(Reg::Ia0, u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                write(Reg::Ia1, u32::from_le_bytes([b[4], b[5], 0, 0]));
                address
            }
        };

        write(Reg::Tctl, TCTL_TXEN | TCTL_PADEN | TCTL_CRC | TCTL_DUPLEX);
        write(Reg::Rctl, RCTL_RSTFIFO | RCTL_AMUL | RCTL_BADCRC);
        write(Reg::Rctl, RCTL_RXEN | RCTL_AMUL | RCTL_BADCRC);

        // SAFETY: every MAC interrupt source is masked in MACIM, so unmasking
        // the line cannot fire before `enable_rx_wakeup`; the handler it
        // reaches (`on_interrupt`) only masks MACIM again.
        unsafe { NVIC::unmask(EthernetIrq) };

        Ok(Self { mac_address })
    }

    /// The Ethernet interrupt handler's whole job: mask the MAC's sources so
    /// the level-triggered line drops. The woken main loop reads the FIFO and
    /// re-arms with [`Mac::enable_rx_wakeup`].
    pub fn on_interrupt() {
        write(Reg::Im, 0);
    }
}

impl Mac for StellarisEnet {
    type RxDrop = RxDrop;

    /// Silicon's 2 KiB receive FIFO holds one full-size frame. (QEMU queues
    /// up to 31 frames.)
    const RX_BURST: usize = 1;

    fn address(&self) -> EthernetAddress {
        self.mac_address
    }

    fn rx_pending(&self) -> bool {
        read(Reg::Np) != 0
    }

    /// A frame that came in before this was already acknowledged: the
    /// caller checks `rx_pending` after.
    fn enable_rx_wakeup(&mut self) {
        write(Reg::RisIack, INT_RX);
        write(Reg::Im, INT_RX);
    }

    fn pop_frame(&mut self, rx: &mut [u8; FRAME_CAPACITY]) -> Result<usize, RxDrop> {
        let first = read(Reg::Data);
        let fifo_len = (first & 0xFFFF) as usize;
        let words = fifo_len.div_ceil(4);

        if !(RX_PREFIX_LEN + RX_FCS_LEN..=FIFO_BYTES).contains(&fifo_len) {
            // The prefix is garbage, so the word count is too: start over.
            write(Reg::Rctl, RCTL_AMUL | RCTL_BADCRC);
            write(Reg::Rctl, RCTL_RSTFIFO | RCTL_AMUL | RCTL_BADCRC);
            write(Reg::Rctl, RCTL_RXEN | RCTL_AMUL | RCTL_BADCRC);
            return Err(RxDrop::LostFraming { fifo_len });
        }

        let frame_len = fifo_len - RX_PREFIX_LEN - RX_FCS_LEN;
        let unfit = if frame_len < ETHERNET_HEADER_LEN {
            Some(RxDrop::Runt { frame_len })
        } else if frame_len > FRAME_CAPACITY {
            Some(RxDrop::TooLong { frame_len })
        } else {
            None
        };
        if let Some(drop) = unfit {
            for _ in 1..words {
                read(Reg::Data);
            }
            return Err(drop);
        }

        rx[..2].copy_from_slice(&first.to_le_bytes()[2..]);
        let mut filled = 2;
        for _ in 1..words {
            let bytes = read(Reg::Data).to_le_bytes();
            // The last words carry the FCS and padding: read, don't keep.
            let keep = frame_len.saturating_sub(filled).min(4);
            rx[filled..filled + keep].copy_from_slice(&bytes[..keep]);
            filled += keep;
        }
        Ok(frame_len)
    }

    fn push_frame(&mut self, frame: &[u8]) {
        // The FIFO holds one frame: wait for the previous one to leave (up to
        // ~1.2 ms at 10 Mbit/s on silicon; never under QEMU).
        while read(Reg::Tr) & TR_NEWTX != 0 {}

        let data_len = frame.len().saturating_sub(ETHERNET_HEADER_LEN) as u32;
        let (head, rest) = frame.split_at(2.min(frame.len()));
        let mut first = [0; 2];
        first[..head.len()].copy_from_slice(head);
        write(
            Reg::Data,
            data_len | u32::from(u16::from_le_bytes(first)) << 16,
        );
        for chunk in rest.chunks(4) {
            let mut word = [0; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            write(Reg::Data, u32::from_le_bytes(word));
        }
        write(Reg::Tr, TR_NEWTX);
    }
}

fn mac_from_ia() -> Option<EthernetAddress> {
    let [a0, a1, a2, a3] = read(Reg::Ia0).to_le_bytes();
    let [a4, a5, _, _] = read(Reg::Ia1).to_le_bytes();
    let address = EthernetAddress([a0, a1, a2, a3, a4, a5]);
    address.is_unicast().then_some(address)
}

fn mac_from_user_registers() -> Option<EthernetAddress> {
    // Silicon resets MACIA0/1 to zero and expects software to copy the
    // factory address; QEMU fills MACIA0/1 from `-nic ...,mac=` itself.
    let [u0, u1, u2, _] = sysctl::read(sysctl::USER0).to_le_bytes();
    let [u3, u4, u5, _] = sysctl::read(sysctl::USER1).to_le_bytes();
    let address = EthernetAddress([u0, u1, u2, u3, u4, u5]);
    address.is_unicast().then_some(address)
}

//! SMSC LAN9118 (the MPS2's LAN9220, register compatible) as a [`Mac`],
//! which `reversal_board::FrameDevice` makes a smoltcp `Device`.
//!
//! No crate drives this chip (none on crates.io for the LAN9118, LAN9220 or
//! LAN911x), so this one is written as the Stellaris driver is.
//!
//! The chip moves frames through FIFOs behind 32-bit ports, so every frame
//! is copied between a FIFO and one fixed buffer: no allocation, no DMA.
//! - receive: the RX status FIFO holds one word per frame (its length with
//!   the 4-byte FCS in bits 29:16, an error summary in bit 15); the RX data
//!   FIFO holds the frame, the FCS, padding to a whole word;
//! - transmit: command A (first and last segment, buffer size), command B
//!   (packet length), then the frame in whole words. The MAC pads short
//!   frames and appends the FCS.
//!
//! The reference for behaviour is QEMU's `hw/net/lan9118.c` (what the
//! firmware runs on), cross-checked with the LAN9118 datasheet (what
//! silicon does). Where they differ:
//! - QEMU's interrupt line is active low unless IRQ_CFG selects push-pull,
//!   active high (silicon's default is open-drain, active low too), so it
//!   is asserted, and pended on the NVIC, from reset until `new` sets that;
//!   `new` clears the stale pending bit before unmasking the line.
//! - QEMU's RX fast-forward (RX_DP_CTRL) skips the frame's words without
//!   counting them out of the FIFO, and silicon allows it only for frames
//!   of 4 words or more: a dropped frame is read out word by word instead.
//! - QEMU sends a frame at once and ignores TX_ON and the FIFO levels;
//!   silicon needs TX_ON and room in the TX data FIFO, both handled here.
//!
//! This module is the only one that touches the chip's registers.

use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use reversal_board::frames::ETHERNET_HEADER_LEN;
use reversal_board::{FRAME_CAPACITY, Mac};
use smoltcp::wire::EthernetAddress;

/// The chip's registers, at the Secure alias of the AN505's Ethernet region
/// (AN505: 0x4200_0000 Non-secure, 0x5200_0000 Secure).
const BASE: usize = 0x5200_0000;

#[derive(Clone, Copy)]
#[repr(usize)]
enum Reg {
    /// RX data FIFO port (one of the aliased ports 0x00..0x1C).
    RxData = 0x00,
    /// TX data FIFO port (one of the aliased ports 0x20..0x3C).
    TxData = 0x20,
    /// RX status FIFO port.
    RxStatus = 0x40,
    /// Interrupt configuration (IRQ_CFG).
    IrqCfg = 0x54,
    /// Interrupt status, write 1 to clear (INT_STS).
    IntSts = 0x58,
    /// Interrupt enable (INT_EN).
    IntEn = 0x5C,
    /// Reads 0x8765_4321 once the chip answers (BYTE_TEST).
    ByteTest = 0x64,
    /// Receive configuration (RX_CFG).
    RxCfg = 0x6C,
    /// Transmit configuration (TX_CFG).
    TxCfg = 0x70,
    /// Hardware configuration and soft reset (HW_CFG).
    HwCfg = 0x74,
    /// RX FIFO fill levels (RX_FIFO_INF).
    RxFifoInf = 0x7C,
    /// TX FIFO free space and status fill level (TX_FIFO_INF).
    TxFifoInf = 0x80,
    /// Power management; bit 0 says the chip is ready (PMT_CTRL).
    PmtCtrl = 0x84,
    /// MAC control and status register command (MAC_CSR_CMD).
    MacCsrCmd = 0xA4,
    /// MAC control and status register data (MAC_CSR_DATA).
    MacCsrData = 0xA8,
}

/// MAC registers, reached through MAC_CSR_CMD/MAC_CSR_DATA.
#[derive(Clone, Copy)]
#[repr(u32)]
enum MacReg {
    /// MAC control (MAC_CR).
    Cr = 1,
    /// Station address, bytes 4 and 5 (ADDRH).
    AddrH = 2,
    /// Station address, bytes 0 to 3 (ADDRL).
    AddrL = 3,
}

const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const PMT_CTRL_READY: u32 = 1 << 0;
const HW_CFG_SRST: u32 = 1 << 0;

/// IRQ_CFG: enable the IRQ pin, push-pull, active high.
const IRQ_CFG_EN_PUSH_PULL_HIGH: u32 = (1 << 8) | (1 << 4) | (1 << 0);
/// RX status FIFO level reached (the level is 0 out of reset: any frame).
const INT_RSFL: u32 = 1 << 3;
const INT_ALL: u32 = 0xFFFF_FFFF;

const TX_CFG_TX_ON: u32 = 1 << 1;
/// Let the TX status FIFO overrun: nobody reads it.
const TX_CFG_TXSAO: u32 = 1 << 2;

const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;

const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_TXEN: u32 = 1 << 3;
/// Pass all multicast frames: smoltcp filters them.
const MAC_CR_MCPAS: u32 = 1 << 19;
/// Full duplex. On silicon this must match what the internal PHY
/// negotiated (it negotiates out of reset); QEMU has no duplex.
const MAC_CR_FDPX: u32 = 1 << 20;

/// RX status: frame length with FCS (bits 29:16) and the error summary.
const RX_STATUS_LEN_SHIFT: u32 = 16;
const RX_STATUS_LEN_MASK: u32 = 0x3FFF;
const RX_STATUS_ERROR: u32 = 1 << 15;
const FCS_LEN: usize = 4;

/// TX command A: first and last segment of the frame, buffer size in bits
/// 10:0 (end alignment 4 bytes, data offset 0).
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;

/// Polls of a status bit before a start-up step gives up (silicon needs at
/// most a few milliseconds; QEMU answers at once).
const START_POLLS: u32 = 1_000_000;

/// The chip's interrupt line: the AN505's expansion interrupt 16, NVIC
/// interrupt 32 + 16.
#[derive(Clone, Copy)]
struct EthernetIrq;

/// The interrupt number the NVIC reports for [`EthernetIrq`].
pub const ETHERNET_IRQ_NUMBER: u16 = 48;

// SAFETY: 48 is the Ethernet controller's interrupt on the AN505 (and in
// QEMU's mps2-an505), below the 124 lines its NVIC implements.
unsafe impl InterruptNumber for EthernetIrq {
    fn number(self) -> u16 {
        ETHERNET_IRQ_NUMBER
    }
}

fn read(reg: Reg) -> u32 {
    // SAFETY: `reg` is a register of the chip, always mapped; reads of the
    // FIFO ports pop them, which only `&mut Lan9118` methods do.
    unsafe { ptr::read_volatile((BASE + reg as usize) as *const u32) }
}

fn write(reg: Reg, value: u32) {
    // SAFETY: as in `read`; writes of the TX data port push the FIFO, which
    // only `&mut Lan9118` methods do.
    unsafe { ptr::write_volatile((BASE + reg as usize) as *mut u32, value) }
}

/// Polls until `done` holds, at most [`START_POLLS`] times.
fn wait_for(done: impl Fn() -> bool) -> bool {
    (0..START_POLLS).any(|_| done())
}

fn mac_csr_idle() -> bool {
    read(Reg::MacCsrCmd) & MAC_CSR_BUSY == 0
}

fn read_mac(reg: MacReg) -> Result<u32, InitError> {
    write(Reg::MacCsrCmd, MAC_CSR_BUSY | MAC_CSR_READ | reg as u32);
    if !wait_for(mac_csr_idle) {
        return Err(InitError::Timeout("MAC register read"));
    }
    Ok(read(Reg::MacCsrData))
}

fn write_mac(reg: MacReg, value: u32) -> Result<(), InitError> {
    write(Reg::MacCsrData, value);
    write(Reg::MacCsrCmd, MAC_CSR_BUSY | reg as u32);
    if wait_for(mac_csr_idle) {
        Ok(())
    } else {
        Err(InitError::Timeout("MAC register write"))
    }
}

/// Set by [`Lan9118::new`]: there is one chip, so one driver.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Why [`Lan9118::new`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum InitError {
    /// A driver for the chip already exists.
    AlreadyTaken,
    /// BYTE_TEST does not read 0x8765_4321: no chip, or a different bus width.
    NotResponding {
        /// What BYTE_TEST read.
        byte_test: u32,
    },
    /// A start-up step did not finish.
    Timeout(&'static str),
    /// The chip has no station address (none loaded from its EEPROM).
    NoMacAddress,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyTaken => f.write_str("the LAN9118 already has a driver"),
            Self::NotResponding { byte_test } => {
                write!(f, "BYTE_TEST reads {byte_test:#010x}, not 0x87654321")
            }
            Self::Timeout(step) => write!(f, "{step} did not finish"),
            Self::NoMacAddress => f.write_str("no station address in ADDRL/ADDRH"),
        }
    }
}

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum RxDrop {
    /// The chip flagged it (CRC error, collision, too long, runt...).
    Error {
        /// The RX status word.
        status: u32,
    },
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
}

/// The LAN9118, reset and receiving.
#[derive(Debug)]
pub struct Lan9118 {
    mac_address: EthernetAddress,
}

impl Lan9118 {
    /// Resets and starts the chip: transmit on with padding and FCS in
    /// hardware, receive on (frames that arrive from now on are kept), its
    /// interrupt line push-pull active high and enabled on the NVIC with
    /// every source masked (see [`Mac::enable_rx_wakeup`]). The station
    /// address is the one the chip loaded from its EEPROM (QEMU puts its
    /// `-nic` address there).
    pub fn new() -> Result<Self, InitError> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Err(InitError::AlreadyTaken);
        }
        let byte_test = read(Reg::ByteTest);
        if byte_test != BYTE_TEST_VALUE {
            return Err(InitError::NotResponding { byte_test });
        }
        if !wait_for(|| read(Reg::PmtCtrl) & PMT_CTRL_READY != 0) {
            return Err(InitError::Timeout("power-up"));
        }
        write(Reg::HwCfg, HW_CFG_SRST);
        if !wait_for(|| read(Reg::HwCfg) & HW_CFG_SRST == 0) {
            return Err(InitError::Timeout("soft reset"));
        }

        let [a0, a1, a2, a3] = read_mac(MacReg::AddrL)?.to_le_bytes();
        let [a4, a5, _, _] = read_mac(MacReg::AddrH)?.to_le_bytes();
        let mac_address = EthernetAddress([a0, a1, a2, a3, a4, a5]);
        if !mac_address.is_unicast() {
            return Err(InitError::NoMacAddress);
        }

        write(Reg::IntEn, 0);
        write(Reg::IntSts, INT_ALL);
        write(Reg::IrqCfg, IRQ_CFG_EN_PUSH_PULL_HIGH);
        write(Reg::RxCfg, 0);
        write(Reg::TxCfg, TX_CFG_TX_ON | TX_CFG_TXSAO);
        write_mac(
            MacReg::Cr,
            MAC_CR_RXEN | MAC_CR_TXEN | MAC_CR_MCPAS | MAC_CR_FDPX,
        )?;

        // The line was asserted until IRQ_CFG made it active high, and the
        // NVIC latched that as pending.
        NVIC::unpend(EthernetIrq);
        // SAFETY: every source is masked in INT_EN, so the line cannot fire
        // before `enable_rx_wakeup`; the handler it reaches (`on_interrupt`)
        // only masks INT_EN again.
        unsafe { NVIC::unmask(EthernetIrq) };

        Ok(Self { mac_address })
    }

    /// The interrupt handler's whole job: mask the chip's sources so the
    /// level-triggered line drops. The woken main loop reads the FIFO and
    /// re-arms with [`Mac::enable_rx_wakeup`].
    pub fn on_interrupt() {
        write(Reg::IntEn, 0);
    }
}

impl Mac for Lan9118 {
    type RxDrop = RxDrop;

    /// The RX data FIFO holds 10,560 bytes (TX FIFO at its default 5 KiB).
    const RX_BURST: usize = 6;

    fn address(&self) -> EthernetAddress {
        self.mac_address
    }

    fn rx_pending(&self) -> bool {
        // RX status FIFO used, in entries: bits 23:16.
        read(Reg::RxFifoInf) >> 16 & 0xFF != 0
    }

    /// RSFL is set when a frame's status arrives, and stays set until
    /// cleared here: a frame that came in before is seen by the caller's
    /// `rx_pending` check after this.
    fn enable_rx_wakeup(&mut self) {
        write(Reg::IntSts, INT_RSFL);
        write(Reg::IntEn, INT_RSFL);
    }

    fn pop_frame(&mut self, rx: &mut [u8; FRAME_CAPACITY]) -> Result<usize, RxDrop> {
        let status = read(Reg::RxStatus);
        let fifo_len = (status >> RX_STATUS_LEN_SHIFT & RX_STATUS_LEN_MASK) as usize;
        let words = fifo_len.div_ceil(4);
        let frame_len = fifo_len.saturating_sub(FCS_LEN);
        let unfit = if status & RX_STATUS_ERROR != 0 {
            Some(RxDrop::Error { status })
        } else if frame_len < ETHERNET_HEADER_LEN {
            Some(RxDrop::Runt { frame_len })
        } else if frame_len > FRAME_CAPACITY {
            Some(RxDrop::TooLong { frame_len })
        } else {
            None
        };
        if let Some(drop) = unfit {
            for _ in 0..words {
                read(Reg::RxData);
            }
            return Err(drop);
        }

        let mut filled = 0;
        for _ in 0..words {
            let bytes = read(Reg::RxData).to_le_bytes();
            // The last words carry the FCS and padding: read, don't keep.
            let keep = frame_len.saturating_sub(filled).min(4);
            rx[filled..filled + keep].copy_from_slice(&bytes[..keep]);
            filled += keep;
        }
        Ok(frame_len)
    }

    fn push_frame(&mut self, frame: &[u8]) {
        let words = frame.len().div_ceil(4);
        // Room for the two command words and the frame (TDFREE, bits 15:0,
        // in bytes); silicon drains a full-size frame in ~120 µs at
        // 100 Mbit/s, QEMU at once.
        while ((read(Reg::TxFifoInf) & 0xFFFF) as usize) < 8 + words * 4 {}

        let len = frame.len() as u32;
        write(Reg::TxData, TX_CMD_A_FIRST | TX_CMD_A_LAST | len);
        // Command B: a packet tag (the length, for a debugger) and the length.
        write(Reg::TxData, len << 16 | len);
        for chunk in frame.chunks(4) {
            let mut word = [0; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            write(Reg::TxData, u32::from_le_bytes(word));
        }
    }
}

//! Panics and hard faults: logged over defmt, then QEMU is told to exit
//! with a failure status (semihosting), so a test sees the firmware die.

use cortex_m_rt::{ExceptionFrame, exception};

/// Logs where the fault happened and exits QEMU with a failure status.
/// (cortex-m-rt requires `unsafe fn` here; the body does nothing unsafe.)
#[allow(unsafe_code)]
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!(
        "hard fault at pc {=u32:#010x}, lr {=u32:#010x}",
        frame.pc(),
        frame.lr()
    );
    semihosting::process::exit(1)
}

/// Logs where the panic happened and exits QEMU with a failure status.
/// Only the location and a literal message are logged: formatting arbitrary
/// panic payloads would pull `core::fmt` into flash.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let message = info.message().as_str().unwrap_or("(formatted message)");
    match info.location() {
        Some(location) => defmt::error!(
            "panic at {=str}:{=u32}: {=str}",
            location.file(),
            location.line(),
            message
        ),
        None => defmt::error!("panic: {=str}", message),
    }
    semihosting::process::exit(1)
}

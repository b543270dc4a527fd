//! Logging macros that compile to `log`, to `defmt`, or to nothing.
//!
//! Format strings are restricted to `{}` so that one call site works with both
//! back ends (`Display` for `log`, `Format` for `defmt`).

#[cfg(all(feature = "log", feature = "defmt"))]
compile_error!("features `log` and `defmt` are mutually exclusive: pick one logging back end");

macro_rules! log_at {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "log")]
        ::log::$level!($($arg)+);
        #[cfg(feature = "defmt")]
        ::defmt::$level!($($arg)+);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        {
            // Still "use" the arguments so that builds without logging have no
            // unused-variable warnings and keep type-checking the call sites.
            let _ = ($($arg)+);
        }
    }};
}

macro_rules! net_debug {
    ($($arg:tt)+) => { $crate::fmt::log_at!(debug, $($arg)+) };
}

macro_rules! net_info {
    ($($arg:tt)+) => { $crate::fmt::log_at!(info, $($arg)+) };
}

macro_rules! net_warn {
    ($($arg:tt)+) => { $crate::fmt::log_at!(warn, $($arg)+) };
}

pub(crate) use {log_at, net_debug, net_info, net_warn};

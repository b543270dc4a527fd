//! server (pending)

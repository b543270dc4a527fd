//! nb client (pending)

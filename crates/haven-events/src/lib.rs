//! haven-events

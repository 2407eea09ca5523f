//! haven-case

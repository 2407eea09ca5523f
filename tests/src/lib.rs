//! haven-e2e

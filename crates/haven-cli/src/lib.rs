//! haven-cli

//! haven-reporting

//! haven-intake

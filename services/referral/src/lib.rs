//! haven-referral

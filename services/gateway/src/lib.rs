//! haven-gateway

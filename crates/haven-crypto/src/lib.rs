//! haven-crypto: being built (see the open security issue).

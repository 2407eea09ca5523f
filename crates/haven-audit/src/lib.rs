//! haven-audit: being built (see the open security issue).

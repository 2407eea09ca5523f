//! Places: the gazetteer and distances, shared with intake (`haven-geo`).

pub use haven_geo::*;

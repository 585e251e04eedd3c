//! Platform rendering (being written).

//! Fixtures shared by the integration tests: the contract suite's record builders, and opening a
//! database in a temporary folder.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub use herald_contract::fixtures::*;
use herald_embedded::EmbeddedDb;

pub fn open(dir: &tempfile::TempDir) -> EmbeddedDb {
    EmbeddedDb::open(dir.path()).unwrap()
}

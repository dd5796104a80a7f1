//! The engine's integration tests: SQL semantics from `sql/*.slt` and a differential test
//! against DataFusion in batch.

mod common;
mod differential;
mod differential_joins;
mod differential_topn;
mod ordering;
mod slt;

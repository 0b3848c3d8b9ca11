//! End-to-end tests and sync benchmarks live in `tests/` and `benches/`; the shared harness is
//! `tests/common/mod.rs` (it needs the server binary's path, which Cargo gives only there).

pub mod fault_proxy;
pub mod fuzz_harness;

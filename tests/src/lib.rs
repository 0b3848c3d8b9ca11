//! End-to-end tests and sync benchmarks live in `tests/` and `benches/`; the shared harness is
//! `tests/common/mod.rs` (it needs the server binary's path, which Cargo gives only there).
//! This library holds what needs no server path: a cutting TCP proxy, a fault-injecting proxy,
//! photo generation and the fuzz harnesses.

pub mod bombs;
pub mod fault_proxy;
pub mod fuzz_harness;
pub mod moto;
pub mod photos;
pub mod proxy;

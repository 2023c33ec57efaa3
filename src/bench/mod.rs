//! Benchmarks: the built-in benchmark catalog (running benchmarks is not implemented yet).

pub mod catalog;

//! Reporters: the built-in reporter catalog (rendering is not implemented yet).

pub mod catalog;

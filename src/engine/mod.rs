//! Inference engines: the static profiles kitt knows (launching and measuring them is not
//! implemented yet).

pub mod profiles;

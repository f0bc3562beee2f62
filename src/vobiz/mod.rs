//! Vobiz signing schemes, byte-exact to `vobiz-signatures.md`.

pub mod voice;

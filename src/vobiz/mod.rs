//! Vobiz signing schemes, byte-exact to `vobiz-signatures.md`.

pub mod body_mac;
pub mod kyc;
pub mod sdk_v3;
pub mod voice;
pub mod whatsapp;

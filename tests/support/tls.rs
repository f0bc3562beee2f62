//! A downstream connection over TLS from one of Vobiz's documented addresses.

use std::net::IpAddr;

use callback_guard::guard::Downstream;

pub struct Tls;

impl Downstream for Tls {
    fn tls(&self) -> bool {
        true
    }

    fn peer(&self) -> Option<IpAddr> {
        Some([35, 154, 59, 246].into())
    }
}

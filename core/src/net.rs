//! Source addresses: CIDR lists and the client address behind trusted proxies.

use std::net::IpAddr;

/// An address block like `35.154.59.246/32` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// A block in `address/prefix` form; a bare address is a single host.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        if prefix > max {
            return None;
        }
        Some(Cidr { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, canonical(address)) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(addr).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(addr), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    match width - prefix {
        0 => bits,
        shift if shift >= 128 => 0,
        shift => bits >> shift,
    }
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack listener reports) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

pub fn any_contains(blocks: &[Cidr], address: IpAddr) -> bool {
    blocks.iter().any(|block| block.contains(address))
}

/// The address part of Envoy's `source.address` (`1.2.3.4:5678`, `[::1]:5678`).
pub fn parse_socket_address(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?;
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    let (host, _port) = text.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok().map(canonical)
}

/// The client behind trusted proxies: the peer itself unless it is a trusted proxy, else
/// the right-most `x-forwarded-for` entry that is not one. Entries left of an untrusted
/// hop were written by whoever sent the request and prove nothing. `None` when every hop
/// is trusted or an entry is not an address.
pub fn client_address(
    peer: IpAddr,
    forwarded_for: Option<&[u8]>,
    trusted: &[Cidr],
) -> Option<IpAddr> {
    let peer = canonical(peer);
    if !any_contains(trusted, peer) {
        return Some(peer);
    }
    let list = std::str::from_utf8(forwarded_for?).ok()?;
    for hop in list.rsplit(',') {
        let address = canonical(hop.trim().parse::<IpAddr>().ok()?);
        if !any_contains(trusted, address) {
            return Some(address);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| Cidr::parse(c).unwrap()).collect()
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        assert!(Cidr::parse("35.154.59.246")
            .unwrap()
            .contains(ip("35.154.59.246")));
        assert!(!Cidr::parse("35.154.59.246")
            .unwrap()
            .contains(ip("35.154.59.247")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains(ip("2001:db8:ffff::1")));
        assert!(!Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains(ip("10.0.0.1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "::/129",
            "host/8",
            "10.0.0.0/8/8",
            "10.0.0.0/+8",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(parse_socket_address(b"1.2.3.4:5678"), Some(ip("1.2.3.4")));
        assert_eq!(parse_socket_address(b"[::1]:443"), Some(ip("::1")));
        assert_eq!(
            parse_socket_address(b"[::ffff:1.2.3.4]:443"),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(parse_socket_address(b"1.2.3.4"), Some(ip("1.2.3.4")));
        assert_eq!(parse_socket_address(b"\xff:1"), None);
        assert_eq!(parse_socket_address(b"nonsense"), None);
    }

    #[test]
    fn client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let lb = cidrs(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("35.1.1.1"), Some(b"6.6.6.6"), &lb),
            Some(ip("35.1.1.1"))
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), Some(b"35.1.1.1"), &lb),
            Some(ip("35.1.1.1"))
        );
        // Spoofed entries left of the real client are ignored.
        assert_eq!(
            client_address(ip("10.0.0.5"), Some(b"6.6.6.6, 35.1.1.1, 10.0.0.9"), &lb),
            Some(ip("35.1.1.1"))
        );
        assert_eq!(client_address(ip("10.0.0.5"), None, &lb), None);
        assert_eq!(client_address(ip("10.0.0.5"), Some(b"10.0.0.7"), &lb), None);
        assert_eq!(
            client_address(ip("10.0.0.5"), Some(b"35.1.1.1, junk"), &lb),
            None
        );
        assert_eq!(client_address(ip("10.0.0.5"), Some(b"\xff"), &lb), None);
    }
}

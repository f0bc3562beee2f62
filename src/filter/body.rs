//! The request body as the filter takes it in: read once at its end, or, for a scheme
//! whose signature is an HMAC of the raw body (behind bytes the headers fix), read and
//! hashed as it arrives, so the verdict follows the last byte without a pass over the whole
//! body.

use hmac::Mac;
use proxy_wasm::types::Status;

use super::host;
use crate::keys::{HmacSha256, Key};
use crate::providers::StreamedMac;

/// A body hashed as it arrives: the bytes so far and, for each of the scheme's keys, the
/// HMAC state over them.
pub struct Hashing {
    body: Vec<u8>,
    macs: Vec<HmacSha256>,
}

impl Hashing {
    /// Each key's HMAC state, fed the bytes the headers fix before the body.
    pub fn new(streamed: StreamedMac) -> Self {
        let mut macs: Vec<HmacSha256> = streamed.keys.iter().map(Key::sha256).collect();
        for mac in &mut macs {
            mac.update(&streamed.prefix);
        }
        Hashing {
            body: Vec::new(),
            macs,
        }
    }

    /// Takes in what arrived since the last call: Envoy's buffer holds the whole body so
    /// far, `size` bytes (`usize::MAX`: all there is).
    pub fn take_in(&mut self, size: usize) -> Result<(), Status> {
        let seen = self.body.len();
        if size <= seen {
            return Ok(());
        }
        let more = host::read_body_from(seen, size - seen)?;
        for mac in &mut self.macs {
            mac.update(&more);
        }
        if self.body.is_empty() {
            self.body = more;
        } else {
            self.body.extend_from_slice(&more);
        }
        Ok(())
    }

    /// The whole body and its MAC under each key, in the keys' order.
    pub fn finish(self) -> (Vec<u8>, Vec<[u8; 32]>) {
        let macs = self
            .macs
            .into_iter()
            .map(|mac| mac.finalize().into_bytes().into())
            .collect();
        (self.body, macs)
    }
}

/// The body of `size` bytes (`usize::MAX`: all there is) in one read, and no MACs.
pub fn read_whole(size: usize) -> Result<(Vec<u8>, Vec<[u8; 32]>), Status> {
    if size == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    Ok((host::read_body_from(0, size)?, Vec::new()))
}

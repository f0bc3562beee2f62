//! The request body as the filter takes it in: read once at its end, or, for a scheme
//! whose signature is an HMAC of the raw body (behind bytes the headers fix), hashed as it
//! arrives and read only once its MAC verified. Envoy holds the body either way; the filter
//! keeps no second copy of one it has not verified, so a stream with a forged signature
//! costs the VM no memory beyond the piece being hashed.

use proxy_wasm::types::Status;

use super::host;
use callback_guard::providers::{Hashed, Hasher, StreamedMac};

/// A body hashed as it arrives. Boxed: the hash states are some 2 KB (BLAKE3 keeps a
/// stack of chaining values), which every request's state would carry otherwise.
pub struct Hashing(Box<Hasher>);

impl Hashing {
    pub fn new(streamed: &StreamedMac) -> Self {
        Hashing(Box::new(streamed.start()))
    }

    /// Takes in what arrived since the last call: Envoy's buffer holds the whole body so
    /// far, `size` bytes (`usize::MAX`: all there is). Each piece is hashed, then dropped.
    pub fn take_in(&mut self, size: usize) -> Result<(), Status> {
        let seen = self.0.body_len();
        if size <= seen {
            return Ok(());
        }
        let more = host::read_body_from(seen, size - seen)?;
        self.0.update(&more);
        Ok(())
    }

    pub fn finish(self) -> Hashed {
        (*self.0).finish()
    }
}

/// The body of `size` bytes (`usize::MAX`: all there is) in one read.
pub fn read_whole(size: usize) -> Result<Vec<u8>, Status> {
    if size == 0 {
        return Ok(Vec::new());
    }
    host::read_body_from(0, size)
}

/// The body a [`Hashing`] took in, read again from Envoy's buffer (which only grows, so
/// these are the bytes hashed) once its MAC verified: `None` if Envoy hands over another
/// length than was hashed.
pub fn read_hashed(hashed: &Hashed) -> Result<Option<Vec<u8>>, Status> {
    let body = read_whole(hashed.body_len)?;
    Ok((body.len() == hashed.body_len).then_some(body))
}

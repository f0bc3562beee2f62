//! Every `replay.store.type` a route can name besides `shared_data` (this Envoy's memory
//! alone), each built by its own module: the parser looks the type up here, refuses the
//! fields it does not read (the error names, from this list, the types that do), and hands
//! the rest to its `compile`.
//!
//! Adding a store: its module exports a [`Kind`], and [`KINDS`] gets one line.

use crate::store::{etcd, Kind};

pub const KINDS: &[&Kind] = &[&etcd::KIND];

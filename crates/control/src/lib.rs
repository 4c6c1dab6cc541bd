//! The local control protocol every Postern process speaks to the supervisor: length-prefixed
//! postcard frames on the Unix socket `DATA/run/control.sock`.
//!
//! # Layout
//!
//! - [`frame`]: reading and writing one frame (`u32` big-endian length, then postcard), with the
//!   size limit that makes an oversized or garbage frame close its connection and nothing else.
//! - [`message`]: the requests, the responses and the status report. A connection opens with
//!   [`Request::Hello`] carrying [`PROTOCOL_VERSION`]; after [`Request::Subscribe`] the server
//!   pushes every newly committed configuration on that connection, and the factory
//!   certificates.
//! - [`client`]: a small async client for the CLI, the services and tests.

pub mod client;
pub mod frame;
pub mod message;

pub use client::{Client, ClientError, Committed, Event, Subscription};
pub use frame::FrameError;
pub use message::{
    Confirmation, ControlError, FactoryCertificate, Gauges, PROTOCOL_VERSION, Request, Response,
    ServiceState, ServiceStatus, Status,
};

/// Where the control socket lives inside a data directory.
pub fn socket_path(data: &std::path::Path) -> std::path::PathBuf {
    data.join("run").join("control.sock")
}

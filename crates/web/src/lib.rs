//! Postern's HTTPS service (`postern httpd`): the Classic UI, the NGUI and the REST API, served
//! with the GUI HTTPS TLS policy and certificate. Administrators' changes stay pending in their
//! web session until they commit them, exactly as in a CLI session.

mod api;
mod assets;
mod auth;
mod classic;
mod html;
mod mail;
mod monitor;
mod openapi;
mod serve;
pub mod service;
mod ssl;
mod state;

pub use openapi::document as openapi_document;

//! The SMTP protocol of Postern without I/O: bytes in, commands and replies out, and the reverse.
//! The inbound server and the outbound client of `postern-smtp` own the sockets and the session
//! state; this crate owns the grammar, the limits and the replies to broken input, so neither
//! side can be made to panic or to hold unbounded memory by what a peer sends.
//!
//! # Layout
//!
//! - [`line`](mod@line): [`LineBuffer`] frames what a client sends into CRLF lines of at most
//!   512 octets. A line that is too long, ends in a bare LF, holds a bare CR or a NUL comes out
//!   as a [`LineError`] in its place, with the reply to give, so the server answers every line
//!   in order. It also tells whether bytes are waiting after a line, which after STARTTLS must
//!   be thrown away, and hands them over to the DATA decoder after `354`.
//! - [`address`]: [`Mailbox`], [`ReversePath`] and [`ForwardPath`] as RFC 5321 4.1.2 writes them:
//!   dot-atoms and quoted local parts, domains and address literals, the null path and
//!   `<Postmaster>`, UTF-8 only under SMTPUTF8, and the length limits.
//! - [`command`]: [`Command`], parsed from a line by the server and written by the client, with
//!   the MAIL parameters SIZE, BODY and SMTPUTF8. Every way a line can be wrong is a
//!   [`CommandError`] variant that knows its reply (`500 5.5.1`, `501 5.1.7`, `555 5.5.4`, ...).
//! - [`reply`]: [`Reply`] with its enhanced status code, the constructors of the replies a server
//!   gives, and [`ReplyParser`], which reads multi-line replies from a server the client cannot
//!   trust, within limits of line length and line count.
//! - [`ehlo`]: [`Capabilities`], the extensions of the EHLO reply (PIPELINING, SIZE, 8BITMIME,
//!   ENHANCEDSTATUSCODES, SMTPUTF8, STARTTLS), written by the server and read by the client.
//! - [`data`]: [`DataDecoder`] reads the message after `354`: dot-unstuffing, the end marker,
//!   the size limit and the bare CR/LF rule that defeats SMTP smuggling, reporting how much input
//!   the message took so that pipelined commands after it are not lost. [`DataEncoder`] and
//!   [`dot_stuff`] write a message for the client.

pub mod address;
pub mod command;
pub mod data;
pub mod ehlo;
pub mod line;
pub mod reply;

pub use address::{AddressError, Domain, ForwardPath, Host, Mailbox, ReversePath};
pub use command::{Body, Command, CommandError, MailParams, RcptParams, Verb};
pub use data::{DataDecoder, DataEncoder, DataError, DataStatus, dot_stuff};
pub use ehlo::Capabilities;
pub use line::{Line, LineBuffer, LineError, MAX_COMMAND_LINE};
pub use reply::{
    EnhancedStatus, InvalidEnhancedStatus, Reply, ReplyError, ReplyParseError, ReplyParser,
    StatusClass,
};

#[cfg(test)]
mod tests;

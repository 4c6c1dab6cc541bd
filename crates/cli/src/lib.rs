//! The administrator's CLI, as on the reference appliance: a prompt, commands, dialogs whose
//! questions show the current value as `[default]>` (Enter keeps it), and changes that stay
//! pending in this session until `commit`.
//!
//! # Layout
//!
//! - [`console`]: where lines come from and go to. On a terminal the administrator types; from a
//!   pipe, commands and dialog answers are read line by line in one session.
//! - [`pager`]: long output a screenful at a time on a terminal (`-Press Any Key For More-`).
//! - [`session`]: one administrator session: the connection to the supervisor, the generation
//!   the pending changes started from, the pending configuration, the command loop.
//! - [`commands`]: the command table (`help` reads it) and one module per group of commands.

pub mod accounts;
pub mod commands;
pub mod console;
pub mod pager;
pub mod session;

pub use console::{Console, StdConsole};
pub use session::{Session, SessionError};

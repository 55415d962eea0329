//! The protocol core of OMA IMPS CSP 1.3 session handling, as changed by the session-recovery
//! change request (error 608, crash-safe Session-ID, recovery first, 502, logout-then-login
//! after a recovery, no disconnecting one client to admit another).
//!
//! The core is sans-IO: [`client::Client`] and [`server::UserServer`] are state machines
//! that take an input and the current time and return what to send, which timer to arm and
//! what was stored, as data. The model checker ((`checker`)) and the simulator (crate
//! `imps-sim`) drive this same code. Every behaviour the CR leaves open is a knob of
//! [`config::Config`].
//!
//! ```
//! use imps_model::client::{Client, ClientOut};
//! use imps_model::config::Config;
//! use imps_model::msg::{DeviceId, Primitive, UserId};
//! use imps_model::server::{Origin, ServerOut, ServerShared, UserServer};
//!
//! let cfg = Config::default();
//! let mut client = Client::new(UserId(0), DeviceId(0));
//! let (mut server, mut shared) = (UserServer::default(), ServerShared::default());
//! let mut out = ClientOut::default();
//! client.start(&cfg, &mut out);
//! let login = out.send.take().unwrap();
//! assert_eq!(login.body.wire_name(), "Login-Request");
//! let mut sout = ServerOut::default();
//! let origin = Origin { user: UserId(0), device: DeviceId(0) };
//! server.handle(&cfg, &mut shared, origin, 0, &login, &mut sout);
//! let answer = sout.reply.unwrap();
//! client.on_message(&cfg, &answer, &mut out);
//! assert!(client.stored.is_some(), "the Session-ID is stored crash-safely");
//! assert_eq!(out.send.unwrap().body, Primitive::ServiceRequest);
//! ```
#![warn(missing_docs)]

pub mod catalogue;
pub mod checker;
pub mod client;
pub mod codes;
pub mod config;
pub mod io;
pub mod msg;
pub mod props;
pub mod server;
pub mod specs;
pub mod trace;
pub mod validate;
pub mod variant;
pub mod world;
pub mod xml;

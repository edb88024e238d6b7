//! SMTP as Lifeboat speaks it: the client used by replay, the submission relay and
//! notices ([`client`]), replies as a type ([`reply`]), and the server side of DATA
//! shared by submission and the fallback listener ([`data`]).

pub mod client;
pub mod data;
pub mod reply;

pub use client::{Broken, Client, ConnectError};
pub use data::{Data, read_data};
pub use reply::{Reply, ReplyClass};

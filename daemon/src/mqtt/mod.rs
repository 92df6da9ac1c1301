//! The MQTT link: status with last will, door state, events from the outbox, Home Assistant
//! discovery and signed commands.
//!
//! The protocol decisions are pure and tested without a broker: [`topics`] (topic names and small
//! payloads), [`discovery`] (Home Assistant config messages), [`command`] (signed command
//! verification). [`replay`] persists command nonces. [`tls`] builds the TLS client (rustls 0.23)
//! and [`link`] is the thin I/O shell around rumqttc that runs until its shutdown future completes.
//! [`backoff`] decides when to reconnect and [`refusals`] how many refused commands are reported
//! one by one (both pure, with injected time). [`oneshot`] publishes a batch of messages and waits for every PUBACK (operator tools).

pub mod backoff;
pub mod command;
pub mod discovery;
pub mod link;
pub mod oneshot;
pub mod refusals;
pub mod replay;
pub mod tls;
pub mod topics;

pub use self::command::{Command, CommandVerifier, OperatorKey, OperatorSigner, VerifiedCommand};
pub use self::link::{Link, LinkError, LinkHandles, LinkOptions};
pub use self::topics::{
    Contact, DoorCondition, MealCounts, RetainedDoorState, RetainedLock, Topics,
};

//! The host side: client, transports, issuer tooling, the virtual card's vpcd connection, and
//! the one writer of a file replaced whole ([`mod@file`]).

pub mod apdu;
pub mod card;
pub mod commands;
pub mod error;
pub mod file;
pub mod issuer;
pub mod meal;
pub mod older_applet;
pub mod pcsc;
pub mod platform;
pub mod reader_health;
pub mod transport;
pub mod vpcd;

pub use crate::protocol::meal::{MealReceiptFields, MealRequest};
pub use card::{Card, EnrolmentSession, ReceiptBundle, SecureSession, VerifiedCard};
pub use commands::{KeptReceipt, VerifyOutcome};
pub use error::{CardError, MealReceiptError, MealRefusal, ReplayError, TransportError};
pub use meal::{MealOutcome, MealReceipt, MealReceiptLedger, VerifiedMealReceipt};
pub use transport::{CardTransport, InProcessTransport};

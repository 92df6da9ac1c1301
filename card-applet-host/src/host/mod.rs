//! The host side: client, transports, issuer tooling, and the virtual card's vpcd connection.

pub mod apdu;
pub mod card;
pub mod commands;
pub mod error;
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

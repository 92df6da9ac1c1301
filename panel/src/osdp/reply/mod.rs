//! Replies (PD → CP), one module each. Each module encodes the data after the reply code.

pub mod ack;
pub mod ccrypt;
pub mod com;
pub mod istatr;
pub mod lstatr;
pub mod nak;
pub mod pdcap;
pub mod pdid;
pub mod raw;
pub mod rmac_i;

pub use pdcap::Capability;
pub use pdid::Identity;

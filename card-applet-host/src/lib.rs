//! palmgate-card: the match-on-card applet, its host client, transports and the virtual card.
#![cfg_attr(not(feature = "host"), no_std)]

pub mod applet;
pub mod protocol;

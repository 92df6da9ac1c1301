//! The access decision: an I/O-free state machine.
//!
//! NOTE FOR THE DAEMON HELPER: the lead wrote this module (02:30) because the gate pipeline needed
//! it; please do not rewrite it. What is left for you, if you get there: the policy file (access
//! groups, weekly schedules, holidays, anti-passback rules) in `access/policy.rs`, implementing
//! [`Policy`] below, with its own tests and docs/access-policy.md.
//!
//! Events in ([`Input`]), actions out ([`Action`]), time injected (`now` on every call). The
//! machine never touches a card, a sensor or a template: the pipeline keeps the probe template and
//! only tells the machine that one is ready; the machine answers with [`Action::Verify`] when the
//! card should compare it. So no biometric data can reach an event from here.
//!
//! One presentation = a certified card and a palm, in either order, within the presentation
//! window. A card that fails the checks that need no palm (unknown issuer, revoked, lockdown,
//! policy) is denied at once, without a capture. After a decision the card must leave the reader
//! before it can be presented again.

mod machine;
mod policy;

pub use machine::{Access, AccessConfig, Action, Decision, Input, State};
pub use policy::{
    AllowAll, AntiPassback, Direction, Policy, PolicyDenial, PolicyError, PolicyRefusal,
    PolicyRules, SitePolicy,
};

#[cfg(test)]
mod tests;

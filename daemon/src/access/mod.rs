//! The access decision: an I/O-free state machine.
//!
//! # Layout
//! - `machine.rs`: [`Access`], the presentation state machine ([`Input`] → [`Action`]).
//! - `policy.rs`: the site policy file (groups, weekly schedules, holidays, anti-passback), behind
//!   [`Policy`]; see docs/access-policy.md.
//! - `meals.rs`: its canteen rules (meal periods, allowances, canteen gates) and the period
//!   number a card compares.
//! - `tests.rs`: the machine's scenarios with injected time.
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
//!
//! Presentation attack detection runs in the pipeline after quality and before the card: a palm
//! it accepts arrives as [`Input::PalmReady`], one it refuses as [`Input::PresentationAttack`],
//! which the machine denies and alarms without ever asking the card (no try is spent); a card
//! that waits for a palm keeps waiting, so that the person can present again.

mod machine;
mod meals;
mod policy;

pub use machine::{
    Access, AccessConfig, Action, Decision, Input, MealAnswer, MealReceiptInfo, MealRequest, State,
};
pub use meals::{MAX_PERIODS_PER_DAY, MealDenial, MealEntitlement, MealRules};
pub use policy::{
    AllowAll, AntiPassback, Direction, Policy, PolicyDenial, PolicyError, PolicyRefusal,
    PolicyRules, SitePolicy,
};

#[cfg(test)]
mod meal_tests;
#[cfg(test)]
mod tests;

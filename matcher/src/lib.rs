//! palmgate-matcher: palm templates, their comparison, and (with `std`) their extraction.
//!
//! # Layout
//! - [`template`] (no_std, no alloc): the 292-byte template v1 format shared with the card.
//! - [`compare`] (no_std, no alloc): the constant-time shifted masked Hamming comparison the card
//!   runs, and the calibrated [`compare::Threshold`].
//! - [`fixtures`] (no_std, no alloc): image-free test templates of numbered identities, the one
//!   copy every crate's tests use.
//! - `std` feature (default): `roi` (whole hand or ROI image → normalised palm ROI), `quality`
//!   (refusal reasons), `features` (the ONNX filter bank run with tract), `extract` (image →
//!   template pipeline), `agreement` (which captures of an enrolment series agree: the station's
//!   search, which `eval` models), `eval` (genuine/impostor evaluation) and `synth` (synthetic
//!   palms).
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(test)]
extern crate std;

#[cfg(feature = "std")]
pub mod agreement;
pub mod compare;
#[cfg(feature = "std")]
pub mod eval;
#[cfg(feature = "std")]
pub mod extract;
#[cfg(feature = "std")]
pub mod features;
pub mod fixtures;
pub mod profile;
pub mod template;

#[cfg(feature = "std")]
pub mod pad;
#[cfg(feature = "std")]
pub mod quality;
#[cfg(feature = "std")]
pub mod roi;
#[cfg(feature = "std")]
pub mod synth;

pub use compare::{
    CompareError, Comparison, MAX_PROBE_POSES, MAX_SHIFT, MIN_OVERLAP_CELLS, Threshold, compare,
    compare_enrolled, compare_posed,
};
pub use profile::Profile;
pub use template::{ENCODED_LEN, Template, TemplateError};

/// An error and its sources as the binary prints them (`anyhow`'s `{:#}`), for the tests that
/// check a cause is said once.
#[cfg(all(test, feature = "std"))]
pub(crate) fn error_chain(error: &dyn std::error::Error) -> std::string::String {
    std::iter::successors(Some(error), |error| error.source())
        .map(std::string::ToString::to_string)
        .collect::<std::vec::Vec<_>>()
        .join(": ")
}

//! Work in progress (issue 7).

//! Door controllers from the configuration (issue 6 in progress).

//! palmgate-door (placeholder).

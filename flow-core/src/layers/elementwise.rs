//! TODO: elementwise

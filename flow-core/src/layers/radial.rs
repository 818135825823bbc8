//! TODO: radial

//! TODO: actnorm

//! TODO: affine_coupling

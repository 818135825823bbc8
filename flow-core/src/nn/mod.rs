//! Conditioner networks: the dense MLP kernel and MADE degree/mask construction.

pub mod dense;
pub mod made;
pub mod mlp;

pub use mlp::{Activation, Mlp};

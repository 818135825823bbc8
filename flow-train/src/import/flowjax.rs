//! FlowJAX 19.x (`flowjax.flows.masked_autoregressive_flow`, `flowjax.flows.coupling_flow`).
use flow_core::model::builder::ModelParts;

use super::{Fixture, Params};

/// Imports a FlowJAX flow.
pub(crate) fn import(fx: &Fixture, _p: &mut Params) -> Result<ModelParts, String> {
    Err(format!(
        "unsupported FlowJAX constructor '{}'",
        fx.flow.constructor
    ))
}

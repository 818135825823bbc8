#[flow_macros::flow("tests/models/bad/nan_weight.flow")]
pub struct Model;

fn main() {}

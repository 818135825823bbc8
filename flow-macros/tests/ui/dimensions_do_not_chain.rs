#[flow_macros::flow("tests/models/bad/bad_dims.flow")]
pub struct Model;

fn main() {}

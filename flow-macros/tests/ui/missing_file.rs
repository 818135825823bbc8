#[flow_macros::flow("tests/models/no_such_model.flow")]
pub struct Model;

fn main() {}

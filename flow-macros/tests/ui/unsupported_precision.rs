#[flow_macros::flow("tests/models/tiny.flow", precision = "f16")]
pub struct Model;

fn main() {}

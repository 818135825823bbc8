#[flow_macros::flow("tests/models/bad/many_problems.flow")]
pub struct Model;

fn main() {}

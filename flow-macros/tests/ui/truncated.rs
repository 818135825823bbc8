#[flow_macros::flow("tests/models/bad/truncated.flow")]
pub struct Model;

fn main() {}

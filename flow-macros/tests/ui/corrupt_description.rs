#[flow_macros::flow("tests/models/bad/corrupt_desc.flow")]
pub struct Model;

fn main() {}

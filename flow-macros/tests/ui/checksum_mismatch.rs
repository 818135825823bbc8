#[flow_macros::flow("tests/models/bad/checksum.flow")]
pub struct Model;

fn main() {}

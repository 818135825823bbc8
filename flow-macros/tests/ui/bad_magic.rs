#[flow_macros::flow("tests/models/bad/bad_magic.flow")]
pub struct Model;

fn main() {}

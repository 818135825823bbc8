#[flow_macros::flow("tests/models/bad/bad_version.flow")]
pub struct Model;

fn main() {}

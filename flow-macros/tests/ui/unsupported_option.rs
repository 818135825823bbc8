#[flow_macros::flow("tests/models/bad/bad_option.flow")]
pub struct Model;

fn main() {}

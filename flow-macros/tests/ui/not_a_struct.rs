#[flow_macros::flow("tests/models/tiny.flow")]
pub enum Model { A }

fn main() {}

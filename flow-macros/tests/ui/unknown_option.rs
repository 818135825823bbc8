#[flow_macros::flow("tests/models/tiny.flow", precison = "f64")]
pub struct Model;

fn main() {}

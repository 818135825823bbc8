#[flow_macros::flow(precision = "f64")]
pub struct Model;

fn main() {}

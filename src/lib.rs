//! End-to-end tests (`tests/`) and runnable examples (`examples/`) for the flow crates.

//! Tells `flow-core` whether the target's FPU has a fused multiply-add (`vfma.f32`) that stable
//! Rust cannot name in `cfg(target_feature)`: the Cortex-M4F/M7 (`thumbv7em-*-eabihf`), the
//! Armv8-M mainline cores (`thumbv8m.main-*-eabihf`) and the Armv8-R cores (`armv8r-*-eabihf`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(flow_vfma)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let vfma = ["thumbv7em-", "thumbv8m.main-", "armv8r-"]
        .iter()
        .any(|p| target.starts_with(p))
        && target.ends_with("eabihf");
    if vfma {
        println!("cargo::rustc-cfg=flow_vfma");
    }
}

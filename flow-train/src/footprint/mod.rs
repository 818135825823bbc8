//! `flow-train footprint MODEL.flow`: what a model costs on a Cortex-M4F.
//!
//! Builds a throw-away `#![no_std]` firmware crate that bakes the model with `flow-macros`, for
//! `thumbv7em-none-eabihf`, and measures:
//! - flash: code and weights separately (`llvm-size` of the linked binary, minus the same
//!   firmware built without the model, so the harness's semihosting and printing do not count;
//!   weights are the baked type's `WEIGHT_BYTES`), static RAM (`.data` + `.bss`, same difference);
//! - peak stack of `log_prob`, `sample` and `grad_log_prob` (cortex-m-rt paints the stack with
//!   `0xCCCCCCCC`; the firmware finds the lowest overwritten word after the calls);
//! - executed instructions of each call, exactly, under `qemu-system-arm -M mps2-an386` with the
//!   TCG plugin in `icount.c` (instructions between two calls of a marker function; the cost of
//!   an empty marker pair is subtracted);
//! - multiply-adds of one `log_prob` (every dense layer's `in × out`, masked entries included
//!   since the kernel executes them) and instructions per multiply-add.
//!
//! Without qemu (or a C compiler for the plugin) it still reports the sizes and says what it
//! skipped. The firmware prints integers only, so float formatting does not inflate the size.
//!
//! Where `flow-core` and `flow-macros` come from ([`CrateSource`]): a checkout given with
//! `--repo`, else the copies compiled into this binary (`build.rs`), so an installed
//! `flow-train` works in any folder; a binary built from the published crate uses the same
//! version from crates.io. The firmware's other dependencies (cortex-m, …) come from crates.io.

use std::path::{Path, PathBuf};
use std::process::Command;

use flow_core::model::builder::ModelParts;
use flow_core::model::LayerDesc;
use serde::Serialize;

use crate::error::FootprintError;

/// The measurements.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Footprint {
    /// Flash used by the model's code (and constants other than the weights) in a firmware that
    /// calls `log_prob`, `sample` and `grad_log_prob`: the firmware's flash minus the weights
    /// minus the same firmware built without the model.
    pub flash_code_bytes: u64,
    /// The same for a firmware that calls only `log_prob`.
    pub flash_code_bytes_log_prob: u64,
    /// The same for a firmware that calls `log_prob` and `sample`.
    pub flash_code_bytes_log_prob_sample: u64,
    /// Flash used by the weights (the baked type's `WEIGHT_BYTES`).
    pub flash_weight_bytes: u64,
    /// `.data` + `.bss`.
    pub ram_static_bytes: u64,
    /// Deepest stack use of the three calls, from the caller's stack pointer.
    pub stack_peak_bytes: Option<u64>,
    /// Executed instructions of one `log_prob`.
    pub instructions_log_prob: Option<u64>,
    /// Executed instructions of one `sample`.
    pub instructions_sample: Option<u64>,
    /// Executed instructions of one `grad_log_prob`.
    pub instructions_grad_log_prob: Option<u64>,
    /// Multiply-adds of one `log_prob`.
    pub multiply_adds: u64,
    /// Flash of the measuring harness alone (semihosting, printing, start-up), not counted above.
    pub harness_flash_bytes: u64,
    /// What could not be measured, and why.
    pub skipped: Vec<String>,
}

/// Multiply-adds of one density evaluation: dense layers `in × out`, LU `D²`, planar and radial
/// `2D`; elementwise maps and permutations count 0.
pub fn multiply_adds(parts: &ModelParts) -> u64 {
    let d = parts.desc.dim as u64;
    parts
        .desc
        .layers
        .iter()
        .map(|l| match l {
            LayerDesc::AffineAutoregressive { net, .. }
            | LayerDesc::SplineAutoregressive { net, .. }
            | LayerDesc::AffineCoupling { net, .. }
            | LayerDesc::SplineCoupling { net, .. } => {
                net.sizes.windows(2).map(|w| (w[0] * w[1]) as u64).sum::<u64>()
            }
            LayerDesc::LuLinear { .. } => d * d,
            LayerDesc::Planar { .. } | LayerDesc::Radial { .. } => 2 * d,
            _ => 0,
        })
        .sum()
}

/// Where the firmware takes `flow-core` and `flow-macros` from.
#[derive(Clone, Debug)]
pub enum CrateSource {
    /// A checkout of this repository (`--repo`).
    Checkout(PathBuf),
    /// The sources compiled into this binary, written next to the firmware.
    Embedded,
    /// crates.io, this binary's version.
    Registry,
}

/// The embedded sources, `(path inside the workspace, text)`; empty for a published build.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/crate_sources.rs"));
}

/// The instruction-count plugin for `qemu-system-arm` (C, built with `cc` on first use).
const ICOUNT_C: &str = include_str!("icount.c");

impl CrateSource {
    /// `--repo` if given, else the embedded sources, else crates.io.
    pub fn new(repo: Option<PathBuf>) -> Self {
        match repo {
            Some(r) => CrateSource::Checkout(r),
            None if !embedded::CRATE_SOURCES.is_empty() => CrateSource::Embedded,
            None => CrateSource::Registry,
        }
    }

    /// The `[dependencies]` lines of the firmware for the two crates, writing the embedded
    /// sources under `work/crates` first.
    fn dependencies(&self, work: &Path) -> Result<String, FootprintError> {
        let path_deps = |root: &Path| {
            format!(
                "flow-core = {{ path = {:?} }}\nflow-macros = {{ path = {:?} }}\n",
                root.join("flow-core").display().to_string(),
                root.join("flow-macros").display().to_string()
            )
        };
        match self {
            CrateSource::Checkout(repo) => {
                if !repo.join("flow-macros/Cargo.toml").exists() {
                    return Err(format!(
                        "{}: not a checkout of this repository (no flow-macros/Cargo.toml)",
                        repo.display()
                    )
                    .into());
                }
                let repo = std::fs::canonicalize(repo).map_err(|e| format!("{}: {e}", repo.display()))?;
                Ok(path_deps(&repo))
            }
            CrateSource::Embedded => {
                let root = work.join("crates");
                for (rel, text) in embedded::CRATE_SOURCES {
                    let p = root.join(rel);
                    if let Some(dir) = p.parent() {
                        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    }
                    // Unchanged files keep their modification time, so cargo does not rebuild.
                    if std::fs::read_to_string(&p).ok().as_deref() != Some(*text) {
                        crate::io::write_atomic(&p, text.as_bytes())
                            .map_err(|e| format!("{}: {e}", p.display()))?;
                    }
                }
                let root = std::fs::canonicalize(&root).map_err(|e| format!("{}: {e}", root.display()))?;
                Ok(path_deps(&root))
            }
            CrateSource::Registry => {
                let v = env!("CARGO_PKG_VERSION");
                Ok(format!("flow-core = \"={v}\"\nflow-macros = \"={v}\"\n"))
            }
        }
    }
}

/// The default folder for the firmware of `model`: `<repo>/target/footprint/<stem>` with
/// `--repo`, else `flow-train/footprint/<stem>` in the user's cache folder (`$XDG_CACHE_HOME`,
/// `$HOME/.cache`, or the temporary folder), kept so that a second run reuses the build.
pub fn default_work_dir(source: &CrateSource, model: &Path) -> PathBuf {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    match source {
        CrateSource::Checkout(repo) => repo.join("target/footprint").join(stem),
        _ => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(std::env::temp_dir);
            cache.join("flow-train/footprint").join(stem)
        }
    }
}

fn firmware_main(d: usize, c: usize) -> String {
    let ctx_arg = if c > 0 { ", &c" } else { "" };
    format!(
        r#"//! Generated by `flow-train footprint`: bakes `model.flow` and measures it.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{{debug, hprintln}};
use panic_semihosting as _;

#[flow_macros::flow("model.flow", verify = false)]
pub struct M;

/// Instruction-count marker (see flow-train's footprint/icount.c).
#[inline(never)]
#[no_mangle]
pub extern "C" fn flow_marker() {{
    cortex_m::asm::nop();
}}

extern "C" {{
    static _stack_end: u32;
}}

#[entry]
fn main() -> ! {{
    let x = core::hint::black_box([0.25f32; {d}]);
    let c = core::hint::black_box([0.1f32; {c}]);
    let _ = (&x, &c);
    // The `baseline` feature compiles the model out, to measure what the harness alone costs.
    #[cfg(not(feature = "baseline"))]
    {{
        flow_marker();
        flow_marker();
        let lp = M::log_prob(&x{ctx_arg});
        flow_marker();
        flow_marker();
        // `log_prob_only` and `log_prob_sample` leave out calls, to measure what each entry point
        // costs in flash (those builds are not run).
        #[cfg(not(feature = "log_prob_only"))]
        let s = M::sample(&x{ctx_arg});
        #[cfg(feature = "log_prob_only")]
        let s = ();
        flow_marker();
        flow_marker();
        #[cfg(not(any(feature = "log_prob_only", feature = "log_prob_sample")))]
        let g = M::grad_log_prob(&x{ctx_arg});
        #[cfg(any(feature = "log_prob_only", feature = "log_prob_sample"))]
        let g = ();
        flow_marker();
        core::hint::black_box((lp, s, g));
    }}
    let sp = cortex_m::register::msp::read();
    // SAFETY: `_stack_end` is the linker-script symbol for the lowest stack address; every word
    // from there up to the current stack pointer is RAM inside the stack region (painted with
    // 0xCCCCCCCC by cortex-m-rt's `paint-stack` at reset), so these aligned volatile reads stay
    // within memory this program owns and nothing else writes it concurrently.
    let lowest = unsafe {{
        let mut p = core::ptr::addr_of!(_stack_end) as *const u32;
        while (p as u32) < sp && core::ptr::read_volatile(p) == 0xCCCC_CCCC {{
            p = p.add(1);
        }}
        p as u32
    }};
    hprintln!("stack_peak {{}}", sp - lowest);
    hprintln!("weight_bytes {{}}", M::WEIGHT_BYTES);
    debug::exit(debug::EXIT_SUCCESS);
    loop {{}}
}}
"#
    )
}

fn firmware_cargo(deps: &str) -> String {
    format!(
        r#"[package]
name = "flow-footprint"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
{deps}cortex-m = {{ version = "0.7", features = ["critical-section-single-core"] }}
cortex-m-rt = {{ version = "0.7", features = ["paint-stack"] }}
cortex-m-semihosting = "0.5"
panic-semihosting = {{ version = "0.6", features = ["exit"] }}

[features]
baseline = []
log_prob_only = []
log_prob_sample = []

[profile.release]
opt-level = 3
codegen-units = 1
lto = true
debug = false
"#
    )
}

const MEMORY_X: &str = "MEMORY\n{\n  FLASH : ORIGIN = 0x00000000, LENGTH = 1024K\n  RAM   : ORIGIN = 0x20000000, LENGTH = 256K\n}\n";

fn run(cmd: &mut Command) -> Result<String, FootprintError> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn llvm_tool(name: &str) -> Option<PathBuf> {
    let sysroot = run(Command::new("rustc").args(["--print", "sysroot"])).ok()?;
    let host = run(Command::new("rustc").args(["-vV"]))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))?;
    let p = PathBuf::from(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin")
        .join(name);
    p.exists().then_some(p)
}

/// Builds, runs and measures the model at `model` (see the module docs).
pub fn measure(
    model: &Path,
    parts: &ModelParts,
    source: &CrateSource,
    work: &Path,
) -> Result<Footprint, FootprintError> {
    let d = parts.desc.dim as usize;
    let c = parts.desc.context_dim as usize;
    let mut fp = Footprint {
        multiply_adds: multiply_adds(parts),
        ..Default::default()
    };
    std::fs::create_dir_all(work.join("src")).map_err(|e| format!("{}: {e}", work.display()))?;
    let deps = source.dependencies(work)?;
    std::fs::create_dir_all(work.join(".cargo")).map_err(|e| e.to_string())?;
    let write = |p: PathBuf, s: &str| std::fs::write(&p, s).map_err(|e| format!("{}: {e}", p.display()));
    write(work.join("Cargo.toml"), &firmware_cargo(&deps))?;
    write(work.join("memory.x"), MEMORY_X)?;
    write(
        work.join(".cargo/config.toml"),
        "[build]\ntarget = \"thumbv7em-none-eabihf\"\n\n[target.thumbv7em-none-eabihf]\nrustflags = [\"-C\", \"link-arg=-Tlink.x\"]\n",
    )?;
    write(work.join("src/main.rs"), &firmware_main(d, c))?;
    std::fs::copy(model, work.join("model.flow")).map_err(|e| format!("{}: {e}", model.display()))?;
    // The harness alone (model compiled out), then with the model.
    let elf = work.join("target/thumbv7em-none-eabihf/release/flow-footprint");
    let size = llvm_tool("llvm-size").ok_or("llvm-size not found (rustup component add llvm-tools)")?;
    let sizes = |features: &[&str]| -> Result<(u64, u64), FootprintError> {
        let mut cmd = Command::new("cargo");
        cmd.args(["build", "--release", "-q"])
            .args(features)
            .current_dir(work)
            .env_remove("CARGO_TARGET_DIR");
        run(&mut cmd)?;
        let out = run(Command::new(&size).arg("-A").arg(&elf))?;
        let section = |name: &str| -> u64 {
            out.lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let flash = section(".vector_table") + section(".text") + section(".rodata") + section(".data");
        Ok((flash, section(".data") + section(".bss") + section(".uninit")))
    };
    let (base_flash, base_ram) = sizes(&["--features", "baseline"])?;
    let (flash_log_prob, _) = sizes(&["--features", "log_prob_only"])?;
    let (flash_log_prob_sample, _) = sizes(&["--features", "log_prob_sample"])?;
    // The full build last: it is the one run under qemu.
    let (flash, ram) = sizes(&[])?;
    fp.harness_flash_bytes = base_flash;
    let flash = flash.saturating_sub(base_flash);
    fp.ram_static_bytes = ram.saturating_sub(base_ram);

    // Run under qemu with the instruction-count plugin.
    let qemu_ok = Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let plugin = work.join("libicount.so");
    write(work.join("icount.c"), ICOUNT_C)?;
    let cc_ok = qemu_ok
        && Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&plugin)
            .arg(work.join("icount.c"))
            .status()
            .is_ok_and(|s| s.success());
    let marker = llvm_tool("llvm-nm").and_then(|nm| {
        run(Command::new(nm).arg(&elf)).ok()?.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            let addr = it.next()?;
            (it.last() == Some("flow_marker")).then(|| addr.to_string())
        })
    });
    let weight_bytes_line;
    match (qemu_ok, cc_ok, marker) {
        (true, true, Some(addr)) => {
            let out = Command::new("qemu-system-arm")
                .args(["-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic"])
                .args([
                    "-semihosting-config",
                    "enable=on,target=native",
                    "-icount",
                    "shift=0",
                ])
                .arg("-plugin")
                .arg(format!("{},marker=0x{addr}", plugin.display()))
                .arg("-kernel")
                .arg(&elf)
                .output()
                .map_err(|e| format!("qemu-system-arm: {e}"))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                return Err(format!("firmware failed under qemu:\n{stdout}\n{stderr}").into());
            }
            let counts: Vec<u64> = stderr
                .lines()
                .filter_map(|l| l.strip_prefix("icount ").and_then(|v| v.trim().parse().ok()))
                .collect();
            // Markers: m m log_prob m m sample m m grad_log_prob m (7 calls).
            if counts.len() == 7 {
                let empty = counts[1] - counts[0];
                fp.instructions_log_prob = Some(counts[2] - counts[1] - empty);
                fp.instructions_sample = Some(counts[4] - counts[3] - empty);
                fp.instructions_grad_log_prob = Some(counts[6] - counts[5] - empty);
            } else {
                fp.skipped.push(format!(
                    "instruction counts: expected 7 markers, saw {}",
                    counts.len()
                ));
            }
            let value = |key: &str| {
                stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse::<u64>().ok()))
            };
            fp.stack_peak_bytes = value("stack_peak ");
            weight_bytes_line = value("weight_bytes ");
        }
        (false, _, _) => {
            fp.skipped
                .push("qemu-system-arm not found: no stack or instruction counts".into());
            weight_bytes_line = None;
        }
        _ => {
            fp.skipped
                .push("could not build the qemu plugin or find the marker: no counts".into());
            weight_bytes_line = None;
        }
    }
    // Weights: the baked type's constant when the firmware ran; otherwise the file's weights
    // (4 bytes each in f32 files, 8 in f64 files).
    fp.flash_weight_bytes =
        weight_bytes_line.unwrap_or((parts.weight_type.size() * parts.weights.len()) as u64);
    let code = |f: u64| f.saturating_sub(base_flash).saturating_sub(fp.flash_weight_bytes);
    fp.flash_code_bytes = flash.saturating_sub(fp.flash_weight_bytes);
    fp.flash_code_bytes_log_prob = code(flash_log_prob);
    fp.flash_code_bytes_log_prob_sample = code(flash_log_prob_sample);
    Ok(fp)
}

/// The human-readable table.
pub fn table(fp: &Footprint) -> String {
    let opt = |v: Option<u64>| v.map_or("skipped".to_string(), |v| v.to_string());
    let per_mac = |v: Option<u64>| match v {
        Some(n) if fp.multiply_adds > 0 => format!("{:.2}", n as f64 / fp.multiply_adds as f64),
        _ => "-".into(),
    };
    let mut s = String::new();
    s += "| measure | value |\n|---|---|\n";
    s += &format!(
        "| flash, code: log_prob only | {} B |\n",
        fp.flash_code_bytes_log_prob
    );
    s += &format!(
        "| flash, code: log_prob + sample | {} B |\n",
        fp.flash_code_bytes_log_prob_sample
    );
    s += &format!(
        "| flash, code: log_prob + sample + grad_log_prob | {} B |\n",
        fp.flash_code_bytes
    );
    s += &format!("| flash, weights | {} B |\n", fp.flash_weight_bytes);
    s += &format!("| static RAM | {} B |\n", fp.ram_static_bytes);
    s += &format!(
        "| (harness alone, not counted) | {} B flash |\n",
        fp.harness_flash_bytes
    );
    s += &format!("| peak stack | {} B |\n", opt(fp.stack_peak_bytes));
    s += &format!("| multiply-adds per log_prob | {} |\n", fp.multiply_adds);
    s += &format!(
        "| instructions: log_prob | {} ({} per multiply-add) |\n",
        opt(fp.instructions_log_prob),
        per_mac(fp.instructions_log_prob)
    );
    s += &format!(
        "| instructions: sample | {} ({} per multiply-add of log_prob) |\n",
        opt(fp.instructions_sample),
        per_mac(fp.instructions_sample)
    );
    s += &format!(
        "| instructions: grad_log_prob | {} ({} per multiply-add of log_prob) |\n",
        opt(fp.instructions_grad_log_prob),
        per_mac(fp.instructions_grad_log_prob)
    );
    for k in &fp.skipped {
        s += &format!("skipped: {k}\n");
    }
    s
}

//! The firmware example (`examples/firmware`) runs under `qemu-system-arm -M mps2-an386` and every
//! value it prints equals the host evaluation of the same model bit for bit.
//!
//! Needs the `thumbv7em-none-eabihf` target and `qemu-system-arm`. Without them the test says it
//! skipped, unless `FLOW_REQUIRE_QEMU=1` (set by `.ci/run`), which makes their absence a failure.

use std::path::PathBuf;
use std::process::Command;

use flow_core::rng::XorShift64Star;
use flow_core::runtime::Evaluator;

const POINTS: [[f32; 2]; 4] = [[0.0, 0.5], [1.0, -0.25], [-1.5, 2.0], [7.5, -12.0]];
const NOISE: [[f32; 2]; 2] = [[0.3, -1.1], [-2.0, 0.7]];

fn hex(v: &[f32]) -> String {
    v.iter()
        .map(|x| format!("{:08x}", x.to_bits()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lines the firmware must print, computed on the host.
fn expected(model: &[u8]) -> Vec<String> {
    let store = flow_train::golden::aligned(model);
    let mut ev =
        Evaluator::<f32, 4096>::new(&flow_core::bytemuck::cast_slice(&store)[..model.len()]).unwrap();
    let mut lines = Vec::new();
    for (i, x) in POINTS.iter().enumerate() {
        lines.push(format!("log_prob {i} {}", hex(&[ev.log_prob(x, &[]).unwrap()])));
        let mut z = [0.0f32; 2];
        let ldj = ev.inverse(x, &[], &mut z).unwrap();
        lines.push(format!("inverse {i} {}", hex(&[z[0], z[1], ldj])));
        let mut g = [0.0f32; 2];
        ev.grad_log_prob(x, &[], &mut g).unwrap();
        lines.push(format!("grad_log_prob {i} {}", hex(&g)));
    }
    for (i, e) in NOISE.iter().enumerate() {
        let mut x = [0.0f32; 2];
        ev.sample(e, &[], &mut x).unwrap();
        lines.push(format!("sample {i} {}", hex(&x)));
    }
    let mut rng = XorShift64Star::new(0x1234_5678_9abc_def1);
    for i in 0..2 {
        let mut x = [0.0f32; 2];
        ev.sample_with(&mut rng, &[], &mut x).unwrap();
        lines.push(format!("sample_with {i} {}", hex(&x)));
    }
    lines.push("golden ok".into());
    lines.push("done".into());
    lines
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Whether qemu and the target are installed; their absence fails the test under
/// `FLOW_REQUIRE_QEMU=1`, and otherwise is reported as a skip.
fn qemu_ready() -> bool {
    let required = std::env::var("FLOW_REQUIRE_QEMU").is_ok_and(|v| v == "1");
    let target_ok = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("thumbv7em-none-eabihf"))
        .unwrap_or(false);
    if have("qemu-system-arm", "--version") && target_ok {
        return true;
    }
    assert!(
        !required,
        "qemu-system-arm or the thumbv7em-none-eabihf target is missing"
    );
    eprintln!("skipped: qemu-system-arm or thumbv7em-none-eabihf not installed");
    false
}

/// `cargo run --release` in a firmware crate (its runner is qemu); what it printed.
fn run_under_qemu(dir: &std::path::Path) -> String {
    let out = Command::new("cargo")
        .args(["run", "--release", "-q"])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the firmware in {} failed: {}\n{stdout}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn firmware_under_qemu_prints_the_host_values_bit_for_bit() {
    if !qemu_ready() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/firmware");
    let stdout = run_under_qemu(&dir);
    let got: Vec<String> = stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let model = std::fs::read(dir.join("model.flow")).unwrap();
    assert_eq!(got, expected(&model));
}

/// The fenced code blocks of a Markdown file, as (language, text).
fn code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```").filter(|l| !l.is_empty()) {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((lang.to_string(), body.join("\n") + "\n"));
        }
    }
    blocks
}

/// A TOML block without its comment lines (the README shows the docs' `Cargo.toml` without them).
fn without_comments(toml: &str) -> String {
    toml.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// docs/firmware.md's complete firmware crate (Cargo.toml, .cargo/config.toml, memory.x,
/// src/main.rs), with the README's copy of it checked against the docs.
fn quick_start_files() -> [String; 4] {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let docs = code_blocks(&std::fs::read_to_string(root.join("docs/firmware.md")).unwrap());
    let kinds: Vec<&str> = docs.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        kinds.starts_with(&["toml", "toml", "text", "rust"]),
        "docs/firmware.md starts with the Cargo.toml, config.toml, memory.x and main.rs blocks: {kinds:?}"
    );
    let readme = code_blocks(&std::fs::read_to_string(root.join("README.md")).unwrap());
    let readme_toml = readme
        .iter()
        .find(|(k, _)| k == "toml")
        .expect("README shows a Cargo.toml");
    let readme_main = readme
        .iter()
        .find(|(k, _)| k == "rust")
        .expect("README shows a main.rs");
    assert_eq!(
        without_comments(&readme_toml.1),
        without_comments(&docs[0].1),
        "README and docs/firmware.md show different Cargo.toml files"
    );
    assert_eq!(
        readme_main.1, docs[3].1,
        "README and docs/firmware.md show different main.rs files"
    );
    [0, 1, 2, 3].map(|i| docs[i].1.clone())
}

/// The docs' firmware crate in `CARGO_TARGET_TMPDIR/name`, with `flow-core` and `flow-macros`
/// from this checkout, `main` as `src/main.rs` and `model` as `moons.flow`.
fn firmware_crate(name: &str, main: &str, model: &std::path::Path) -> PathBuf {
    let [cargo_toml, config, memory, _] = quick_start_files();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let git = r#"{ git = "https://github.com/flows-rs/flows" }"#;
    assert_eq!(
        cargo_toml.matches(git).count(),
        2,
        "the docs' Cargo.toml takes flow-core and flow-macros from git"
    );
    let cargo_toml = cargo_toml
        .replacen(git, &format!("{{ path = {:?} }}", root.join("flow-core")), 1)
        .replacen(git, &format!("{{ path = {:?} }}", root.join("flow-macros")), 1);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join(".cargo")).unwrap();
    // An empty [workspace] keeps the crate out of any workspace around the target directory.
    std::fs::write(dir.join("Cargo.toml"), cargo_toml + "\n[workspace]\n").unwrap();
    std::fs::write(dir.join(".cargo/config.toml"), config).unwrap();
    std::fs::write(dir.join("memory.x"), memory).unwrap();
    std::fs::write(dir.join("src/main.rs"), main).unwrap();
    std::fs::copy(model, dir.join("moons.flow")).unwrap();
    // The firmware example's lock file pins the same dependencies (cargo adds what is missing).
    std::fs::copy(root.join("examples/firmware/Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

#[test]
fn the_documented_firmware_quick_start_builds_and_runs_under_qemu() {
    // Checked before qemu: the README and the docs agree even where qemu is missing.
    let [_, _, _, main] = quick_start_files();
    if !qemu_ready() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = firmware_crate("flow-demo-fw", &main, &root.join("examples/models/moons.flow"));
    let stdout = run_under_qemu(&dir);
    assert!(stdout.starts_with("log_prob "), "{stdout}");
    assert!(stdout.contains("golden true"), "{stdout}");
}

/// A conditional model (context inputs in the first layer of every conditioner: the Cortex-M4F's
/// row-by-row assembly dot product, not the whole-layer routine) prints the host's bits.
#[test]
fn conditional_model_under_qemu_prints_the_host_values_bit_for_bit() {
    if !qemu_ready() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let points: Vec<([f32; 3], [f32; 1])> = (0..6)
        .map(|i| {
            let t = i as f32;
            (
                [0.1 * t - 0.2, 0.35 - 0.15 * t, 0.05 * t * t - 0.4],
                [0.5 - 0.25 * t],
            )
        })
        .collect();
    let calls: String = points
        .iter()
        .map(|(x, c)| {
            format!(
                "    hprintln!(\"{{:08x}}\", M::log_prob(&core::hint::black_box([{:?}f32, {:?}, {:?}]), &[{:?}f32]).to_bits());\n",
                x[0], x[1], x[2], c[0]
            )
        })
        .collect();
    let main = format!(
        "#![no_std]\n#![no_main]\nuse cortex_m_rt::entry;\nuse cortex_m_semihosting::{{debug, hprintln}};\nuse panic_semihosting as _;\n\
         #[flow_macros::flow(\"moons.flow\", verify = false)]\npub struct M;\n\
         #[entry]\nfn main() -> ! {{\n{calls}    debug::exit(debug::EXIT_SUCCESS);\n    loop {{}}\n}}\n"
    );
    let model_path = root.join("flow-macros/tests/models/realnvp_cond.flow");
    let dir = firmware_crate("flow-cond-fw", &main, &model_path);
    let got: Vec<String> = run_under_qemu(&dir)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let model = std::fs::read(&model_path).unwrap();
    let store = flow_train::golden::aligned(&model);
    let mut ev =
        Evaluator::<f32, 4096>::new(&flow_core::bytemuck::cast_slice(&store)[..model.len()]).unwrap();
    let want: Vec<String> = points
        .iter()
        .map(|(x, c)| hex(&[ev.log_prob(x, c).unwrap()]))
        .collect();
    assert_eq!(got, want);
}

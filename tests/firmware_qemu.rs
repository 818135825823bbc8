//! The firmware example (`examples/firmware`) runs under `qemu-system-arm -M mps2-an386` and every
//! value it prints equals the host evaluation of the same model bit for bit.
//!
//! Needs the `thumbv7em-none-eabihf` target and `qemu-system-arm`. Without them the test says it
//! skipped, unless `FLOW_REQUIRE_QEMU=1` (set by `.ci/run`), which makes their absence a failure.

use std::path::PathBuf;
use std::process::Command;

use flow_core::runtime::Evaluator;

const POINTS: [[f32; 2]; 4] = [[0.0, 0.5], [1.0, -0.25], [-1.5, 2.0], [7.5, -12.0]];
const NOISE: [[f32; 2]; 2] = [[0.3, -1.1], [-2.0, 0.7]];

struct XorShift(u64);
impl rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

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
    let mut rng = XorShift(0x1234_5678_9abc_def1);
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

#[test]
fn firmware_under_qemu_prints_the_host_values_bit_for_bit() {
    let required = std::env::var("FLOW_REQUIRE_QEMU").is_ok_and(|v| v == "1");
    let target_ok = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("thumbv7em-none-eabihf"))
        .unwrap_or(false);
    if !(have("qemu-system-arm", "--version") && target_ok) {
        assert!(
            !required,
            "qemu-system-arm or the thumbv7em-none-eabihf target is missing"
        );
        eprintln!("skipped: qemu-system-arm or thumbv7em-none-eabihf not installed");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/firmware");
    let out = Command::new("cargo")
        .args(["run", "--release", "-q"])
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "firmware failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let model = std::fs::read(dir.join("model.flow")).unwrap();
    assert_eq!(got, expected(&model));
}

//! The command-line options the `anomaly`, `conditional` and `posterior` examples share.

use flow_train::FlowKind;

/// Command-line options shared by the examples.
pub struct Args {
    pub smoke: bool,
    /// Also write the fitted model over the shipped one in `examples/models/` (rebuild to bake it).
    pub write_model: bool,
    pub epochs: Option<usize>,
    pub flow: FlowKind,
    pub seed: u64,
}

impl Args {
    /// Suffix of the pictures' file names: `_smoke` for smoke runs (git ignores those), so that a
    /// smoke run leaves the checked-in pictures of the full run alone.
    pub fn png_tag(&self) -> &'static str {
        if self.smoke {
            "_smoke"
        } else {
            ""
        }
    }
}

/// Parses `--smoke`, `--write-model`, `--epochs N`, `--flow maf|nsf`, `--seed S`; `flow` is the
/// example's default. `--write-model` needs a full-size run (not `--smoke`).
pub fn parse_args(flow: FlowKind) -> Result<Args, String> {
    let mut a = Args {
        smoke: false,
        write_model: false,
        epochs: None,
        flow,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--smoke" => a.smoke = true,
            "--write-model" => a.write_model = true,
            "--epochs" => a.epochs = Some(value("--epochs")?.parse().map_err(|e| format!("--epochs: {e}"))?),
            "--seed" => a.seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--flow" => {
                a.flow = match value("--flow")?.as_str() {
                    "maf" => FlowKind::Maf,
                    "nsf" => FlowKind::Nsf,
                    other => return Err(format!("--flow: expected maf or nsf, got {other}")),
                }
            }
            other => {
                return Err(format!(
                "unknown argument {other} (try --smoke, --write-model, --epochs N, --flow maf|nsf, --seed S)"
            ))
            }
        }
    }
    if a.smoke && a.write_model {
        return Err("--write-model replaces the shipped model: use it with a full run, not --smoke".into());
    }
    Ok(a)
}

// Shared by the `anomaly` and `conditional` examples through `include!` (not an example itself):
// their command-line options.

/// Command-line options shared by the examples.
struct Args {
    smoke: bool,
    epochs: Option<usize>,
    flow: FlowKind,
    seed: u64,
}

/// Parses `--smoke`, `--epochs N`, `--flow maf|nsf`, `--seed S`; `flow` is the example's default.
fn parse_args(flow: FlowKind) -> Result<Args, String> {
    let mut a = Args {
        smoke: false,
        epochs: None,
        flow,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--smoke" => a.smoke = true,
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
                    "unknown argument {other} (try --smoke, --epochs N, --flow maf|nsf, --seed S)"
                ))
            }
        }
    }
    Ok(a)
}

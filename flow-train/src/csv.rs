//! TEMPORARY minimal CSV (replaced by the full reader).
use std::path::Path;
#[derive(Debug, Default)]
pub struct ReadOptions {
    pub drop_invalid: bool,
    pub columns: Option<Vec<String>>,
}
#[derive(Debug, Default)]
pub struct ReadReport {
    pub dropped: usize,
}
#[derive(Debug)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}
pub fn read_csv(path: &Path, _o: &ReadOptions) -> Result<(Table, ReadReport), String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = s.lines();
    let columns: Vec<String> = lines
        .next()
        .ok_or("empty")?
        .split(',')
        .map(|c| c.trim().to_string())
        .collect();
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|v| v.trim().parse::<f64>().unwrap()).collect())
        .collect();
    Ok((Table { columns, rows }, ReadReport::default()))
}
pub fn write_csv(
    path: &Path,
    columns: &[String],
    rows: impl Iterator<Item = Vec<f64>>,
) -> std::io::Result<()> {
    let mut s = columns.join(",") + "\n";
    for r in rows {
        s += &r.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(",");
        s += "\n";
    }
    std::fs::write(path, s)
}

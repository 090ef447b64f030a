//! A comparison written to the store: its plots, its page and its
//! `compare.json` (the comparison itself is [`crate::compare`]'s).

use std::path::Path;

use anyhow::Context;

use crate::cells::Figure;
use crate::compare::{compare, relative_link, Comparison, COMPARE_JSON, PLOTS};
use crate::stats::Summary;

/// Compare `a` with `b` and write the comparison into `out` (created):
/// `compare.json`, `index.html` and its plots. Returns the comparison.
pub fn write_comparison(
    a: &Path,
    b: &Path,
    chosen: &[(String, String)],
    out: &Path,
) -> anyhow::Result<Comparison> {
    let c = compare(a, b, chosen)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let err =
        |e: Box<dyn std::error::Error>| anyhow::anyhow!("drawing the comparison's plots: {e}");
    let groups: Vec<String> = c
        .shared
        .iter()
        .map(|s| {
            if s.setting_a == s.setting_b {
                format!("{} · {}", s.fault, s.setting_a)
            } else {
                format!("{} · {} vs {}", s.fault, s.setting_a, s.setting_b)
            }
        })
        .collect();
    let series = vec![
        format!("A: {}", c.a.dir_name),
        format!("B: {}", c.b.dir_name),
    ];
    for (file, figure) in PLOTS {
        let pick = |side: usize| -> Vec<Option<Summary>> {
            c.shared
                .iter()
                .map(|s| {
                    s.figures.iter().find(|p| p.figure == figure).and_then(|p| {
                        if side == 0 {
                            p.a.clone()
                        } else {
                            p.b.clone()
                        }
                    })
                })
                .collect()
        };
        crate::plots::grouped_boxes(
            &out.join(file),
            &format!(
                "{}: each fault window one sample; median, quartiles, 95 % interval",
                figure.title()
            ),
            &groups,
            &series,
            &[pick(0), pick(1)],
            figure == Figure::Availability,
        )
        .map_err(err)?;
    }
    let links = (
        relative_link(out, &a.join("index.html")),
        relative_link(out, &b.join("index.html")),
    );
    std::fs::write(
        out.join("index.html"),
        crate::html::compare_page(&c, &links),
    )
    .with_context(|| format!("writing {}", out.join("index.html").display()))?;
    std::fs::write(out.join(COMPARE_JSON), serde_json::to_vec_pretty(&c)?)
        .with_context(|| format!("writing {}", out.join(COMPARE_JSON).display()))?;
    Ok(c)
}

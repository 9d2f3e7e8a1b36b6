//! The ladder picture as people see it: rendered by headless Chromium at 1,280 px, then
//! measured in the browser (its own layout and font metrics): the picture fits the screen,
//! no edge passes under a box it does not join, and no text spills out of its box.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{VIGNETTE_DATE, ruleset};

/// Chromium: Debian's package, installed here if the machine lacks it (as `.ci/run` does).
fn chromium() -> PathBuf {
    let path = Path::new("/usr/bin/chromium");
    if !path.exists() {
        let quiet = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = quiet(&["update", "-qq"]);
        assert!(
            quiet(&["install", "-y", "-qq", "chromium"]),
            "the picture test needs Debian's chromium package (apt-get install chromium)"
        );
    }
    path.to_path_buf()
}

/// A page that shows the picture in a frame and measures it once laid out.
const PROBE: &str = r#"<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="ladder.html" style="width:1280px;height:1400px;border:0"></iframe>
<pre id="out">pending</pre>
<script>
document.getElementById('f').onload = () => {
  const d = document.getElementById('f').contentDocument;
  const svg = d.querySelector('svg');
  const sr = svg.getBoundingClientRect();
  const problems = [];
  if (sr.right > 1280.5) problems.push('svg overflows: right ' + sr.right);
  const ctm = svg.getScreenCTM();
  const pt = (x, y) => { const p = svg.createSVGPoint(); p.x = x; p.y = y; return p.matrixTransform(ctm); };
  const boxes = {};
  for (const g of d.querySelectorAll('g.step')) {
    const r = g.querySelector('rect').getBoundingClientRect();
    boxes[g.dataset.step] = r;
    for (const t of g.querySelectorAll('text')) {
      const b = t.getBoundingClientRect();
      if (b.right > r.right + 0.5 || b.left < r.left - 0.5 || b.bottom > r.bottom + 0.5)
        problems.push('text spills out of ' + g.dataset.step + ': ' + t.textContent);
    }
  }
  let edges = 0;
  for (const e of d.querySelectorAll('polyline.edge')) {
    edges++;
    const ps = e.getAttribute('points').trim().split(/\s+/).map(s => s.split(',').map(Number));
    for (let i = 0; i + 1 < ps.length; i++) {
      const a = pt(...ps[i]), b = pt(...ps[i + 1]);
      for (const [id, r] of Object.entries(boxes)) {
        if (id === e.dataset.from || id === e.dataset.to) continue;
        const lx = Math.min(a.x, b.x), hx = Math.max(a.x, b.x), ly = Math.min(a.y, b.y), hy = Math.max(a.y, b.y);
        if (lx < r.right - 0.5 && hx > r.left + 0.5 && ly < r.bottom - 0.5 && hy > r.top + 0.5)
          problems.push('edge ' + e.dataset.from + '->' + e.dataset.to + ' passes under ' + id);
      }
    }
  }
  document.getElementById('out').textContent = JSON.stringify({boxes: Object.keys(boxes).length, edges, width: sr.width, problems});
};
</script></body></html>"#;

#[test]
fn the_ladder_picture_renders_truthfully_at_1280_px() {
    let rs = ruleset();
    let v = crate::support::vignettes()
        .iter()
        .find(|v| v["id"] == "V24")
        .unwrap();
    let reading = crate::fhir::read(&v["bundle"]);
    let mut rec = rs.evaluate(&reading.profile).unwrap();
    reading.annotate(&mut rec);
    assert_eq!(rec.date, VIGNETTE_DATE);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ladder.html"),
        pathway::report::graph::html(rs, Some(&rec)),
    )
    .unwrap();
    std::fs::write(dir.path().join("probe.html"), PROBE).unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            "--window-size=1280,1400",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!(
            "file://{}",
            dir.path().join("probe.html").display()
        ))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let json = dom
        .split("<pre id=\"out\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no measurement in the page: {dom}"));
    let json = json
        .replace("&quot;", "\"")
        .replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&amp;", "&");
    let m: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(m["boxes"], 15, "{m}");
    assert!(m["edges"].as_u64().unwrap() > 30, "{m}");
    assert!(m["width"].as_f64().unwrap() <= 1280.0, "{m}");
    assert_eq!(m["problems"], serde_json::json!([]), "{m:#}");
}

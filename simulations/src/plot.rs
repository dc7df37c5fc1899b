//! SVG plots of a report (plotters' SVG backend: text is left to the viewer, no font needed).
//!
//! Invariant: plots are small: a CDF is drawn through at most 400 quantiles, a histogram has
//! 40 bins, whatever the number of samples.

use std::path::Path;

use plotters::prelude::*;

/// A plot that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("plotting {path}: {msg}")]
pub struct PlotError {
    path: String,
    msg: String,
}

fn err(path: &Path) -> impl Fn(String) -> PlotError + '_ {
    move |msg| PlotError {
        path: path.display().to_string(),
        msg,
    }
}

/// The empirical CDF of `samples` (ms) to `path`.
pub fn cdf(path: &Path, title: &str, samples: &[u64]) -> Result<(), PlotError> {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let n = v.len();
    let points: Vec<(f64, f64)> = if n == 0 {
        Vec::new()
    } else {
        (0..=400)
            .map(|k| {
                let q = k as f64 / 400.0;
                let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
                (v[i] as f64, (i + 1) as f64 / n as f64)
            })
            .collect()
    };
    let xmax = v.last().copied().unwrap_or(1).max(1) as f64 * 1.02;
    let e = err(path);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..xmax, 0f64..1.0f64)
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("ms")
        .y_desc("fraction")
        .draw()
        .map_err(|x| e(x.to_string()))?;
    chart
        .draw_series(LineSeries::new(points, &BLUE))
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

/// A histogram of `samples` (bytes) to `path`, 40 bins.
pub fn histogram(path: &Path, title: &str, samples: &[u64]) -> Result<(), PlotError> {
    let lo = samples.iter().copied().min().unwrap_or(0);
    let hi = samples.iter().copied().max().unwrap_or(1).max(lo + 1);
    let width = (hi - lo).div_ceil(40).max(1);
    let mut bins = [0u64; 40];
    for s in samples {
        bins[(((s - lo) / width) as usize).min(39)] += 1;
    }
    let ymax = bins.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.05;
    let e = err(path);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(lo as f64..(lo + 40 * width) as f64, 0f64..ymax)
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("bytes sent + received")
        .y_desc("devices")
        .draw()
        .map_err(|x| e(x.to_string()))?;
    chart
        .draw_series(bins.iter().enumerate().map(|(k, c)| {
            let x0 = (lo + k as u64 * width) as f64;
            Rectangle::new([(x0, 0.0), (x0 + width as f64, *c as f64)], BLUE.filled())
        }))
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

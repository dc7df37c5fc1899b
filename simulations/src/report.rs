//! A run's report: named metrics in a fixed order, and the distributions the plots draw.
//!
//! CSV format, one line per metric: `scenario,devices,sites,seed,metric,value`. Invariant: the
//! report is a function of the run (no wall time in it; the binary appends wall-clock seconds
//! and peak RSS after it).

use crate::config::SimConfig;

/// Metrics of one run.
#[derive(Debug, Clone)]
pub struct Report {
    prefix: String,
    /// `(metric, value)` in the order measured.
    pub metrics: Vec<(String, String)>,
    /// Title and samples of the CDF to plot.
    pub cdf: (&'static str, Vec<u64>),
    /// Further CDFs to plot: file suffix, title, samples.
    pub extra_cdfs: Vec<(&'static str, &'static str, Vec<u64>)>,
    /// Bytes sent and received per device.
    pub bytes: Vec<u64>,
    /// Scenario name.
    pub scenario: &'static str,
}

/// The CSV header line.
pub const HEADER: &str = "scenario,devices,sites,seed,metric,value";

/// The `q` quantile (0..=1) of sorted samples, nearest rank; 0 when empty.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Report {
    /// An empty report for `cfg`.
    pub fn new(cfg: &SimConfig) -> Report {
        Report {
            prefix: format!(
                "{},{},{},{}",
                cfg.scenario.name(),
                cfg.devices,
                cfg.sites,
                cfg.seed
            ),
            metrics: Vec::new(),
            cdf: ("", Vec::new()),
            extra_cdfs: Vec::new(),
            bytes: Vec::new(),
            scenario: cfg.scenario.name(),
        }
    }

    /// Adds an integer metric.
    pub fn metric(&mut self, name: &str, value: u64) {
        self.metrics.push((name.to_owned(), value.to_string()));
    }

    /// Adds a metric given as text (e.g. a decimal).
    pub fn metric_text(&mut self, name: &str, value: String) {
        self.metrics.push((name.to_owned(), value));
    }

    /// Adds `name_p50`, `name_p99`, `name_max`.
    pub fn distribution(&mut self, name: &str, samples: &[u64]) {
        let mut v = samples.to_vec();
        v.sort_unstable();
        self.metric(&format!("{name}_p50"), percentile(&v, 0.5));
        self.metric(&format!("{name}_p99"), percentile(&v, 0.99));
        self.metric(&format!("{name}_max"), v.last().copied().unwrap_or(0));
    }

    /// Adds `name_mean` (rounded down), `name_p99`, `name_max`.
    pub fn mean_distribution(&mut self, name: &str, samples: &[u64]) {
        let mut v = samples.to_vec();
        v.sort_unstable();
        let mean = v.iter().sum::<u64>() / (v.len().max(1) as u64);
        self.metric(&format!("{name}_mean"), mean);
        self.metric(&format!("{name}_p99"), percentile(&v, 0.99));
        self.metric(&format!("{name}_max"), v.last().copied().unwrap_or(0));
    }

    /// A metric's value, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.metrics
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A metric as an integer.
    pub fn int(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    /// The CSV lines (with the header).
    pub fn csv(&self) -> String {
        let mut out = String::from(HEADER);
        out.push('\n');
        for (k, v) in &self.metrics {
            out.push_str(&format!("{},{k},{v}\n", self.prefix));
        }
        out
    }
}

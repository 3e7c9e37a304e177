//! The Prometheus text exposition format (version 0.0.4) as a pure
//! function of plain data: families of samples in, text out.

use std::fmt::Write;

use super::registry::HistogramSnapshot;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

/// One sample's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter or gauge value.
    Number(f64),
    /// A histogram.
    Histogram(HistogramSnapshot),
}

/// One labelled sample of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `(name, value)` pairs; names are fixed in code, values escaped here.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: Value,
}

/// A metric family: one `# HELP`, one `# TYPE` and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The metric name (counters end in `_total`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl Family {
    /// A family without samples yet.
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a number sample.
    pub fn number(mut self, labels: Vec<(&'static str, String)>, v: f64) -> Self {
        self.samples.push(Sample {
            labels,
            value: Value::Number(v),
        });
        self
    }

    /// Adds a histogram sample.
    pub fn histogram(mut self, labels: Vec<(&'static str, String)>, h: HistogramSnapshot) -> Self {
        self.samples.push(Sample {
            labels,
            value: Value::Histogram(h),
        });
        self
    }
}

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

fn labels(pairs: &[(&'static str, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// The exposition of `families`, in order.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = f.help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {} {help}", f.name);
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        for s in &f.samples {
            match &s.value {
                Value::Number(v) => {
                    let _ = writeln!(out, "{}{} {}", f.name, labels(&s.labels, None), number(*v));
                }
                Value::Histogram(h) => {
                    for (bound, n) in &h.buckets {
                        let le = number(*bound);
                        let l = labels(&s.labels, Some(("le", &le)));
                        let _ = writeln!(out, "{}_bucket{l} {n}", f.name);
                    }
                    let l = labels(&s.labels, None);
                    let _ = writeln!(out, "{}_sum{l} {}", f.name, number(h.sum));
                    let _ = writeln!(out, "{}_count{l} {}", f.name, h.count);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        let f = Family::new("x_total", Kind::Counter, "help with \\ and\nnewline")
            .number(vec![("app", "we\"ird\n".into())], 3.0);
        assert_eq!(
            render(&[f]),
            "# HELP x_total help with \\\\ and\\nnewline\n# TYPE x_total counter\n\
             x_total{app=\"we\\\"ird\\n\"} 3\n"
        );
    }

    #[test]
    fn histogram_lines() {
        let h = HistogramSnapshot {
            buckets: vec![(0.5, 1), (f64::INFINITY, 2)],
            sum: 1.25,
            count: 2,
        };
        let f = Family::new("lat_seconds", Kind::Histogram, "h")
            .histogram(vec![("app", "a".into())], h);
        assert_eq!(
            render(&[f]),
            "# HELP lat_seconds h\n# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{app=\"a\",le=\"0.5\"} 1\n\
             lat_seconds_bucket{app=\"a\",le=\"+Inf\"} 2\n\
             lat_seconds_sum{app=\"a\"} 1.25\nlat_seconds_count{app=\"a\"} 2\n"
        );
    }

    #[test]
    fn unlabelled_gauge() {
        let f = Family::new("g", Kind::Gauge, "g").number(vec![], 1.5e9);
        assert_eq!(render(&[f]), "# HELP g g\n# TYPE g gauge\ng 1500000000\n");
    }
}

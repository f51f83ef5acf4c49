//! Write requests the test-bed API server has served, by verb, from its
//! `apiserver_request_total` metric: what the budget tests and the benchmark count per object.

use std::collections::BTreeMap;

use kube::Client;

/// Write requests by verb (and status code when not 2xx).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Writes(pub BTreeMap<String, u64>);

impl Writes {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `<n> <verb>, …`, or `none`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(v, n)| format!("{n} {v}")).collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

impl std::ops::Sub for Writes {
    type Output = Writes;

    fn sub(mut self, rhs: Writes) -> Writes {
        for (verb, n) in rhs.0 {
            let e = self.0.entry(verb).or_default();
            *e = e.saturating_sub(n);
        }
        self.0.retain(|_, n| *n > 0);
        self
    }
}

impl std::ops::Add for Writes {
    type Output = Writes;

    fn add(mut self, rhs: Writes) -> Writes {
        for (verb, n) in rhs.0 {
            *self.0.entry(verb).or_default() += n;
        }
        self
    }
}

/// Write requests (any verb but GET, LIST, WATCH) the API server has served so far for
/// `resource`; an answer other than 2xx counts under `<VERB> (HTTP <code>)`.
pub async fn api_writes(client: &Client, resource: &str) -> Result<Writes, kube::Error> {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("a constant request");
    let text = client.request_text(req).await?;
    let label = format!("resource=\"{resource}\"");
    let mut writes = Writes::default();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{") && l.contains(&label))
    {
        let field = |name: &str| {
            line.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
        };
        let n = line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok());
        if let (Some(verb), Some(code), Some(n)) = (field("verb"), field("code"), n)
            && !matches!(verb, "GET" | "LIST" | "WATCH")
        {
            let key = if code.starts_with('2') {
                verb.to_string()
            } else {
                format!("{verb} (HTTP {code})")
            };
            *writes.0.entry(key).or_default() += n as u64;
        }
    }
    Ok(writes)
}

//! The running app profiles: one provider per `[app.<type>]`, with the
//! policy that chooses each push's priority.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::providers::{self, PriorityPolicy, Provider, ProviderSettings};

/// A provider with the policy of its app profile.
#[derive(Debug)]
pub struct App {
    /// The running provider.
    pub provider: Provider,
    /// How priorities are chosen.
    pub policy: PriorityPolicy,
}

/// An app profile whose provider did not start.
#[derive(Debug)]
pub struct AppStartError {
    /// The profile's name (`[app.<name>]`).
    pub app: String,
    /// Why its provider did not start.
    pub source: providers::StartError,
}

impl std::fmt::Display for AppStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[app.{}]: {}", self.app, self.source)
    }
}

impl std::error::Error for AppStartError {}

/// Starts one provider per app profile; the first that fails stops the
/// rest from being used.
pub fn start_apps(
    apps: &BTreeMap<String, ProviderSettings>,
) -> Result<HashMap<String, Arc<App>>, AppStartError> {
    let mut out = HashMap::new();
    for (name, settings) in apps {
        let provider = Provider::start(settings).map_err(|source| AppStartError {
            app: name.clone(),
            source,
        })?;
        let app = App {
            provider,
            policy: settings.priority_policy(),
        };
        out.insert(name.clone(), Arc::new(app));
    }
    Ok(out)
}

//! Where a (tenant, dataset) table goes: the first `[[routes]]` entry that matches the
//! dataset (and the tenant's region, if the route names one) and whose store may take the
//! tenant, else the default store if it may; a tenant with a region is never placed in a
//! store of another region. A store with `archive_for` holds no live table: it is where
//! the tables of the store it names go when their tenant is archived.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::stores::Store;
use super::LakeError;

/// Name of the store `lake = URL` / `--lake` configures.
pub const DEFAULT_STORE: &str = "default";

/// A route as configured: `[[routes]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Globs over dataset names (`otel_*`).
    pub datasets: Vec<String>,
    /// The route serves only tenants of this region.
    pub region: Option<String>,
    pub store: String,
}

#[derive(Debug)]
struct Route {
    datasets: Vec<glob::Pattern>,
    region: Option<String>,
    store: Arc<Store>,
}

/// The routes over the configured stores.
#[derive(Debug)]
pub struct Placement {
    stores: BTreeMap<String, Arc<Store>>,
    routes: Vec<Route>,
    /// Each store's archive store, by the archived store's name.
    archives: BTreeMap<String, Arc<Store>>,
}

impl Placement {
    pub fn new(
        stores: BTreeMap<String, Arc<Store>>,
        routes: &[RouteSpec],
    ) -> Result<Self, LakeError> {
        let archives = archives_of(&stores)?;
        let mut compiled = Vec::with_capacity(routes.len());
        for (index, route) in routes.iter().enumerate() {
            let store =
                stores
                    .get(&route.store)
                    .cloned()
                    .ok_or_else(|| LakeError::StoreConfig {
                        store: route.store.clone(),
                        message: format!(
                            "routes[{index}] names store {:?}, which is not configured; stores: {}",
                            route.store,
                            stores.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    })?;
            if store.archive_for.is_some() {
                return Err(LakeError::StoreConfig {
                    store: route.store.clone(),
                    message: format!(
                        "routes[{index}] names an archive store (it has archive_for); route to the store it archives"
                    ),
                });
            }
            if route.datasets.is_empty() {
                return Err(LakeError::StoreConfig {
                    store: route.store.clone(),
                    message: format!("routes[{index}].datasets is empty"),
                });
            }
            let datasets = route
                .datasets
                .iter()
                .map(|g| {
                    glob::Pattern::new(g).map_err(|e| LakeError::StoreConfig {
                        store: route.store.clone(),
                        message: format!("routes[{index}].datasets: {g:?} is not a glob: {e}"),
                    })
                })
                .collect::<Result<_, _>>()?;
            compiled.push(Route {
                datasets,
                region: route.region.clone(),
                store,
            });
        }
        if !stores.contains_key(DEFAULT_STORE) {
            return Err(LakeError::StoreConfig {
                store: DEFAULT_STORE.into(),
                message: "no default store: set lake = URL or [stores.default]".into(),
            });
        }
        Ok(Self {
            stores,
            routes: compiled,
            archives,
        })
    }

    /// Every store, archive stores included.
    pub fn stores(&self) -> impl Iterator<Item = &Arc<Store>> {
        self.stores.values()
    }

    /// The stores that hold live tables (every store but the archive stores).
    pub fn hot_stores(&self) -> impl Iterator<Item = &Arc<Store>> {
        self.stores.values().filter(|s| s.archive_for.is_none())
    }

    /// The store that `store`'s tables are archived to.
    pub fn archive_of(&self, store: &str) -> Option<&Arc<Store>> {
        self.archives.get(store)
    }

    pub fn store(&self, name: &str) -> Option<&Arc<Store>> {
        self.stores.get(name)
    }

    pub fn default_store(&self) -> &Arc<Store> {
        &self.stores[DEFAULT_STORE]
    }

    /// The store a new table of `dataset` for a tenant of `region` goes to.
    pub fn choose(
        &self,
        tenant: &str,
        region: Option<&str>,
        dataset: &str,
    ) -> Result<&Arc<Store>, LakeError> {
        let matching = self
            .routes
            .iter()
            .filter(|r| r.datasets.iter().any(|g| g.matches(dataset)))
            .filter(|r| r.region.is_none() || r.region.as_deref() == region);
        for route in matching {
            if route.store.may_take(region) {
                return Ok(&route.store);
            }
        }
        let default = self.default_store();
        if default.may_take(region) {
            return Ok(default);
        }
        Err(LakeError::NoPlacement {
            tenant: tenant.to_string(),
            region: region.unwrap_or("none").to_string(),
            dataset: dataset.to_string(),
            why: format!(
                "no route for it leads to a store of that region, and the default store is in region {}",
                default.region.as_deref().unwrap_or("none")
            ),
        })
    }
}

/// Checks each `archive_for` and maps every archived store to its archive: the archived
/// store exists and is no archive itself, has one archive, lies in the same region (a
/// tenant never leaves its region) and shares no objects with it.
fn archives_of(
    stores: &BTreeMap<String, Arc<Store>>,
) -> Result<BTreeMap<String, Arc<Store>>, LakeError> {
    let mut archives: BTreeMap<String, Arc<Store>> = BTreeMap::new();
    for archive in stores.values() {
        let Some(of) = &archive.archive_for else {
            continue;
        };
        let problem = |message: String| LakeError::StoreConfig {
            store: archive.name.clone(),
            message,
        };
        if archive.name == DEFAULT_STORE {
            return Err(problem(
                "the default store holds live tables; it cannot be an archive store".into(),
            ));
        }
        let hot = stores.get(of).ok_or_else(|| {
            problem(format!(
                "archive_for names {of:?}, which is not a configured store"
            ))
        })?;
        if hot.archive_for.is_some() {
            return Err(problem(format!(
                "archive_for names {of:?}, itself an archive store"
            )));
        }
        if hot.region != archive.region {
            return Err(problem(format!(
                "region {} differs from that of {of:?} ({}): archived tenants must stay in their region",
                archive.region.as_deref().unwrap_or("none"),
                hot.region.as_deref().unwrap_or("none")
            )));
        }
        if hot.kind != archive.kind || hot.overlaps(archive) {
            return Err(problem(format!(
                "its location must be of the same kind as {of:?}'s and lie outside it (and it outside this one): {} and {}",
                archive.root, hot.root
            )));
        }
        if let Some(other) = archives.insert(of.clone(), archive.clone()) {
            return Err(problem(format!(
                "{of:?} already has archive store {:?}; give each store one",
                other.name
            )));
        }
    }
    Ok(archives)
}

#[cfg(test)]
mod tests {
    use super::super::stores::StoreSpec;
    use super::*;

    fn store(name: &str, region: Option<&str>) -> (String, Arc<Store>) {
        let dir = std::env::temp_dir().join(format!("lakeport-placement-{name}"));
        let spec = StoreSpec {
            url: dir.to_string_lossy().into_owned(),
            region: region.map(str::to_string),
            ..Default::default()
        };
        (name.to_string(), Arc::new(Store::new(name, &spec).unwrap()))
    }

    fn route(datasets: &[&str], region: Option<&str>, store: &str) -> RouteSpec {
        RouteSpec {
            datasets: datasets.iter().map(|d| d.to_string()).collect(),
            region: region.map(str::to_string),
            store: store.into(),
        }
    }

    fn placement(default_region: Option<&str>) -> Placement {
        let stores = [
            store(DEFAULT_STORE, default_region),
            store("otel_eu", Some("eu")),
            store("otel_us", Some("us")),
            store("any", None),
        ]
        .into_iter()
        .collect();
        Placement::new(
            stores,
            &[
                route(&["otel_*"], Some("eu"), "otel_eu"),
                route(&["otel_*"], None, "otel_us"),
                route(&["cloudevents"], None, "any"),
            ],
        )
        .unwrap()
    }

    #[test]
    fn first_matching_route_that_may_take_the_tenant_wins() {
        let p = placement(None);
        assert_eq!(
            p.choose("a", Some("eu"), "otel_logs").unwrap().name,
            "otel_eu"
        );
        assert_eq!(
            p.choose("a", Some("us"), "otel_logs").unwrap().name,
            "otel_us"
        );
        assert_eq!(p.choose("a", None, "otel_logs").unwrap().name, "otel_us");
        assert_eq!(p.choose("a", None, "cloudevents").unwrap().name, "any");
        assert_eq!(p.choose("a", None, "snowplow").unwrap().name, DEFAULT_STORE);
    }

    #[test]
    fn residency_refuses_rather_than_landing_elsewhere() {
        let p = placement(Some("us"));
        // cloudevents routes to a region-less store, which an eu tenant may not use.
        let err = p.choose("acme", Some("eu"), "cloudevents").unwrap_err();
        assert!(matches!(err, LakeError::NoPlacement { .. }), "{err:?}");
        assert!(err.to_string().contains("acme"));
        assert!(p.choose("acme", Some("eu"), "snowplow").is_err());
        assert_eq!(
            p.choose("acme", Some("us"), "snowplow").unwrap().name,
            DEFAULT_STORE
        );
    }

    #[test]
    fn unknown_store_in_a_route_is_refused() {
        let stores = [store(DEFAULT_STORE, None)].into_iter().collect();
        let err = Placement::new(stores, &[route(&["x"], None, "nope")]).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}

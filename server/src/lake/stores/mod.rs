//! The object stores tables live in: `[stores.NAME]` from the config, one HTTP client per
//! (store, tenant key) built once and shared by every table of that store, the startup
//! reachability and conditional-put checks. Clients are built in `client`, listings in
//! `listing`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use deltalake::{DeltaTableBuilder, ObjectStore};
use object_store::{ObjectStoreExt, PutMode, PutOptions, RetryConfig};
use serde::Deserialize;
use url::Url;

use super::encryption::TenantKey;
pub use super::store_kind::StoreKind;
use super::usage::{MeteredStore, TableMeter};
use super::LakeError;

mod client;
mod listing;

/// A store as configured: `[stores.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    /// `file://` (or a local path), `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix` or `abfss://container@account.dfs.core.windows.net/prefix`.
    pub url: String,
    /// The region this store serves; tenants with a region only land in stores of theirs.
    pub region: Option<String>,
    /// object_store configuration keys (`aws_endpoint`, `azure_storage_account_name`, ...).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The store does not honour conditional put (If-None-Match), so only one server
    /// may write to it; without this, such a store is refused at startup.
    #[serde(default)]
    pub single_writer: bool,
    /// How often a failed request is retried (object_store's default: 10).
    pub max_retries: Option<usize>,
    /// Longest time spent retrying one request, e.g. `30s` (object_store's default: 3m).
    pub retry_timeout: Option<String>,
    /// Build its client from `options` alone, never from the server's `AWS_*`/`AZURE_*`/
    /// `GOOGLE_*` environment (a tenant's export target must not borrow our credentials).
    #[serde(skip)]
    pub without_environment: bool,
    /// This store is the archive of the named store: tenants archived out of that store
    /// are kept here until they come back.
    pub archive_for: Option<String>,
    /// Storage class (S3, GCS) or access tier (Azure) of the objects archiving copies
    /// here, e.g. `GLACIER_IR`, `STANDARD_IA`, `Cool`.
    pub storage_class: Option<String>,
}

/// One configured store.
pub struct Store {
    pub name: String,
    pub kind: StoreKind,
    /// The lake's root directory in the store, ending in `/`.
    pub root: Url,
    pub region: Option<String>,
    single_writer: bool,
    options: BTreeMap<String, String>,
    without_environment: bool,
    /// The store this one archives (`archive_for`).
    pub archive_for: Option<String>,
    storage_class: Option<String>,
    retry: RetryConfig,
    /// Root-level clients (the bucket's `/`), one per tenant key (`""`: the store's default).
    clients: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Options may hold credentials: never print them.
        f.debug_struct("Store")
            .field("name", &self.name)
            .field("root", &self.root.as_str())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Parses and checks a store's settings; builds its default client to validate the
    /// options (an unknown key or a bad value refuses to start, naming the key).
    pub fn new(name: &str, spec: &StoreSpec) -> Result<Self, LakeError> {
        let root = root_url(&spec.url)?;
        let kind = StoreKind::of(&root).ok_or_else(|| LakeError::BadLocation(spec.url.clone()))?;
        if kind == StoreKind::Local && !spec.options.is_empty() {
            return Err(config_error(
                name,
                "options: a local store takes no options",
            ));
        }
        if let Some(class) = &spec.storage_class {
            check_storage_class(name, kind, class)?;
        }
        let mut retry = RetryConfig::default();
        if let Some(n) = spec.max_retries {
            retry.max_retries = n;
        }
        if let Some(text) = &spec.retry_timeout {
            retry.retry_timeout = humantime::parse_duration(text)
                .map_err(|e| config_error(name, &format!("retry_timeout {text:?}: {e}")))?;
        }
        let store = Self {
            name: name.to_string(),
            kind,
            root,
            region: spec.region.clone(),
            single_writer: spec.single_writer,
            options: spec.options.clone(),
            without_environment: spec.without_environment,
            archive_for: spec.archive_for.clone(),
            storage_class: spec.storage_class.clone(),
            retry,
            clients: Mutex::new(HashMap::new()),
        };
        if kind != StoreKind::Local {
            store.client(None)?;
        }
        Ok(store)
    }

    /// A store of the same kind and credentials rooted at `path` under this one's root
    /// (an export target). Never a tenant's tables or lakeport's own objects.
    pub fn beneath(&self, path: &str) -> Result<Store, LakeError> {
        let path = path.trim_matches('/');
        let first = path.split('/').next().unwrap_or_default();
        if path.is_empty()
            || first.starts_with("tenant_id=")
            || first == "_lakeport"
            || path
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(LakeError::BadLocation(format!(
                "{path:?} under store {}: give a directory of its own (not the root, a tenant's tables or _lakeport)",
                self.name
            )));
        }
        let root = self
            .root
            .join(&format!("{path}/"))
            .map_err(|e| LakeError::BadLocation(format!("{}: {e}", self.root)))?;
        Ok(Store {
            name: format!("{}:{path}", self.name),
            kind: self.kind,
            root,
            region: self.region.clone(),
            single_writer: self.single_writer,
            options: self.options.clone(),
            without_environment: self.without_environment,
            archive_for: None,
            storage_class: None,
            retry: self.retry.clone(),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// `<root>/tenant_id=<tenant>/<dataset>/`.
    pub fn table_url(&self, tenant: &str, dataset: &str) -> Result<Url, LakeError> {
        self.root
            .join(&format!("tenant_id={tenant}/{dataset}/"))
            .map_err(|e| LakeError::BadLocation(format!("{}: {e}", self.root)))
    }

    /// True when `url` lies in this store's bucket (container), or on its disk for a local
    /// store: somewhere only the lake may write.
    pub fn shares_bucket_with(&self, url: &Url) -> bool {
        match self.kind {
            StoreKind::Local => url.scheme() == "file",
            _ => url.host_str().is_some() && url.host_str() == self.root.host_str(),
        }
    }

    /// What every object written into this store by a copy carries: its storage class.
    pub fn copy_attributes(&self) -> object_store::Attributes {
        let mut attributes = object_store::Attributes::new();
        if let Some(class) = &self.storage_class {
            attributes.insert(object_store::Attribute::StorageClass, class.clone().into());
        }
        attributes
    }

    /// True when one client serves both stores: the same disk, or the same bucket with the
    /// same options (so the store can copy between them itself).
    pub fn shares_client_with(&self, other: &Store) -> bool {
        self.kind == other.kind
            && self.root.host_str() == other.root.host_str()
            && self.options == other.options
            && self.without_environment == other.without_environment
    }

    /// True when one store's root lies within the other's (they would share objects).
    pub fn overlaps(&self, other: &Store) -> bool {
        let (a, b) = (self.root.as_str(), other.root.as_str());
        a.starts_with(b) || b.starts_with(a)
    }

    /// Whether a tenant of `region` (or of none) may have tables here.
    pub fn may_take(&self, region: Option<&str>) -> bool {
        region.is_none() || self.region.as_deref() == region
    }

    /// A Delta table builder for a table of this store, applying the tenant's key.
    pub fn table_builder(
        &self,
        url: Url,
        key: Option<&TenantKey>,
    ) -> Result<DeltaTableBuilder, LakeError> {
        let builder = DeltaTableBuilder::from_url(url.clone())?;
        Ok(match self.kind {
            StoreKind::Local => builder,
            _ => builder.with_storage_backend(self.client(key)?, url),
        })
    }

    /// A Delta table builder whose every write and delete is counted by `meter` (the
    /// table's usage), applying the tenant's key.
    pub fn metered_table_builder(
        &self,
        url: Url,
        key: Option<&TenantKey>,
        meter: Arc<TableMeter>,
    ) -> Result<DeltaTableBuilder, LakeError> {
        let client: Arc<dyn ObjectStore> = Arc::new(MeteredStore::new(self.client(key)?, meter));
        Ok(DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(client, url))
    }

    /// The bucket-root client for a tenant key, built on first use and then shared.
    pub fn client(&self, key: Option<&TenantKey>) -> Result<Arc<dyn ObjectStore>, LakeError> {
        let id = key.map(TenantKey::id).unwrap_or_default();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&id) {
            return Ok(client.clone());
        }
        let client = self.build_client(key)?;
        clients.insert(id, client.clone());
        Ok(client)
    }

    /// Lists the lake root once: proves the endpoint, the bucket and the credentials.
    pub async fn check(&self) -> Result<(), LakeError> {
        self.list_dirs(None).await.map(|_| ())
    }

    /// Proves that creating an object that already exists fails, which Delta commits from
    /// several servers rely on. Stores marked `single_writer` skip this.
    pub async fn check_conditional_put(&self) -> Result<(), LakeError> {
        if self.single_writer || self.kind != StoreKind::S3 {
            return Ok(());
        }
        let client = self.client(None)?;
        let probe = self.root_path().join("_lakeport").join(format!(
            "conditional-put-probe-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        client
            .put_opts(&probe, "probe".into(), create.clone())
            .await
            .map_err(|e| LakeError::from(e).in_store(&self.name))?;
        let second = client.put_opts(&probe, "probe".into(), create).await;
        let _ = client.delete(&probe).await;
        match second {
            Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(LakeError::from(e).in_store(&self.name)),
            Ok(_) => Err(config_error(
                &self.name,
                "the store overwrote an existing object on a conditional put (If-None-Match: *), so concurrent commits could overwrite each other; use a store that honours it, or set single_writer = true and run one server per store",
            )),
        }
    }
}

/// Refuses a storage class a local store cannot have, and one whose objects cannot be read
/// without a rehydration of hours (a restore must be able to read the archive copy).
fn check_storage_class(name: &str, kind: StoreKind, class: &str) -> Result<(), LakeError> {
    let offline = match kind {
        StoreKind::Local => {
            return Err(config_error(name, "storage_class: a local store has none"))
        }
        StoreKind::S3 => ["GLACIER", "DEEP_ARCHIVE"].contains(&class),
        StoreKind::Azure => class.eq_ignore_ascii_case("archive"),
        _ => false,
    };
    if offline {
        return Err(config_error(
            name,
            &format!("storage_class {class:?} cannot be read before a rehydration of hours, so a restore could not read it; use e.g. GLACIER_IR or STANDARD_IA (S3), Cool or Cold (Azure)"),
        ));
    }
    Ok(())
}

fn config_error(store: &str, message: &str) -> LakeError {
    LakeError::StoreConfig {
        store: store.to_string(),
        message: message.to_string(),
    }
}

/// Turns a configured location (local path or URL) into a directory URL ending in `/`;
/// a local directory is created.
pub fn root_url(location: &str) -> Result<Url, LakeError> {
    let mut url = match Url::parse(location) {
        Ok(url) if url.scheme().len() > 1 => url,
        _ => {
            let path = std::path::Path::new(location);
            std::fs::create_dir_all(path)
                .map_err(|e| LakeError::BadLocation(format!("{location}: {e}")))?;
            let absolute = path
                .canonicalize()
                .map_err(|e| LakeError::BadLocation(format!("{location}: {e}")))?;
            Url::from_directory_path(&absolute)
                .map_err(|_| LakeError::BadLocation(location.to_string()))?
        }
    };
    match StoreKind::of(&url) {
        Some(StoreKind::Local) => super::delta::ensure_local_dir(&url)?,
        Some(_) if url.host_str().is_none_or(str::is_empty) => {
            return Err(LakeError::BadLocation(format!(
                "{location}: the URL names no bucket or container"
            )))
        }
        Some(_) => {}
        None => return Err(LakeError::BadLocation(location.to_string())),
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str, options: &[(&str, &str)]) -> StoreSpec {
        StoreSpec {
            url: url.into(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn urls_and_options_are_checked_naming_the_key() {
        let s3 = Store::new(
            "events",
            &spec(
                "s3://bucket/lake",
                &[
                    ("aws_endpoint", "http://127.0.0.1:1"),
                    ("aws_region", "eu-west-1"),
                ],
            ),
        )
        .unwrap();
        assert_eq!(s3.kind, StoreKind::S3);
        assert_eq!(
            s3.table_url("acme", "snowplow").unwrap().as_str(),
            "s3://bucket/lake/tenant_id=acme/snowplow/"
        );
        let bad = Store::new("events", &spec("s3://bucket", &[("aws_endpiont", "x")]));
        let message = bad.unwrap_err().to_string();
        assert!(message.contains("aws_endpiont"), "{message}");
        assert!(matches!(
            Store::new("x", &spec("ftp://host/lake", &[])),
            Err(LakeError::BadLocation(_))
        ));
        assert!(matches!(
            Store::new("x", &spec("s3:///lake", &[])),
            Err(LakeError::BadLocation(_))
        ));
    }

    #[test]
    fn a_key_is_refused_by_a_store_that_cannot_apply_it() {
        let azure = Store::new(
            "blob",
            &spec(
                "az://container/lake",
                &[("azure_storage_use_emulator", "true")],
            ),
        )
        .unwrap();
        let kms = TenantKey::SseKms {
            key_id: "k".into(),
            bucket_key: None,
        };
        assert!(matches!(
            azure.client(Some(&kms)),
            Err(LakeError::StoreConfig { .. })
        ));
        let scope = TenantKey::AzureScope { scope: "s".into() };
        // The emulator signs with its account key, which the scope header would break.
        assert!(matches!(
            azure.client(Some(&scope)),
            Err(LakeError::StoreConfig { .. })
        ));
        let with_sas = Store::new(
            "blob",
            &spec(
                "az://container/lake",
                &[
                    ("azure_storage_use_emulator", "true"),
                    ("azure_storage_sas_key", "sv=2021-08-06&sig=x"),
                ],
            ),
        )
        .unwrap();
        assert!(with_sas.client(Some(&scope)).is_ok());
    }

    #[test]
    fn a_url_in_the_stores_bucket_is_the_lakes() {
        let spec = StoreSpec {
            url: "s3://lake-bucket/prod".into(),
            options: [("aws_region".to_string(), "eu-west-1".to_string())].into(),
            ..Default::default()
        };
        let store = Store::new("s3", &spec).unwrap();
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(store.shares_bucket_with(&url("s3://lake-bucket/elsewhere/")));
        assert!(!store.shares_bucket_with(&url("s3://customer-bucket/prod/")));
        assert!(store.beneath("exports/acme").is_ok());
        for bad in ["", "tenant_id=beta/x", "_lakeport", "a/../tenant_id=beta"] {
            assert!(store.beneath(bad).is_err(), "{bad}");
        }
    }
}

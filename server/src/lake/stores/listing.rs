//! What a store holds: tenant directories, their table directories, and whether a table
//! has a Delta log. One listing request each.

use futures::TryStreamExt;
use object_store::path::Path;
use url::Url;

use super::{Store, StoreKind};
use crate::lake::LakeError;
use crate::names::check_name;

impl Store {
    pub(crate) fn root_path(&self) -> Path {
        Path::from_url_path(self.root.path()).unwrap_or_default()
    }

    /// Names of the directories under `<root>/<sub>` (one listing request).
    pub(super) async fn list_dirs(&self, sub: Option<&str>) -> Result<Vec<String>, LakeError> {
        if self.kind == StoreKind::Local {
            return list_local_dirs(&self.root, sub);
        }
        let client = self.client(None)?;
        let mut prefix = self.root_path();
        if let Some(sub) = sub {
            prefix = prefix.join(sub);
        }
        let listing = client
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| LakeError::from(e).in_store(&self.name))?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Tenants that have a `tenant_id=<t>/` directory in this store.
    pub async fn tenants(&self) -> Result<Vec<String>, LakeError> {
        Ok(self
            .list_dirs(None)
            .await?
            .into_iter()
            .filter_map(|d| d.strip_prefix("tenant_id=").map(str::to_string))
            .filter(|t| check_name("tenant", t).is_ok())
            .collect())
    }

    /// Table directories of a tenant in this store (whether or not they hold commits).
    pub async fn datasets_of(&self, tenant: &str) -> Result<Vec<String>, LakeError> {
        self.list_dirs(Some(&format!("tenant_id={tenant}"))).await
    }

    /// Whether `<table>/_delta_log/` holds anything.
    pub async fn has_table(&self, tenant: &str, dataset: &str) -> Result<bool, LakeError> {
        if self.kind == StoreKind::Local {
            let url = self.table_url(tenant, dataset)?;
            let log = url
                .to_file_path()
                .map_err(|_| LakeError::BadLocation(url.to_string()))?
                .join("_delta_log");
            return Ok(std::fs::read_dir(log).is_ok_and(|mut d| d.next().is_some()));
        }
        let client = self.client(None)?;
        let log = self
            .root_path()
            .join(format!("tenant_id={tenant}"))
            .join(dataset)
            .join("_delta_log");
        let first = client
            .list(Some(&log))
            .try_next()
            .await
            .map_err(|e| LakeError::from(e).in_store(&self.name))?;
        Ok(first.is_some())
    }
}

fn list_local_dirs(root: &Url, sub: Option<&str>) -> Result<Vec<String>, LakeError> {
    let mut dir = root
        .to_file_path()
        .map_err(|_| LakeError::BadLocation(root.to_string()))?;
    if let Some(sub) = sub {
        dir = dir.join(sub);
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LakeError::BadLocation(format!("{}: {e}", dir.display()))),
    };
    Ok(entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect())
}
